package importers

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// datasetCounts are the process creations of each recording, from
// ../shared/datasets/README.md: Security 4688 and Sysmon EID 1, or execve.
var datasetCounts = []struct {
	dir             string
	events          int // records in the file (the README's event count)
	security4688    int
	sysmon1, execve int
}{
	{"sd-T1197-bitsadmin-download", 424, 2, 2, 0},
	{"sd-T1003.001-comsvcs-lsass-dump", 184, 1, 1, 0},
	{"sd-T1003.002-esentutl-sam-copy", 915, 1, 1, 0},
	{"sd-T1003.004-psexec-lsa-secrets", 286, 4, 4, 0},
	{"sd-T1218.005-mshta-vbscript-powershell", 1127, 3, 3, 0},
	{"sd-T1053.005-remote-schtask-create", 1041, 10, 10, 0},
	{"sd-linux-T1018-arp-cache", 0, 0, 0, 2},
	{"sd-linux-T1027.001-dd-binary-padding", 0, 0, 0, 1},
}

func TestDatasetProcessCreations(t *testing.T) {
	root := datasetsDir(t)
	for _, c := range datasetCounts {
		t.Run(c.dir, func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(root, c.dir, "*"))
			if len(files) == 0 {
				t.Skipf("%s absent", c.dir)
			}
			for _, f := range files {
				evs, errs, format := openAll(t, f)
				if len(errs) != 0 {
					t.Errorf("%s: record errors: %v", f, errs)
				}
				got := map[telemetry.Source]int{}
				for _, e := range evs {
					if e.Kind == telemetry.KindExec {
						got[e.Source]++
					}
					if e.Host == "" && e.Source != telemetry.SourceAuditd {
						t.Errorf("%s: record %d has no host", f, e.RecordID)
					}
					if e.Time.IsZero() {
						t.Errorf("%s: record %d has no time", f, e.RecordID)
					}
				}
				want := map[telemetry.Source]int{}
				if c.security4688 > 0 {
					want[telemetry.SourceSecurity] = c.security4688
				}
				if c.sysmon1 > 0 {
					want[telemetry.SourceSysmon] = c.sysmon1
				}
				if c.execve > 0 {
					want[telemetry.SourceAuditd] = c.execve
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s (%s): process creations %v, want %v", filepath.Base(f), format, got, want)
				}
				if c.events > 0 && len(evs) != c.events {
					t.Errorf("%s: %d events, want %d", filepath.Base(f), len(evs), c.events)
				}
			}
		})
	}
}
