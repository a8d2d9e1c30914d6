package incidents_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// The mshta → PowerShell chain is one incident carrying both techniques.
// The recording holds each process twice, as Sysmon EventID 1 and as
// Security 4688 (whose TimeCreated is four hours behind UtcTime): the store
// merges them into one process, so one incident. The lab cleared the
// Security and System logs before recording (1102, 104): the builtin pack
// reports each clear on its own, as an incident of T1070.001 alone with no
// process behind it, set aside here.
func TestDatasetMshtaPowerShell(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(datasets(t), "sd-T1218.005-mshta-vbscript-powershell", "*.json"))
	if len(files) == 0 {
		t.Skip("dataset sd-T1218.005-mshta-vbscript-powershell absent")
	}
	st := openStore(t)
	recs := importFile(t, st, files[0])
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.HitID] = true
	}
	var incs []eventstore.IncidentRecord
	clears := 0
	for _, in := range all(t, st) {
		if in.Techniques == "T1070.001" && in.RootPath == "" {
			clears += len(in.HitIDs) // the lab's log clearing
			continue
		}
		incs = append(incs, in)
	}
	if len(incs) != 1 {
		t.Fatalf("want 1 incident besides the log clears, got %d: %+v", len(incs), incs)
	}
	checkMshta(t, incs[0])
	if len(incs[0].HitIDs)+clears != len(ids) {
		t.Errorf("the incident holds %d of %d hits (%d log clears)", len(incs[0].HitIDs), len(ids), clears)
	}
}

func checkMshta(t *testing.T, in eventstore.IncidentRecord) {
	t.Helper()
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

// On every recorded dataset: each hit is in exactly one incident, each
// attack chain is one incident (the Sysmon and Security records of a
// process are one process), and a second import into another store gives
// the same incidents.
func TestDatasetsEveryHitOnce(t *testing.T) {
	sets, _ := filepath.Glob(filepath.Join(datasets(t), "sd-*"))
	if len(sets) == 0 {
		t.Skip("no datasets")
	}
	for _, set := range sets {
		t.Run(filepath.Base(set), func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(set, "*"))
			a, b := openStore(t), openStore(t)
			var recs []telemetry.Hit
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
			if want, ok := chains[filepath.Base(set)]; ok && len(incs) != want {
				t.Errorf("%d incidents, want %d (one per attack chain)", len(incs), want)
			}
			t.Logf("%d hits, %d incidents", len(source), len(incs))
		})
	}
}

// chains is the number of attack chains of each recording, on each host
// (the remote task's registration is an incident of the target host). Hits without
// ancestry of their own (events naming no process: 4697, 4698, 7045, 5145,
// the lab's log clears; hits of service hosts: services.exe writing the
// service key, the BITS svchost staging the download) join the nearest
// chain; a service's tree joins the hit on its installation (PsExec.exe,
// the 4697 of PSEXESVC, and the PSEXESVC service's reg.exe are one).
var chains = map[string]int{
	"sd-T1003.001-comsvcs-lsass-dump":        1,
	"sd-T1003.002-esentutl-sam-copy":         1,
	"sd-T1003.004-psexec-lsa-secrets":        1,
	"sd-T1053.005-remote-schtask-create":     2,
	"sd-T1197-bitsadmin-download":            1,
	"sd-T1218.005-mshta-vbscript-powershell": 1,
}
