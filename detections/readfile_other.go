//go:build !unix

package detections

import "os"

// readRuleFile reads a rule file.
func readRuleFile(path string) ([]byte, error) { return os.ReadFile(path) }
