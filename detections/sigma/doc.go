// Package sigma parses Sigma rules (https://sigmahq.io) into a plain,
// validated form: metadata, log source, named searches of field matchers with
// their modifiers, and the condition as an expression tree. It neither
// compiles nor evaluates rules; package detections does.
//
// Every error names the file, the line and the field it is about.
package sigma
