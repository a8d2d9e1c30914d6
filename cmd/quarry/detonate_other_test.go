//go:build !linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Off Linux, running a sample is a clear error with a non-zero exit;
// --list still works (TestDetonateListShow covers --show).
func TestDetonateNeedsLinux(t *testing.T) {
	dir := t.TempDir()
	sample := filepath.Join(dir, "s.sh")
	if err := os.WriteFile(sample, []byte("#!/bin/sh\nid\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, errs, code := quarry(t, dir, "", "detonate", sample)
	if code == 0 || !strings.Contains(errs, "needs Linux") {
		t.Errorf("detonate off Linux: exit %d: %s", code, errs)
	}
	if _, errs, code := quarry(t, dir, "", "detonate", "--list"); code != 0 {
		t.Errorf("--list: exit %d: %s", code, errs)
	}
}
