package rules

import (
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// datasetsDir is the recorded attack telemetry (OTRF Security-Datasets, see
// its README): QUARRY_DATASETS, else ../shared/datasets beside the repo.
func datasetsDir() string {
	if d := os.Getenv("QUARRY_DATASETS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "datasets")
}

// expectation: the rule must hit an event whose command line contains step.
// Hits on events that contain none of a dataset's steps fail the test.
type expectation struct {
	rule, step string
}

// datasetSteps is, per dataset, the attack step the builtin pack must report.
var datasetSteps = map[string][]expectation{
	"sd-T1197-bitsadmin-download": {
		{"proc_creation_win_bitsadmin_transfer.yml", "/transfer /Download"},
	},
	"sd-T1003.001-comsvcs-lsass-dump": {
		{"proc_creation_win_lsass_dump_comsvcs.yml", "comsvcs.dll MiniDump"},
	},
	"sd-T1003.002-esentutl-sam-copy": {
		{"proc_creation_win_esentutl_credential_copy.yml", "/y /vss"},
	},
	"sd-T1003.004-psexec-lsa-secrets": {
		{"proc_creation_win_psexec_execution.yml", "PsExec.exe  -accepteula -s"},
		{"proc_creation_win_reg_save_credential_hives.yml", `save HKLM\security\policy\secrets`},
		{"proc_creation_win_psexesvc_child.yml", `save HKLM\security`},
	},
	"sd-T1218.005-mshta-vbscript-powershell": {
		{"proc_creation_win_mshta_inline_script.yml", "vbscript:Execute"},
		{"proc_creation_win_mshta_spawns_shell.yml", "-noexit -command Get-Service"},
	},
	"sd-T1053.005-remote-schtask-create": {
		{"proc_creation_win_schtasks_remote_create.yml", "/create /F /tn"},
	},
	"sd-linux-T1018-arp-cache": {
		{"proc_creation_lnx_arp_cache_discovery.yml", "arp -a"},
	},
	"sd-linux-T1027.001-dd-binary-padding": {
		{"proc_creation_lnx_dd_binary_padding.yml", "dd if=/dev/zero bs=1 count=1"},
	},
}

type datasetHit struct {
	rule, source, cmdline string
}

// scanDataset runs every recording of a dataset folder through the engine.
// Raw auditd logs are skipped where the folder also has the .auditd.jsonl
// rendering of the same events.
func scanDataset(t *testing.T, eng *detections.Engine, dir string) (hits []datasetHit, events int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = true
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (strings.HasSuffix(name, ".log") && have[strings.TrimSuffix(name, ".log")+".auditd.jsonl"]) {
			continue
		}
		r, _, err := importers.Open(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for {
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var re *telemetry.RecordError
			if errors.As(err, &re) {
				t.Logf("%s: skipped record: %v", name, err)
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				break
			}
			events++
			eng.Match(&ev, func(h detections.Hit) {
				hits = append(hits, datasetHit{path.Base(h.Rule.Path), string(ev.Source), ev.Cmdline})
			})
		}
		r.Close()
	}
	return hits, events
}

// TestDatasetsAcceptance: on each recorded attack, the builtin pack alone
// reports the attack step; every hit is logged (go test -v) for review of
// false positives on the background activity around it.
func TestDatasetsAcceptance(t *testing.T) {
	root := datasetsDir()
	if _, err := os.Stat(root); err != nil {
		t.Skipf("datasets not found at %s (set QUARRY_DATASETS to the folder of /work/shared/datasets): %v", root, err)
	}
	eng := detections.NewEngine(loadPack(t))
	names := make([]string, 0, len(datasetSteps))
	for n := range datasetSteps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, ds := range names {
		t.Run(ds, func(t *testing.T) {
			dir := filepath.Join(root, ds)
			if _, err := os.Stat(dir); err != nil {
				t.Skipf("dataset %s absent: %v", ds, err)
			}
			hits, events := scanDataset(t, eng, dir)
			t.Logf("%d events, %d hits", events, len(hits))
			for _, h := range hits {
				t.Logf("  %-52s %-13s %s", h.rule, h.source, h.cmdline)
			}
			windows := !strings.HasPrefix(ds, "sd-linux-")
			for _, x := range datasetSteps[ds] {
				bySource := map[string]int{}
				for _, h := range hits {
					if h.rule == x.rule && strings.Contains(h.cmdline, x.step) {
						bySource[h.source]++
					}
				}
				if len(bySource) == 0 {
					t.Errorf("%s did not report the attack step %q", x.rule, x.step)
				}
				// Windows sets hold each step as Sysmon 1 and as Security 4688.
				for _, src := range []string{"sysmon", "security4688"} {
					if windows && len(bySource) > 0 && bySource[src] == 0 {
						t.Errorf("%s reported %q from %v but not from %s", x.rule, x.step, bySource, src)
					}
				}
			}
			// Every hit must be on the attack: the background activity
			// recorded around it is the false-positive check.
			for _, h := range hits {
				onAttack := false
				for _, x := range datasetSteps[ds] {
					onAttack = onAttack || strings.Contains(h.cmdline, x.step)
				}
				if !onAttack {
					t.Errorf("false positive? %s on background event (%s): %s", h.rule, h.source, h.cmdline)
				}
			}
		})
	}
}
