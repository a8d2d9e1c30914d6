// Package bench compares Quarry's Sigma engine with other Go Sigma engines
// on one deterministic corpus and rule set, end to end on one core: JSON
// lines decoded, then matched.
//
// It is a separate Go module so that the engines it compares with never
// enter Quarry's own go.mod. See README.md for how to run it and the latest
// numbers.
package bench
