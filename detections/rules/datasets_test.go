package rules

import (
	"errors"
	"fmt"
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

// expectation: the rule must hit an event whose field (CommandLine when
// empty) contains step. Hits on events that match none of a dataset's
// expectations fail the test.
type expectation struct {
	rule, step string
	field      string
}

// onEvent is an expectation on a field other than CommandLine, for rules
// on non-process events (process access, file, registry, service…).
func onEvent(rule, field, value string) expectation {
	return expectation{rule: rule, step: value, field: field}
}

// matches tells whether ev is the attack step x describes.
func (x expectation) matches(ev *telemetry.Event) bool {
	if x.field == "" {
		return strings.Contains(ev.Cmdline, x.step)
	}
	return strings.Contains(ev.Fields.Value(x.field), x.step)
}

// datasetSteps is, per dataset, the attack steps the builtin pack must
// report: first by process creation, then (onEvent) by the other event
// kinds the recording holds.
var datasetSteps = map[string][]expectation{
	"sd-T1197-bitsadmin-download": {
		{rule: "proc_creation_win_bitsadmin_transfer.yml", step: "/transfer /Download"},
		onEvent("file_event_win_bits_temp_file_user_folder.yml", "TargetFilename", `\AppData\Local\Temp\BIT`),
		onEvent("dns_query_win_code_hosting_non_browser.yml", "QueryName", "raw.githubusercontent.com"),
	},
	"sd-T1003.001-comsvcs-lsass-dump": {
		{rule: "proc_creation_win_lsass_dump_comsvcs.yml", step: "comsvcs.dll MiniDump"},
		onEvent("proc_access_win_lsass_memory_read.yml", "SourceImage", `\rundll32.exe`),
		onEvent("proc_access_win_lsass_minidump_calltrace.yml", "CallTrace", "comsvcs.dll"),
		onEvent("proc_access_win_process_full_access_by_script_host.yml", "TargetImage", `\lsass.exe`),
		onEvent("file_event_win_lsass_dump_file.yml", "TargetFilename", ".dmp"),
		onEvent("image_load_win_comsvcs_by_rundll32.yml", "ImageLoaded", "comsvcs.dll"),
		onEvent("image_load_win_dbghelp_by_unusual_process.yml", "Image", `\rundll32.exe`),
		onEvent("svc_security_win_lsass_handle_requested.yml", "ProcessName", `\rundll32.exe`),
	},
	"sd-T1003.002-esentutl-sam-copy": {
		{rule: "proc_creation_win_esentutl_credential_copy.yml", step: "/y /vss"},
		onEvent("file_event_win_credential_hive_copy.yml", "TargetFilename", `\SAM`),
	},
	"sd-T1003.004-psexec-lsa-secrets": {
		{rule: "proc_creation_win_psexec_execution.yml", step: "PsExec.exe  -accepteula -s"},
		{rule: "proc_creation_win_reg_save_credential_hives.yml", step: `save HKLM\security\policy\secrets`},
		{rule: "proc_creation_win_psexesvc_child.yml", step: `save HKLM\security`},
		onEvent("svc_system_win_remote_exec_tool_service.yml", "ServiceName", "PSEXESVC"),
		onEvent("svc_security_win_remote_exec_tool_service.yml", "ServiceName", "PSEXESVC"),
		onEvent("pipe_created_win_remote_exec_tool_pipe.yml", "PipeName", `\PSEXESVC`),
		onEvent("svc_security_win_ipc_remote_service_pipe.yml", "RelativeTargetName", "PSEXESVC"),
		onEvent("file_event_win_remote_exec_service_binary.yml", "TargetFilename", "PSEXESVC.exe"),
		onEvent("registry_add_win_remote_exec_service_key_created.yml", "TargetObject", `\Services\PSEXESVC`),
		onEvent("file_event_win_reg_hive_saved.yml", "Image", `\reg.exe`),
	},
	"sd-T1218.005-mshta-vbscript-powershell": {
		{rule: "proc_creation_win_mshta_inline_script.yml", step: "vbscript:Execute"},
		{rule: "proc_creation_win_mshta_spawns_shell.yml", step: "-noexit -command Get-Service"},
		onEvent("image_load_win_mshta_script_shell_object.yml", "ImageLoaded", `\wshom.ocx`),
	},
	"sd-T1053.005-remote-schtask-create": {
		{rule: "proc_creation_win_schtasks_remote_create.yml", step: "/create /F /tn"},
		onEvent("svc_security_win_task_suspicious_action.yml", "TaskContent", "cmd.exe</Command>"),
		onEvent("svc_security_win_task_masquerading_windows_folder.yml", "TaskName", `\Microsoft\Windows\`),
	},
	"sd-linux-T1018-arp-cache": {
		{rule: "proc_creation_lnx_arp_cache_discovery.yml", step: "arp -a"},
	},
	"sd-linux-T1027.001-dd-binary-padding": {
		{rule: "proc_creation_lnx_dd_binary_padding.yml", step: "dd if=/dev/zero bs=1 count=1"},
	},
}

// labActivity are hits every Windows recording has outside its attack:
// the lab clears the Security and System logs before each recording
// (Security 1102, System 104). They are true detections of log clearing,
// logged but neither required nor counted as false positives, and kept out
// of the techniques a recording is credited with.
var labActivity = map[string]bool{
	"svc_security_win_security_log_cleared.yml": true,
	"svc_system_win_event_log_cleared.yml":      true,
}

// knownTechniques are the techniques each Windows recording is labelled
// with (datasets README); TestDatasetsAcceptance requires non-process rules
// alone to report at least one of them.
var knownTechniques = map[string][]string{
	"sd-T1197-bitsadmin-download":            {"T1197", "T1105"},
	"sd-T1003.001-comsvcs-lsass-dump":        {"T1003.001", "T1218.011"},
	"sd-T1003.002-esentutl-sam-copy":         {"T1003.002"},
	"sd-T1003.004-psexec-lsa-secrets":        {"T1003.004", "T1569.002"},
	"sd-T1218.005-mshta-vbscript-powershell": {"T1218.005", "T1059.001"},
	"sd-T1053.005-remote-schtask-create":     {"T1053.005"},
}

type datasetHit struct {
	rule, source, cmdline string
	category              string
	techniques            []string
	ev                    telemetry.Event
}

// scanDataset runs every recording of a dataset folder through the engine.
// Raw auditd logs are skipped where the folder also has the .auditd.jsonl
// rendering of the same events.
func scanDataset(t *testing.T, eng *detections.Engine, dir string) (hits []datasetHit, events int) {
	t.Helper()
	readDataset(t, dir, func(ev *telemetry.Event) {
		events++
		eng.Match(ev, func(h detections.Hit) {
			var techs []string
			for _, tc := range h.Techniques {
				techs = append(techs, tc.ID)
			}
			hits = append(hits, datasetHit{path.Base(h.Rule.Path), string(ev.Source), ev.Cmdline,
				h.Rule.Logsource.Category, techs, *ev})
		})
	})
	return hits, events
}

// readDataset calls fn with every event of the recordings in a dataset
// folder, skipping a raw auditd log where the folder also has its
// .auditd.jsonl form. A record the importer skips is logged; any other
// error fails tb and ends that file.
func readDataset(tb testing.TB, dir string, fn func(*telemetry.Event)) {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
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
			tb.Errorf("%s: %v", name, err)
			continue
		}
		for {
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var re *telemetry.RecordError
			if errors.As(err, &re) {
				tb.Logf("%s: skipped record: %v", name, err)
				continue
			}
			if err != nil {
				tb.Errorf("%s: %v", name, err)
				break
			}
			fn(&ev)
		}
		r.Close()
	}
}

// TestDatasetsAcceptance: on each recorded attack, the builtin pack alone
// reports the attack steps, from process creation and from the other event
// kinds; every hit is logged (go test -v) for review of false positives on
// the background activity around it, and a table of the techniques found
// per recording is printed.
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
	table := []string{"recording | techniques (all rules) | techniques (non-process rules) | known found by non-process"}
	for _, ds := range names {
		t.Run(ds, func(t *testing.T) {
			dir := filepath.Join(root, ds)
			if _, err := os.Stat(dir); err != nil {
				t.Skipf("dataset %s absent: %v", ds, err)
			}
			hits, events := scanDataset(t, eng, dir)
			t.Logf("%d events, %d hits", events, len(hits))
			for _, h := range hits {
				what := h.cmdline
				if h.category != "process_creation" {
					what = describeEvent(&h.ev)
				}
				t.Logf("  %-56s %-13s %s", h.rule, h.source, what)
			}
			windows := !strings.HasPrefix(ds, "sd-linux-")
			for _, x := range datasetSteps[ds] {
				bySource := map[string]int{}
				for i := range hits {
					if hits[i].rule == x.rule && x.matches(&hits[i].ev) {
						bySource[hits[i].source]++
					}
				}
				if len(bySource) == 0 {
					t.Errorf("%s did not report the attack step %s %q", x.rule, x.field, x.step)
				}
				if x.field != "" {
					continue
				}
				// Windows sets hold each process creation as Sysmon 1 and as Security 4688.
				for _, src := range []string{"sysmon", "security4688"} {
					if windows && len(bySource) > 0 && bySource[src] == 0 {
						t.Errorf("%s reported %q from %v but not from %s", x.rule, x.step, bySource, src)
					}
				}
			}
			// Every hit must be on the attack: the background activity
			// recorded around it is the false-positive check.
			all, nonProc := map[string]bool{}, map[string]bool{}
			for i := range hits {
				h := &hits[i]
				if labActivity[h.rule] {
					continue
				}
				onAttack := false
				for _, x := range datasetSteps[ds] {
					onAttack = onAttack || x.matches(&h.ev)
				}
				if !onAttack {
					t.Errorf("false positive? %s on background event (%s): %s %s", h.rule, h.source, h.cmdline, describeEvent(&h.ev))
					continue
				}
				for _, tc := range h.techniques {
					all[tc] = true
					if h.category != "process_creation" {
						nonProc[tc] = true
					}
				}
			}
			var found []string
			for _, k := range knownTechniques[ds] {
				if nonProc[k] {
					found = append(found, k)
				}
			}
			if len(knownTechniques[ds]) > 0 && len(found) == 0 {
				t.Errorf("no non-process rule reported any of the known techniques %v (found %v)", knownTechniques[ds], sortedKeys(nonProc))
			}
			table = append(table, fmt.Sprintf("%s | %s | %s | %s", ds, strings.Join(sortedKeys(all), " "),
				strings.Join(sortedKeys(nonProc), " "), strings.Join(found, " ")))
		})
	}
	t.Logf("techniques found per recording (builtin pack alone):\n%s", strings.Join(table, "\n"))
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// describeEvent names a non-process event in the log: its category and the
// fields that say what it touched.
func describeEvent(ev *telemetry.Event) string {
	var parts []string
	if ev.Category != "" {
		parts = append(parts, ev.Category)
	} else {
		parts = append(parts, fmt.Sprintf("%s/%d", ev.Channel, ev.EventID))
	}
	for _, k := range []string{"Image", "SourceImage", "TargetImage", "GrantedAccess", "TargetFilename", "TargetObject",
		"Details", "ImageLoaded", "PipeName", "QueryName", "DestinationIp", "DestinationPort", "ServiceName",
		"ImagePath", "ServiceFileName", "TaskName", "ShareName", "RelativeTargetName"} {
		if v := ev.Fields.Value(k); v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}
