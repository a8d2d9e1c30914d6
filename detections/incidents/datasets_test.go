package incidents_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/telemetry/store"
)

// The mshta → PowerShell chain is one incident carrying both techniques.
// The recording holds each process twice, as Sysmon EventID 1 and as
// Security 4688 (whose clock is four hours off): one incident per source.
// The lab cleared the Security and System logs before recording (1102,
// 104): the builtin pack reports each clear on its own, as an incident of
// T1070.001 alone with no process behind it, set aside here.
func TestDatasetMshtaPowerShell(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(datasets(t), "sd-T1218.005-mshta-vbscript-powershell", "*.json"))
	if len(files) == 0 {
		t.Skip("dataset sd-T1218.005-mshta-vbscript-powershell absent")
	}
	st := openStore(t)
	recs := importFile(t, st, files[0])
	source := map[string]string{}
	for _, r := range recs {
		source[r.HitID] = r.Source
	}
	var incs []store.IncidentRecord
	hits := 0
	for _, in := range all(t, st) {
		if in.Techniques == "T1070.001" && in.RootPath == "" {
			hits += len(in.HitIDs) // the lab's log clearing
			continue
		}
		incs = append(incs, in)
	}
	if len(incs) != 2 {
		t.Fatalf("want 2 incidents (one per source) besides the log clears, got %d: %+v", len(incs), incs)
	}
	seen := map[string]bool{}
	for _, in := range incs {
		checkMshta(t, in, source)
		seen[source[in.HitIDs[0]]] = true
		hits += len(in.HitIDs)
	}
	if !seen["sysmon"] || !seen["security4688"] || hits != len(source) {
		t.Errorf("incidents should cover the sysmon and security4688 hits once each: %v, %d of %d hits", seen, hits, len(source))
	}
}

func checkMshta(t *testing.T, in store.IncidentRecord, source map[string]string) {
	t.Helper()
	for _, id := range in.HitIDs {
		if source[id] != source[in.HitIDs[0]] {
			t.Errorf("incident %s mixes sources", in.IncidentID)
		}
	}
	for _, tech := range []string{"T1218.005", "T1059.001"} {
		if !strings.Contains(","+in.Techniques+",", ","+tech+",") {
			t.Errorf("incident %s: techniques %s lack %s", in.IncidentID, in.Techniques, tech)
		}
	}
	if !strings.HasSuffix(strings.ToLower(in.RootPath), `\mshta.exe`) || in.HitCount < 2 {
		t.Errorf("incident %s: root %s, %d hits; want mshta.exe with its PowerShell child", in.IncidentID, in.RootPath, in.HitCount)
	}
}

// Importing a recording into two stores, or twice into one, gives the same
// incidents with the same ids.
func TestDatasetDeterministic(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(datasets(t), "sd-T1218.005-mshta-vbscript-powershell", "*.json"))
	if len(files) == 0 {
		t.Skip("dataset sd-T1218.005-mshta-vbscript-powershell absent")
	}
	a, b := openStore(t), openStore(t)
	importFile(t, a, files[0])
	importFile(t, b, files[0])
	first := all(t, a)
	if got := all(t, b); !sameIncidents(got, first) {
		t.Fatalf("two stores differ:\n%+v\n%+v", got, first)
	}
	importFile(t, a, files[0])
	if got := all(t, a); !sameIncidents(got, first) {
		t.Fatalf("importing again changed the incidents:\n%+v\n%+v", got, first)
	}
}

// On every recorded dataset: each hit is in exactly one incident, an
// incident holds hits of one telemetry source, and a second import into
// another store gives the same incidents.
func TestDatasetsEveryHitOnce(t *testing.T) {
	sets, _ := filepath.Glob(filepath.Join(datasets(t), "sd-*"))
	if len(sets) == 0 {
		t.Skip("no datasets")
	}
	for _, set := range sets {
		t.Run(filepath.Base(set), func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(set, "*"))
			a, b := openStore(t), openStore(t)
			var recs []store.HitRecord
			for _, f := range files {
				recs = append(recs, importFile(t, a, f)...)
				importFile(t, b, f)
			}
			source := map[string]string{}
			for _, r := range recs {
				source[r.HitID] = r.Source
			}
			incs := all(t, a)
			seen := map[string]int{}
			for _, in := range incs {
				if int(in.HitCount) != len(in.HitIDs) {
					t.Errorf("incident %s: hit_count %d, %d hits", in.IncidentID, in.HitCount, len(in.HitIDs))
				}
				for _, h := range in.HitIDs {
					seen[h]++
					if source[h] != source[in.HitIDs[0]] {
						t.Errorf("incident %s mixes sources %s and %s", in.IncidentID, source[h], source[in.HitIDs[0]])
					}
				}
			}
			for h := range source {
				if seen[h] != 1 {
					t.Errorf("hit %s is in %d incidents", h, seen[h])
				}
			}
			if len(seen) != len(source) {
				t.Errorf("incidents hold %d hits, the store %d", len(seen), len(source))
			}
			if got := all(t, b); !sameIncidents(got, incs) {
				t.Errorf("another store, other incidents:\n%+v\n%+v", got, incs)
			}
			t.Logf("%d hits, %d incidents", len(source), len(incs))
		})
	}
}
