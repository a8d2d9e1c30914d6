package detections

import (
	"path/filepath"
	"testing"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/internal/benchload"
)

// sigmaHQPaths returns every rule file of SigmaHQ's three rule trees.
func sigmaHQPaths(tb testing.TB) []string {
	dir := sigmaDir(tb)
	var paths []string
	for _, sub := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
		ps, err := ruleFiles(filepath.Join(dir, sub))
		if err != nil {
			tb.Fatal(err)
		}
		paths = append(paths, ps...)
	}
	return paths
}

// BenchmarkLoadSigmaHQ loads all SigmaHQ rules (3,754 of 3,834 files)
// without the rule cache (cold), from a warm one (warm: the file list
// given), and from a warm one as `quarry scan --sigma DIR` does, the three
// rule trees walked each time (warm-dirs). The target: warm ≤ 150 ms.
func BenchmarkLoadSigmaHQ(b *testing.B) {
	paths := sigmaHQPaths(b)
	kb, err := attack.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cold", func(b *testing.B) {
		cpu0 := benchload.CPUTime()
		for b.Loop() {
			res, err := LoadFiles(paths, Options{KB: kb})
			if err != nil || len(res.Rules) < 3754 {
				b.Fatal(err, len(res.Rules))
			}
		}
		b.ReportMetric(float64(benchload.CPUTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
	})
	b.Run("warm", func(b *testing.B) {
		cache := b.TempDir()
		if _, err := LoadFiles(paths, Options{KB: kb, CacheDir: cache}); err != nil {
			b.Fatal(err)
		}
		cpu0 := benchload.CPUTime()
		for b.Loop() {
			res, err := LoadFiles(paths, Options{KB: kb, CacheDir: cache})
			if err != nil || len(res.Rules) < 3754 {
				b.Fatal(err, len(res.Rules))
			}
		}
		b.ReportMetric(float64(benchload.CPUTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
	})
	b.Run("warm-dirs", func(b *testing.B) {
		cache := b.TempDir()
		dir := sigmaDir(b)
		load := func() int {
			n := 0
			for _, sub := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
				res, err := LoadDir(filepath.Join(dir, sub), Options{KB: kb, CacheDir: cache})
				if err != nil {
					b.Fatal(err)
				}
				n += len(res.Rules)
			}
			return n
		}
		load()
		cpu0 := benchload.CPUTime()
		for b.Loop() {
			if n := load(); n < 3754 {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(benchload.CPUTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
	})
}
