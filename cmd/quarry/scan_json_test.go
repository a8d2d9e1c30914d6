package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry"
)

// hitJSON is a JSON line: the hit's ioa_hits columns, times in UNIX
// seconds as ioa_hits has them, plus where the event came from. appendHitJSON
// writes the bytes encoding/json gives this type; the tests compare them.
type hitJSON struct {
	*telemetry.Hit
	Time int64 `json:"time"`
	// DetectedAt is not part of a scan line (this hides the Hit's).
	DetectedAt *struct{} `json:"detected_at,omitempty"`
	SourceFile string    `json:"source_file"`
	Record     int64     `json:"record"`
}

// encodingJSONLine is a scan line as encoding/json writes hitJSON.
func encodingJSONLine(t testing.TB, r *telemetry.Hit, file string, record int64) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(hitJSON{Hit: r, Time: r.Time.Unix(), SourceFile: file, Record: record}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// awkward are strings every JSON escape applies to.
var awkward = []string{
	"", "plain", `C:\Windows\System32\cmd.exe`, `"quoted" and \back\slashed\`, "tab\tnew\nline\r\x00\x01\x1f\x7f",
	"bell\b form\f", "<html> & 'quotes'", "é ü 日本 🙂", "bad \xff utf-8 \xc3", "line\u2028para\u2029sep", "\xe2\x80",
	"ends in backslash\\",
	// Longer than a word: escapes past the first eight bytes, in the
	// middle of a word and at its end.
	`"C:\Program Files (x86)\Microsoft Office\root\Office16\WINWORD.EXE" /n "\\srv\share\doc.docx"`,
	"abcdefg\x7fhijklmn\topqrstu\x00vwxyzabc\u00e9defghijk\xffABCDEFG\u2028HIJKLMNOP",
}

func TestScanJSONLineAsEncodingJSON(t *testing.T) {
	at := time.Date(2025, 10, 24, 1, 2, 3, 999, time.FixedZone("x", 3600))
	for i, s := range awkward {
		r := telemetry.Hit{HitID: s, Time: at, Host: s, RuleID: s, RuleTitle: s, RuleAuthor: s, RuleSource: s,
			TechniqueID: s, TechniqueName: s, Tactic: s, Severity: s, Confidence: s, Description: s,
			Recommendations: s, EID: int64(i) - 3, PID: -int64(i) << 40, Path: s, Cmdline: s, ParentPath: s,
			Username: s, Source: s, DetectedAt: at}
		want := encodingJSONLine(t, &r, s, int64(i)*1e12)
		if got := string(appendHitJSON(nil, &r, s, int64(i)*1e12)); got != want {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func FuzzScanJSONLine(f *testing.F) {
	for _, s := range awkward {
		f.Add(s, s, int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64) {
		r := telemetry.Hit{HitID: a, Time: time.Unix(n, 0), Host: b, RuleTitle: a + b, Description: b, Cmdline: a,
			EID: n, PID: -n, Username: b}
		want := encodingJSONLine(t, &r, b, n)
		if got := string(appendHitJSON(nil, &r, b, n)); got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

// TestScanRuleRowsAsRecords: a JSON scan writes and counts a rule's hits
// through its rule rows (reportRows) exactly as through each hit's
// records (what scan --store does): same lines, same summary counts, same
// layer, in both ATT&CK versions. Builtin pack on the test recordings, and
// with ../shared, SigmaHQ's process_creation rules on their regression
// events (rules with several techniques and tactics).
func TestScanRuleRowsAsRecords(t *testing.T) {
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"../../telemetry/importers/testdata/security-datasets", "../../telemetry/importers/testdata/sigma",
		"testdata/mshta-chain.json"}
	cfg := ruleset.Config{Builtin: true, KB: kb, Custom: []string{"testdata/rules/bits_custom.yml"}}
	sigma := filepath.Join("..", "..", "..", "shared", "sigma")
	if _, err := os.Stat(sigma); err == nil {
		cfg.Sigma = []string{filepath.Join(sigma, "rules", "windows", "process_creation")}
		inputs = append(inputs, filepath.Join(sigma, "regression_data", "rules", "windows", "process_creation"))
	} else {
		t.Logf("SigmaHQ material not found at %s (../shared absent): builtin rules and test recordings only", sigma)
	}
	res, err := ruleset.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	multi := 0
	for _, v19 := range []bool{false, true} {
		run := func(general bool) (*scanner, string) {
			var out bytes.Buffer
			sc := &scanner{engine: detections.NewEngine(res.Rules), kb: kb, v19: v19, format: formatJSON, out: &out,
				bySeverity: map[string]int{}, byTechnique: map[string]int{}, byTactic: map[string]int{},
				layer: map[string]attack.LayerScore{}}
			if general {
				sc.onHit = func(detections.Hit, []telemetry.Hit) {}
			}
			if err := sc.scanFiles(context.Background(), inputs, "", io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			return sc, out.String()
		}
		fast, fastOut := run(false)
		slow, slowOut := run(true)
		if fast.hits < 5 {
			t.Fatalf("only %d hits: the test needs more", fast.hits)
		}
		if len(fast.rows) == 0 {
			t.Fatal("no hit took the rule rows")
		}
		for _, rr := range fast.rows {
			if len(rr.middles) > 1 {
				multi++
			}
		}
		if fastOut != slowOut {
			f, s := strings.Split(fastOut, "\n"), strings.Split(slowOut, "\n")
			for i := range min(len(f), len(s)) {
				if f[i] != s[i] {
					t.Fatalf("v19 %v: line %d differs:\nrule rows %s\nrecords   %s", v19, i+1, f[i], s[i])
				}
			}
			t.Fatalf("v19 %v: %d lines through rule rows, %d through records", v19, len(f), len(s))
		}
		for _, c := range []struct {
			name       string
			fast, slow any
		}{
			{"hits", fast.hits, slow.hits}, {"untagged", fast.untagged, slow.untagged},
			{"bySeverity", fast.bySeverity, slow.bySeverity}, {"byTechnique", fast.byTechnique, slow.byTechnique},
			{"byTactic", fast.byTactic, slow.byTactic}, {"layer", fast.layer, slow.layer},
		} {
			if !reflect.DeepEqual(c.fast, c.slow) {
				t.Errorf("v19 %v: %s: rule rows %v, records %v", v19, c.name, c.fast, c.slow)
			}
		}
		t.Logf("v19 %v: %d hits, %d lines, %d rules hit", v19, fast.hits, strings.Count(fastOut, "\n"), len(fast.rows))
	}
	if multi == 0 {
		t.Log("no rule with several techniques hit (with ../shared, SigmaHQ's rules give some)")
	}
}

// TestPlainPrefix compares plainPrefix with jsonPlain for every byte value
// at every position of a string of three words and three bytes, alone and
// with a backslash after it.
func TestPlainPrefix(t *testing.T) {
	for pos := 0; pos < 27; pos++ {
		for c := 0; c < 256; c++ {
			w := []byte("abcdefgh01234567ABCDEFGHxyz")
			w[pos] = byte(c)
			want := len(w)
			if c >= utf8.RuneSelf || !jsonPlain[c] {
				want = pos
			}
			if got := plainPrefix(string(w)); got != want {
				t.Fatalf("plainPrefix(%q) = %d, want %d", w, got, want)
			}
			if pos+1 < len(w) {
				bs := pos + 1 + c%(len(w)-pos-1)
				w[bs] = '\\'
				if got := plainPrefix(string(w)); got != min(want, bs) {
					t.Fatalf("plainPrefix(%q) = %d, want %d", w, got, min(want, bs))
				}
			}
		}
	}
}

// BenchmarkAppendJSONString writes a command line and a path (with the
// backslashes JSON escapes) as scan's hit lines do.
func BenchmarkAppendJSONString(b *testing.B) {
	for _, s := range []string{
		`"C:\Program Files\Git\cmd\git.exe" -c core.quotepath=false -c color.ui=false log --format=%H%n%aN%n%aE%n%at%n%P%n%D%n%B -n 50 --skip=0 fetch --all --prune --tags --recurse-submodules=on-demand status --porcelain=v2`,
		`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`,
	} {
		b.Run(fmt.Sprintf("len=%d", len(s)), func(b *testing.B) {
			var buf []byte
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				buf = appendJSONString(buf[:0], s)
			}
		})
	}
}
