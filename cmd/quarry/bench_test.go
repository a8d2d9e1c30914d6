package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkQueryColdStart measures a whole `quarry query` process: start,
// ATT&CK load, engine open, one query over attack_techniques, exit.
func BenchmarkQueryColdStart(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "quarry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	dataDir := b.TempDir()
	for b.Loop() {
		out, err := exec.Command(bin, "--data-dir", dataDir, "query", "--format", "csv",
			"SELECT count(*) FROM attack_techniques WHERE revoked = 0 AND deprecated = 0 AND attack_version = '18.1'").Output()
		if err != nil {
			b.Fatal(err)
		}
		if !strings.Contains(string(out), "691") {
			b.Fatalf("unexpected output %q", out)
		}
	}
}
