package web_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// upload posts a file to the intel page's form as a browser does.
func upload(t *testing.T, c *http.Client, base string, fields map[string]string, file string) (int, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", "c2-week.txt")
	io.WriteString(fw, file)
	mw.Close()
	resp, err := c.Post(base+"/intel", mw.FormDataContentType(), &b)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var intelError = regexp.MustCompile(`id="intel-error">([^<]*)<`)

// The intel page uploads a set (CSRF-checked, the API's checks), lists it
// and removes it; the store holds what the page says.
func TestIntelPage(t *testing.T) {
	f := newFleet(t)
	c := client(t)
	base := f.srv.URL
	csrf := signIn(t, c, base, f.token)
	ctx := context.Background()

	if code, _ := upload(t, c, base, map[string]string{"source": "c2"}, "198.51.100.7\n"); code != http.StatusForbidden {
		t.Fatalf("upload without CSRF: %d", code)
	}
	code, body := upload(t, c, base, map[string]string{"csrf": csrf, "source": "c2"}, `{"type": "bundle", "objects": [`)
	if m := intelError.FindStringSubmatch(body); code != http.StatusBadRequest || m == nil || !strings.Contains(m[1], "intel set c2") {
		t.Fatalf("malformed bundle: %d %v", code, m)
	}
	code, body = upload(t, c, base, map[string]string{"csrf": csrf, "confidence": "85", "ttl": "30d"},
		"198.51.100.7\nevil.example\nnot-an-indicator\n")
	if code != http.StatusOK || !strings.Contains(body, `id="intel-uploaded">c2-week: 2 indicator(s) (plain), 1 entr(ies) skipped`) {
		t.Fatalf("upload: %d\n%s", code, body)
	}
	sets, err := f.st.IntelSets(ctx)
	if err != nil || len(sets) != 1 || sets[0].Source != "c2-week" || sets[0].Confidence != 85 ||
		sets[0].TTLSeconds != int64(30*24*time.Hour/time.Second) || sets[0].Indicators != 2 {
		t.Fatalf("stored sets: %+v, %v", sets, err)
	}
	if _, body := get(t, c, base+"/intel"); !strings.Contains(body, `<td class="mono">c2-week</td>`) {
		t.Fatalf("intel page does not list the set:\n%s", body)
	}
	resp, err := c.PostForm(base+"/intel/c2-week/delete", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %s", resp.Status)
	}
	if sets, _ := f.st.IntelSets(ctx); len(sets) != 0 {
		t.Fatalf("after remove: %+v", sets)
	}
}

// The detections page filters by kind: IoC hits (intel) or IoA hits
// (rules).
func TestDetectionsKindFilter(t *testing.T) {
	f := newFleet(t)
	c := client(t)
	base := f.srv.URL
	signIn(t, c, base, f.token)
	ctx := context.Background()
	h := &store.Host{NodeKey: "k1", HostIdentifier: "web-1", Hostname: "web-1", Platform: "ubuntu", Family: "linux"}
	if err := f.st.EnrollHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ioa := store.Detection{Hit: telemetry.Hit{HitID: "h1", TechniqueID: "T1059.004", RuleTitle: "Reverse shell", RuleSource: "builtin",
		Severity: "high", Confidence: "high", Time: now, DetectedAt: now, PID: 7}}
	ioc := store.Detection{Hit: telemetry.Hit{HitID: "h2", TechniqueID: telemetry.Untagged, RuleTitle: "IOC 198.51.100.0/24",
		RuleSource: telemetry.RuleSourceIntel, Severity: "high", Confidence: "high", Time: now, DetectedAt: now, PID: 7}}
	if err := f.st.AppendLogs(ctx, h.ID, &store.LogBatch{Detections: []store.Detection{ioa, ioc}}); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string][2]bool{"": {true, true}, "ioc": {false, true}, "ioa": {true, false}} {
		_, body := get(t, c, base+"/detections?since=1h&kind="+kind)
		if got := [2]bool{strings.Contains(body, "Reverse shell"), strings.Contains(body, "IOC 198.51.100.0/24")}; got != want {
			t.Errorf("kind=%q: IoA, IoC shown %v, want %v", kind, got, want)
		}
	}
}
