// Package detections is Quarry's Indicator-of-Attack engine: Sigma rules
// loaded and compiled into one matcher per log source, evaluated against
// telemetry.Event values, yielding Hits that carry the rule, its ATT&CK
// techniques and tactics, severity, confidence and recommendations.
//
// Loading: LoadDir, LoadFiles and LoadBytes return the rules that loaded plus
// one *LoadError (file, line, field, reason) per rule that did not; a broken
// rule never stops the others. Correlation rules load as rules with Source
// SourceCorrelation and a Correlation block.
//
// Matching: NewEngine compiles rules; Engine.Match evaluates one event and
// calls emit for each hit. An Engine is for one goroutine at a time; Clone
// gives another goroutine its own Engine sharing the compiled rules.
// NewCorrelator evaluates the correlation rules over the Engine's hits
// (Observe, Advance, Flush; see correlate.go for the semantics).
//
// Semantics follow the Sigma specification: values compare
// case-insensitively unless the cased modifier is given (re is case-sensitive
// unless re|i); base64 and base64offset produce case-sensitive patterns, as
// base64 text is; a null value or ” matches an absent or empty field;
// keyword searches match when the value occurs in any field of the event;
// unresolved %placeholders% (expand) never match and raise a warning.
package detections
