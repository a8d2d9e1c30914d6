package rules

import (
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
)

// loadPack loads every rule of FS with the engine's loader, failing the test
// on any load error or warning (an unknown technique is a warning).
func loadPack(t testing.TB) []*detections.Rule {
	t.Helper()
	names, err := fs.Glob(FS, "*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("the pack is empty")
	}
	var rules []*detections.Rule
	for _, name := range names {
		data, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatal(err)
		}
		res, err := detections.LoadBytes(name, data, detections.Options{Source: detections.SourceBuiltin})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Errors {
			t.Errorf("%s: load error: %v", name, e)
		}
		for _, w := range res.Warnings {
			t.Errorf("%s: load warning: %v", name, w)
		}
		if len(res.Rules) != 1 {
			t.Errorf("%s: %d rules, want exactly one per file", name, len(res.Rules))
			continue
		}
		rules = append(rules, res.Rules[0])
	}
	return rules
}

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	dateRE      = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	techTagRE   = regexp.MustCompile(`^attack\.t\d{4}(\.\d{3})?$`)
	tacticTagRE = regexp.MustCompile(`^attack\.[a-z]+(-[a-z]+)*$`)
	fileRE      = regexp.MustCompile(`^([a-z_]+?)_(win|lnx)_[a-z0-9_]+\.yml$`)
)

// filePrefixes maps a rule file's prefix to the log source it must name:
// a Sigma category, or for Windows event log channels a service.
var filePrefixes = map[string]struct{ category, service string }{
	"proc_creation":        {"process_creation", ""},
	"net_connection":       {"network_connection", ""},
	"file_event":           {"file_event", ""},
	"file_delete":          {"file_delete", ""},
	"file_rename":          {"file_rename", ""},
	"create_stream_hash":   {"create_stream_hash", ""},
	"registry_set":         {"registry_set", ""},
	"registry_add":         {"registry_add", ""},
	"registry_delete":      {"registry_delete", ""},
	"registry_event":       {"registry_event", ""},
	"dns_query":            {"dns_query", ""},
	"image_load":           {"image_load", ""},
	"driver_load":          {"driver_load", ""},
	"proc_access":          {"process_access", ""},
	"create_remote_thread": {"create_remote_thread", ""},
	"pipe_created":         {"pipe_created", ""},
	"wmi_event":            {"wmi_event", ""},
	"posh_ps":              {"ps_script", ""},
	"posh_pm":              {"ps_module", ""},
	"svc_system":           {"", "system"},
	"svc_security":         {"", "security"},
	// Other Windows event log channels (serviceChannels in events_test.go
	// names the channel their test events are written to).
	"svc_defender":      {"", "windefend"},
	"svc_bits":          {"", "bits-client"},
	"svc_taskscheduler": {"", "taskscheduler"},
	"svc_firewall":      {"", "firewall-as"},
	"svc_applocker":     {"", "applocker"},
	"svc_codeintegrity": {"", "codeintegrity-operational"},
	"svc_wmi":           {"", "wmi"},
	"svc_pwsh_classic":  {"", "powershell-classic"},
	"svc_ntlm":          {"", "ntlm"},
	"svc_dns_server":    {"", "dns-server"},
	"svc_msexchange":    {"", "msexchange-management"},
	"svc_openssh":       {"", "openssh"},
	"svc_lsm":           {"", "terminalservices-localsessionmanager"},
	"svc_shell_core":    {"", "shell-core"},
}

// TestPackMetadata checks every rule carries what an analyst needs and the
// pack's conventions (README.md).
func TestPackMetadata(t *testing.T) {
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	rules := loadPack(t)
	if len(rules) < 40 {
		t.Errorf("%d rules, want at least 40", len(rules))
	}
	ids := map[string]string{}
	titles := map[string]string{}
	for _, r := range rules {
		name := path.Base(r.Path)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("%s: "+format, append([]any{name}, args...)...)
		}
		m := fileRE.FindStringSubmatch(name)
		if m == nil {
			fail("file name does not follow <category prefix>_<win|lnx>_<what>.yml")
			continue
		}
		want, ok := filePrefixes[m[1]]
		if !ok {
			fail("file name prefix %q names no log source (see filePrefixes)", m[1])
			continue
		}
		wantProduct := map[string]string{"win": "windows", "lnx": "linux"}[m[2]]
		ls := r.Logsource
		if ls.Category != want.category || ls.Service != want.service || ls.Product != wantProduct {
			fail("logsource %s/%s/%s (product/category/service), want %s/%s/%s",
				ls.Product, ls.Category, ls.Service, wantProduct, want.category, want.service)
		}
		if !uuidRE.MatchString(r.ID) {
			fail("id %q is not a lower-case UUID v4", r.ID)
		}
		if other, dup := ids[r.ID]; dup {
			fail("id %s also used by %s", r.ID, other)
		}
		ids[r.ID] = name
		if other, dup := titles[strings.ToLower(r.Title)]; dup {
			fail("title also used by %s", other)
		}
		titles[strings.ToLower(r.Title)] = name
		if r.Author != "Quarry team" {
			fail("author %q, want \"Quarry team\"", r.Author)
		}
		switch r.Status {
		case "stable", "test", "experimental":
		default:
			fail("status %q, want stable, test or experimental", r.Status)
		}
		if !dateRE.MatchString(r.Sigma.Date) {
			fail("date %q, want YYYY-MM-DD", r.Sigma.Date)
		}
		if len(strings.TrimSpace(r.Description)) < 80 {
			fail("description too short for an analyst (%d characters)", len(strings.TrimSpace(r.Description)))
		}
		if r.ConfidenceDerived || r.Confidence == "" {
			fail("confidence missing (derived %q)", r.Confidence)
		}
		if r.RecommendationsDerived || len(strings.TrimSpace(r.Recommendations)) < 40 {
			fail("recommendations missing or too short")
		}
		switch r.Level {
		case "informational", "low", "medium", "high", "critical":
		default:
			fail("level %q", r.Level)
		}
		if len(r.FalsePositives) == 0 {
			fail("falsepositives missing")
		}
		checkTags(t, kb, name, r)
	}
}

// checkTags: tags are well formed, every technique exists in ATT&CK v18.1
// (live, or redirected), every tactic exists, and every technique belongs to
// at least one of the rule's tactics.
func checkTags(t *testing.T, kb *attack.KB, name string, r *detections.Rule) {
	t.Helper()
	tactics := map[string]bool{}
	var techs []string
	for _, tag := range r.Tags {
		switch {
		case techTagRE.MatchString(tag):
			techs = append(techs, strings.ToUpper(strings.TrimPrefix(tag, "attack.")))
		case tacticTagRE.MatchString(tag):
			sn := strings.TrimPrefix(tag, "attack.")
			if _, ok := kb.Tactic(sn); !ok {
				t.Errorf("%s: tag %s: no such ATT&CK tactic", name, tag)
			}
			tactics[sn] = true
		default:
			t.Errorf("%s: tag %q is neither attack.<tactic> nor attack.tNNNN[.NNN]", name, tag)
		}
	}
	if len(techs) == 0 || len(tactics) == 0 {
		t.Errorf("%s: needs at least one technique and one tactic tag", name)
	}
	for _, id := range techs {
		tech, from, ok := kb.Resolve(id)
		if !ok {
			t.Errorf("%s: technique %s unknown to ATT&CK %s", name, id, kb.Version())
			continue
		}
		if from != "" || !tech.Live() {
			t.Errorf("%s: technique %s is not current in ATT&CK %s (resolves to %s)", name, id, kb.Version(), tech.ID)
		}
		if kb.IDInVersion(id, true) == "" {
			t.Errorf("%s: technique %s has no place in ATT&CK v19 (overlay %s)", name, id, kb.OverlayVersion())
		}
		found := false
		for _, ta := range tech.Tactics {
			if tactics[ta] {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: technique %s (%s) belongs to %v, none of which the rule tags", name, id, tech.Name, tech.Tactics)
		}
	}
}

// TestPackSummary logs the pack by platform and tactic (go test -v).
func TestPackSummary(t *testing.T) {
	rules := loadPack(t)
	byProduct := map[string]int{}
	byTactic := map[string]int{}
	byCategory := map[string]int{}
	for _, r := range rules {
		byProduct[r.Logsource.Product]++
		ls := r.Logsource.Category
		if ls == "" {
			ls = "service:" + r.Logsource.Service
		}
		byCategory[r.Logsource.Product+"/"+ls]++
		for _, tag := range r.Tags {
			if tacticTagRE.MatchString(tag) {
				byTactic[strings.TrimPrefix(tag, "attack.")]++
			}
		}
	}
	t.Logf("%d rules: %v", len(rules), byProduct)
	var cs []string
	for k := range byCategory {
		cs = append(cs, k)
	}
	sort.Strings(cs)
	for _, k := range cs {
		t.Logf("  %-40s %d", k, byCategory[k])
	}
	var ts []string
	for k := range byTactic {
		ts = append(ts, k)
	}
	sort.Strings(ts)
	for _, k := range ts {
		t.Logf("  %-22s %d", k, byTactic[k])
	}
}
