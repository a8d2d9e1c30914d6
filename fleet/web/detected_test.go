package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// TestDetectionTimeAndVersionPages: the detections and incidents pages show
// the event time and the detection time, filter by either (time=event |
// detected), show techniques and tactics in one ATT&CK version (attack=18.1
// | 19) and count untagged detections apart.
func TestDetectionTimeAndVersionPages(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	h := &store.Host{NodeKey: "k", HostIdentifier: "lab-ws1", Hostname: "lab-ws1", Platform: "windows",
		Family: "windows", EnrolledAt: now, LastSeen: now}
	if err := f.st.EnrollHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	month := 30 * 24 * time.Hour
	ds := []store.Detection{
		// an imported recording's hits: events of last month, found now
		{Hit: telemetry.Hit{HitID: "imp", TechniqueID: "T1562.001", Tactic: "defense-evasion", Severity: "high", RuleTitle: "Imported Tamper Rule",
			Time: now.Add(-month), DetectedAt: now}},
		{Hit: telemetry.Hit{HitID: "sigma", TechniqueID: "T1685", Tactic: "defense-evasion", Severity: "high", RuleTitle: "SigmaHQ Tamper Rule",
			Time: now.Add(-month), DetectedAt: now}},
		{Hit: telemetry.Hit{HitID: "none", TechniqueID: telemetry.Untagged, Tactic: "execution", Severity: "medium", RuleTitle: "Untagged Rule",
			Time: now.Add(-month), DetectedAt: now}},
		// a live hit of two days ago
		{Hit: telemetry.Hit{HitID: "live", TechniqueID: "T1059.004", Tactic: "execution", Severity: "high", RuleTitle: "Live Shell Rule",
			Time: now.Add(-48 * time.Hour), DetectedAt: now.Add(-48 * time.Hour)}},
	}
	in := store.Incident{IncidentID: "inc-imported", FirstSeen: now.Add(-month), LastSeen: now.Add(-month), Score: 7,
		Severity: "high", Tactics: []string{"execution", "defense-evasion"}, Techniques: []string{"T1059", "T1562.001"},
		HitCount: 2, RootPath: `C:\Windows\System32\cmd.exe`, HitIDs: []string{"imp", "none"}, Reported: now, DetectedAt: now}
	if err := f.st.AppendLogs(ctx, h.ID, &store.LogBatch{Detections: ds, Incidents: []store.Incident{in}}); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	signIn(t, c, f.srv.URL, f.token)
	page := func(path string) string {
		t.Helper()
		resp, body := get(t, c, f.srv.URL+path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return body
	}
	has := func(path string, want, not []string) {
		t.Helper()
		body := page(path)
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", path, w)
			}
		}
		for _, n := range not {
			if strings.Contains(body, n) {
				t.Errorf("%s has %q", path, n)
			}
		}
	}
	// By event time, the last week holds only the live hit; by detection
	// time the imported ones too, with both times shown.
	has("/detections?since=7d", []string{"Live Shell Rule", "event time (UTC)", "detected (UTC)", `id="time-field"`},
		[]string{"Imported Tamper Rule"})
	has("/detections?since=1h&time=detected", []string{"Imported Tamper Rule", "SigmaHQ Tamper Rule",
		now.Add(-month).Format("2006-01-02"), `<option value="detected" selected>`, `id="untagged-count"`},
		[]string{"Live Shell Rule"})
	// One version per view: T1685 is T1562.001 in v18.1, T1562.001 is
	// T1685 in v19; the untagged hit is labelled, not linked.
	has("/detections?since=1h&time=detected", []string{`href="/techniques/T1562.001"`, ">untagged<"},
		[]string{`href="/techniques/T1685"`, `href="/techniques/untagged"`})
	has("/detections?since=1h&time=detected&attack=19", []string{`href="/techniques/T1685"`, "Defense Impairment"},
		[]string{`href="/techniques/T1562.001"`})
	has("/detections?technique=untagged", []string{"Untagged Rule"}, []string{"Live Shell Rule", "Imported Tamper Rule"})
	// Incidents: by detection time, and tactics of one version.
	has("/incidents?since=7d", nil, []string{"cmd.exe"})
	has("/incidents?since=1h&time=detected", []string{"cmd.exe", "Defense Evasion"}, []string{"Stealth", "Defense Impairment"})
	has("/incidents?since=1h&time=detected&attack=19", []string{"cmd.exe", "Defense Impairment"}, []string{"Defense Evasion"})
}
