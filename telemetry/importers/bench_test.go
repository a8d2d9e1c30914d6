package importers

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// benchImport reads the files b.N times and reports events per second.
func benchImport(b *testing.B, files []string) {
	b.Helper()
	if len(files) == 0 {
		b.Skip("no input files")
	}
	var events, size int64
	for _, f := range files {
		evs, _, _ := openAll(b, f)
		events += int64(len(evs))
		size += int64(len(readFile(b, f)))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, f := range files {
			r, _, err := Open(f)
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := r.Next(); errors.Is(err, io.EOF) {
					break
				}
			}
			r.Close()
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events*int64(b.N)), "ns/event")
}

// benchImportInto is benchImport through NextInto (one event reused).
func benchImportInto(b *testing.B, files []string) {
	b.Helper()
	if len(files) == 0 {
		b.Skip("no input files")
	}
	var events, size int64
	for _, f := range files {
		evs, _, _ := openAll(b, f)
		events += int64(len(evs))
		size += int64(len(readFile(b, f)))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	var ev telemetry.Event
	for b.Loop() {
		for _, f := range files {
			r, _, err := Open(f)
			if err != nil {
				b.Fatal(err)
			}
			for {
				if err := NextInto(r, &ev); errors.Is(err, io.EOF) {
					break
				}
			}
			r.Close()
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events*int64(b.N)), "ns/event")
}

func datasetFiles(b *testing.B, pattern string) []string {
	files, _ := filepath.Glob(filepath.Join(datasetsDir(b), pattern))
	return files
}

func BenchmarkImportSysmonJSON(b *testing.B) {
	b.Run("datasets", func(b *testing.B) { benchImport(b, datasetFiles(b, "sd-T*/*.json")) })
	b.Run("testdata", func(b *testing.B) { benchImport(b, []string{bitsadminExcerpt}) })
	b.Run("nested-testdata", func(b *testing.B) { benchImport(b, []string{"testdata/sigma/wmic-terminate.json"}) })
	b.Run("datasets-into", func(b *testing.B) { benchImportInto(b, datasetFiles(b, "sd-T*/*.json")) })
}

func BenchmarkImportSysmonEVTX(b *testing.B) {
	b.Run("testdata", func(b *testing.B) { benchImport(b, []string{"testdata/sigma/wmic-terminate.evtx"}) })
}

func BenchmarkImportAuditd(b *testing.B) {
	b.Run("datasets", func(b *testing.B) { benchImport(b, datasetFiles(b, "sd-linux-*/*.log")) })
	b.Run("testdata", func(b *testing.B) { benchImport(b, []string{"testdata/security-datasets/arp-cache.log"}) })
}

func BenchmarkImportAuditdJSON(b *testing.B) {
	b.Run("datasets", func(b *testing.B) { benchImport(b, datasetFiles(b, "sd-linux-*/*.auditd.jsonl")) })
}

// repeatAudit writes n copies of the arp-cache recording, serials renumbered.
func repeatAudit(b *testing.B, src, name string, n int) string {
	one := readFile(b, src)
	var sb strings.Builder
	for i := range n {
		s := strings.ReplaceAll(one, ":92733)", fmt.Sprintf(":%d)", 2*i))
		s = strings.ReplaceAll(s, ":92734)", fmt.Sprintf(":%d)", 2*i+1))
		s = strings.ReplaceAll(s, `"audit_serial": 92733`, fmt.Sprintf(`"audit_serial": %d`, 2*i))
		sb.WriteString(strings.ReplaceAll(s, `"audit_serial": 92734`, fmt.Sprintf(`"audit_serial": %d`, 2*i+1)))
	}
	return writeTemp(b, name, sb.String())
}

func BenchmarkImportAuditdLarge(b *testing.B) {
	b.Run("raw-20k", func(b *testing.B) {
		benchImport(b, []string{repeatAudit(b, "testdata/security-datasets/arp-cache.log", "a.log", 10000)})
	})
	b.Run("json-20k", func(b *testing.B) {
		benchImport(b, []string{repeatAudit(b, "testdata/security-datasets/arp-cache.auditd.jsonl", "a.jsonl", 10000)})
	})
}
