package detections

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/detections/sigma"
	"github.com/quarry-sec/quarry/telemetry"
)

// cacheTestRules copies the builtin pack's rule files and testdata's into
// a fresh directory and returns their paths.
func cacheTestRules(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	var srcs []string
	for _, glob := range []string{"rules/*.yml", "rules/correlations/*.yml", "testdata/*.yml"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, m...)
	}
	if len(srcs) < 10 {
		t.Fatalf("only %d rule files found", len(srcs))
	}
	for _, s := range srcs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ReplaceAll(s, string(filepath.Separator), "_")
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	paths, err := ruleFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, paths
}

// ruleFacts is a rule without its compiled program, for comparison.
func ruleFacts(r *Rule) Rule {
	c := *r
	c.prog, c.lazy = nil, nil
	return c
}

// sameLoad fails unless two load results hold equal rules, errors and
// warnings.
func sameLoad(t *testing.T, what string, want, got *LoadResult) {
	t.Helper()
	if len(want.Rules) != len(got.Rules) || want.Files != got.Files {
		t.Fatalf("%s: %d rules from %d files, want %d from %d", what, len(got.Rules), got.Files, len(want.Rules), want.Files)
	}
	for i := range want.Rules {
		if w, g := ruleFacts(want.Rules[i]), ruleFacts(got.Rules[i]); !reflect.DeepEqual(w, g) {
			t.Fatalf("%s: rule %d (%s) differs:\n got  %+v\n want %+v", what, i, w.Path, g.Sigma, w.Sigma)
		}
	}
	msgs := func(es []*LoadError) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Error())
		}
		return out
	}
	for _, l := range []struct {
		name      string
		want, got []*LoadError
	}{{"errors", want.Errors, got.Errors}, {"warnings", want.Warnings, got.Warnings}, {"skipped", want.Skipped, got.Skipped}} {
		if !slices.Equal(msgs(l.want), msgs(l.got)) {
			t.Fatalf("%s: %s differ:\n got  %q\n want %q", what, l.name, msgs(l.got), msgs(l.want))
		}
	}
}

// hitsOf returns every (event, rule) hit of rules over evs.
func hitsOf(rules []*Rule, evs []*telemetry.Event) []string {
	e := NewEngine(rules)
	var out []string
	for i, ev := range evs {
		e.Match(ev, func(h Hit) {
			out = append(out, strings.Join([]string{string(rune('0' + i%10)), h.Rule.Path, h.Rule.ID}, " "))
		})
	}
	return out
}

func TestRuleCacheGivesSameRules(t *testing.T) {
	_, paths := cacheTestRules(t)
	cache := filepath.Join(t.TempDir(), "cache")
	plain, err := LoadFiles(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cold, err := LoadFiles(paths, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "rules-*.bin"))
	if len(files) != 1 {
		t.Fatalf("cache files after a cold load: %v", files)
	}
	warm, err := LoadFiles(paths, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	sameLoad(t, "cold", plain, cold)
	sameLoad(t, "warm", plain, warm)
	lazy := 0
	for _, r := range warm.Rules {
		if r.lazy != nil {
			lazy++
		}
	}
	if lazy == 0 {
		t.Fatal("no rule of the warm load came from the cache")
	}
	evs := corpus(t, 3000, false)
	want := hitsOf(plain.Rules, evs)
	if len(want) == 0 {
		t.Fatal("the test corpus gives no hits: the comparison would prove nothing")
	}
	if got := hitsOf(warm.Rules, evs); !slices.Equal(got, want) {
		t.Fatalf("warm load: %d hits, uncached %d", len(got), len(want))
	}
}

func TestRuleCacheSigmaHQ(t *testing.T) {
	paths := sigmaHQPaths(t)
	cache := t.TempDir()
	plain, err := LoadFiles(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFiles(paths, Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	warm, err := LoadFiles(paths, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	sameLoad(t, "warm", plain, warm)
	evs := corpus(t, 2000, false)
	want := hitsOf(plain.Rules, evs)
	if got := hitsOf(warm.Rules, evs); !slices.Equal(got, want) || len(want) == 0 {
		t.Fatalf("warm load: %d hits, uncached %d", len(got), len(want))
	}
}

func TestRuleCacheInvalidatedByChangedFile(t *testing.T) {
	dir, paths := cacheTestRules(t)
	cache := t.TempDir()
	if _, err := LoadFiles(paths, Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	// Change one rule's title in place (same path, same size class).
	target := paths[0]
	for _, p := range paths {
		if strings.Contains(p, "proc_creation") {
			target = p
			break
		}
	}
	b, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(b), "title: ", "title: Changed ", 1)
	if changed == string(b) {
		t.Fatalf("%s has no title", target)
	}
	if err := os.WriteFile(target, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadFiles(paths, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := LoadFiles(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameLoad(t, "after a change", plain, got)
	found := false
	for _, r := range got.Rules {
		if r.Path == target && strings.HasPrefix(r.Title, "Changed ") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the changed title of %s was not loaded", target)
	}
	// A removed file changes the key too.
	if err := os.Remove(paths[len(paths)-1]); err != nil {
		t.Fatal(err)
	}
	rest, err := ruleFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err = LoadFiles(rest, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	plain, err = LoadFiles(rest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameLoad(t, "after a removal", plain, got)
}

func TestRuleCacheCorruptIgnored(t *testing.T) {
	_, paths := cacheTestRules(t)
	cache := t.TempDir()
	plain, err := LoadFiles(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFiles(paths, Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "rules-*.bin"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	orig, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"flipped byte", func() []byte { b := slices.Clone(orig); b[len(b)/2] ^= 0x20; return b }()},
		{"changed title", func() []byte {
			b := slices.Clone(orig)
			i := bytes.Index(b, []byte(plain.Rules[0].Title))
			if i < 0 {
				t.Fatal("title not found in the cache file")
			}
			b[i] ^= 0x20 // the checksum alone tells
			return b
		}()},
		{"truncated", orig[:len(orig)/3]},
		{"empty", nil},
		{"garbage", []byte(strings.Repeat("not a cache ", 100))},
	} {
		if err := os.WriteFile(files[0], c.b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := LoadFiles(paths, Options{CacheDir: cache})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sameLoad(t, c.name, plain, got)
		if b, _ := os.ReadFile(files[0]); !slices.Equal(b, orig) {
			t.Fatalf("%s: the cache was not written anew", c.name)
		}
	}
}

// FuzzDecodeCache: no cache file content makes the decoder panic or
// allocate without bound.
func FuzzDecodeCache(f *testing.F) {
	paths := []string{"a.yml", "b.yml"}
	data, err := os.ReadFile("testdata/forms.yml")
	if err != nil {
		f.Fatal(err)
	}
	var prs []parsedRule
	for _, r := range sigma.Parse("a.yml", data).Rules {
		prs = append(prs, parsedRule{sr: r, compWarn: []string{"w"}})
	}
	enc := encodeCache(paths, [][]parsedRule{prs, nil})
	f.Add(enc[:len(enc)-sha256.Size])
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := decodeBody(b, paths)
		if err == nil && len(files) != len(paths) {
			t.Fatalf("decoded %d files", len(files))
		}
	})
}
