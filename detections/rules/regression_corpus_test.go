package rules

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// sigmaHQDir is SigmaHQ's material (rules and regression_data):
// QUARRY_SIGMA, else the sigma folder beside the datasets folder
// (../shared/sigma beside the repo).
func sigmaHQDir() string {
	if d := os.Getenv("QUARRY_SIGMA"); d != "" {
		return d
	}
	return filepath.Join(filepath.Dir(datasetsDir()), "sigma")
}

// techniqueCanon compares ATT&CK technique IDs across versions: every ID is
// taken to its place in the v19 matrix (old IDs such as T1562.001 to their
// v19 successor T1685), through the knowledge base with the v19 overlay.
type techniqueCanon struct{ kb *attack.KB }

// id returns the v19 ID of a technique ID; an ID the knowledge base cannot
// place keeps its own (upper-cased) form.
func (c techniqueCanon) id(raw string) string {
	raw = strings.ToUpper(strings.TrimSpace(raw))
	if v := c.kb.IDInVersion(raw, true); v != "" {
		return v
	}
	if t, _, ok := c.kb.Resolve(raw); ok {
		return t.ID
	}
	return raw
}

// parent returns the technique of a sub-technique ID, the ID itself otherwise.
func parent(id string) string {
	if i := strings.IndexByte(id, '.'); i > 0 {
		return id[:i]
	}
	return id
}

// name returns the ID followed by its ATT&CK name (the v19 name when it has one).
func (c techniqueCanon) name(id string) string {
	t, ok := c.kb.Technique(id)
	if !ok {
		return id
	}
	n := t.Name
	if t.NameV19 != "" {
		n = t.NameV19
	}
	return id + " " + n
}

// regressionRecording is one SigmaHQ regression recording with what it is
// known to show: the techniques the SigmaHQ rule it tests is tagged with.
type regressionRecording struct {
	dir      string // relative to regression_data
	evtx     string
	ruleID   string
	rulePath string // relative to the SigmaHQ folder
	category string // the SigmaHQ rule's logsource category
	tagged   []string
}

type regressionInfoFile struct {
	RuleMetadata []struct {
		ID string `yaml:"id"`
	} `yaml:"rule_metadata"`
	Tests []struct {
		Type string `yaml:"type"`
		Path string `yaml:"path"`
	} `yaml:"regression_tests_info"`
}

// regressionRecordings lists every EVTX recording of SigmaHQ's regression
// data with the rule it tests (found by the rule ID of its info.yml among
// SigmaHQ's rules, rules-emerging-threats and rules-threat-hunting).
func regressionRecordings(t *testing.T, sigma string) []regressionRecording {
	t.Helper()
	root := filepath.Join(sigma, "regression_data")
	var recs []regressionRecording
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "info.yml" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var info regressionInfoFile
		if err := yaml.Unmarshal(data, &info); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		dir := filepath.Dir(p)
		rel, _ := filepath.Rel(root, dir)
		for _, tc := range info.Tests {
			if tc.Type != "evtx" {
				continue
			}
			if len(info.RuleMetadata) == 0 {
				return fmt.Errorf("%s: rule_metadata missing", p)
			}
			recs = append(recs, regressionRecording{dir: rel, evtx: filepath.Join(dir, path.Base(tc.Path)),
				ruleID: info.RuleMetadata[0].ID})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("regression data %s: %v", root, err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].dir < recs[j].dir })

	want := map[string][]int{}
	for i, r := range recs {
		want[r.ruleID] = append(want[r.ruleID], i)
	}
	for _, sub := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
		err := filepath.WalkDir(filepath.Join(sigma, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yml") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for id, idx := range want {
				if !bytes.Contains(data, []byte("id: "+id)) {
					continue
				}
				res, err := detections.LoadBytes(filepath.Base(p), data, detections.Options{})
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				for _, rule := range res.Rules {
					if rule.ID != id {
						continue
					}
					rel, _ := filepath.Rel(sigma, p)
					for _, i := range idx {
						recs[i].rulePath, recs[i].category = rel, rule.Logsource.Category
						for _, tc := range rule.Techniques {
							recs[i].tagged = append(recs[i].tagged, tc.ID)
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("SigmaHQ rules: %v", err)
		}
	}
	return recs
}

// corpusFold is the half of the corpus a recording belongs to, "a" or
// "b": the lowest bit of the first byte of the SHA-256 of its folder
// (relative to regression_data, slash-separated). The split was fixed
// before any rule was written from the corpus; it is the cross-validation
// split of docs/detection.md: rules written from the recordings of one
// fold are measured on the other fold only.
func corpusFold(dir string) string {
	if sum := sha256.Sum256([]byte(filepath.ToSlash(dir))); sum[0]&1 == 1 {
		return "b"
	}
	return "a"
}

// regressionOutcome is what the builtin pack said on one recording.
type regressionOutcome struct {
	events, skipped int
	hits            map[string][]string // builtin rule file → its techniques (v19 IDs)
	exact, family   bool
}

// runRecording imports a recording once and runs its events through each
// of engs, returning one outcome per engine, or nil and failing the test
// when the file cannot be read.
func runRecording(t *testing.T, canon techniqueCanon, rec regressionRecording, engs ...*detections.Engine) []*regressionOutcome {
	t.Helper()
	r, _, err := importers.Open(rec.evtx)
	if err != nil {
		t.Errorf("%s: %v", rec.dir, err)
		return nil
	}
	defer r.Close()
	outs := make([]*regressionOutcome, len(engs))
	for i := range outs {
		outs[i] = &regressionOutcome{hits: map[string][]string{}}
	}
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *telemetry.RecordError
		if errors.As(err, &re) {
			for _, out := range outs {
				out.skipped++
			}
			t.Logf("%s: skipped record: %v", rec.dir, err)
			continue
		}
		if err != nil {
			t.Errorf("%s: import: %v", rec.dir, err)
			return nil
		}
		for i, eng := range engs {
			out := outs[i]
			out.events++
			eng.Match(&ev, func(h detections.Hit) {
				name := path.Base(h.Rule.Path)
				if _, ok := out.hits[name]; ok {
					return
				}
				techs := []string{}
				for _, tc := range h.Techniques {
					techs = append(techs, canon.id(tc.ID))
				}
				out.hits[name] = techs
			})
		}
	}
	for _, out := range outs {
		for _, techs := range out.hits {
			exact, family := canon.names(techs, rec.tagged)
			out.exact, out.family = out.exact || exact, out.family || family
		}
	}
	return outs
}

// names tells whether hit techniques name a known technique: exact when a
// hit is the known technique or one of its sub-techniques; family when a
// hit shares its parent technique (a parent hit for a known sub-technique,
// or a sibling sub-technique). IDs of any ATT&CK version are compared in v19.
func (c techniqueCanon) names(hit, known []string) (exact, family bool) {
	for _, h := range hit {
		h = c.id(h)
		for _, k := range known {
			k = c.id(k)
			exact = exact || h == k || parent(h) == k
			family = family || parent(h) == parent(k)
		}
	}
	return exact, family
}

// corpusDerived reads testdata/corpus_derived.tsv: per fold, the rule files
// written ("new") or changed ("changed") from recordings of that fold. Every
// listed file must be in the pack, and a changed one must have its blind
// form in testdata/corpus_blind.
func corpusDerived(t *testing.T, pack []*detections.Rule) map[string]map[string]string {
	t.Helper()
	const name = "testdata/corpus_derived.tsv"
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	inPack := map[string]bool{}
	for _, r := range pack {
		inPack[path.Base(r.Path)] = true
	}
	derived := map[string]map[string]string{"a": {}, "b": {}}
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 4 || derived[cols[0]] == nil || (cols[3] != "new" && cols[3] != "changed") {
			t.Fatalf("%s:%d: want fold (a|b), rule file, recording folder, new|changed separated by tabs: %q", name, i+1, line)
		}
		if !inPack[cols[1]] {
			t.Fatalf("%s:%d: %s is not in the pack", name, i+1, cols[1])
		}
		if prev := derived[cols[0]][cols[1]]; prev != "" && prev != cols[3] {
			t.Fatalf("%s:%d: %s is both new and changed in fold %s", name, i+1, cols[1], cols[0])
		}
		derived[cols[0]][cols[1]] = cols[3]
	}
	return derived
}

// otherFold names the fold whose rules measure fold.
func otherFold(fold string) string {
	if fold == "a" {
		return "b"
	}
	return "a"
}

// heldOut returns the pack that measures fold: the pack as the other fold's
// writers alone would have left it. A rule the cross-fold merge changed is
// taken in the form the other fold left it (testdata/corpus_fold_forms/
// <other fold>); otherwise a rule written from fold is left out, and a rule
// changed from it is taken in its blind form (testdata/corpus_blind).
func heldOut(t *testing.T, pack []*detections.Rule, derived map[string]map[string]string, fold string) []*detections.Rule {
	t.Helper()
	other := otherFold(fold)
	forms := foldForms(t, other)
	var out []*detections.Rule
	for _, r := range pack {
		base := path.Base(r.Path)
		if forms[base] {
			r = loadForm(t, filepath.Join("testdata", "corpus_fold_forms", other, base), r)
		} else {
			switch derived[fold][base] {
			case "new":
				continue
			case "changed":
				r = loadForm(t, filepath.Join("testdata", "corpus_blind", base), r)
			}
		}
		out = append(out, r)
	}
	return out
}

// foldForms lists the rule files testdata/corpus_fold_forms/<fold> holds.
func foldForms(t *testing.T, fold string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", "corpus_fold_forms", fold))
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]bool{}
	for _, e := range entries {
		forms[e.Name()] = true
	}
	return forms
}

// loadForm loads the other form of a pack rule from the file name; it must
// be one rule with the pack rule's ID.
func loadForm(t *testing.T, name string, of *detections.Rule) *detections.Rule {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("form of %s: %v", path.Base(of.Path), err)
	}
	res, err := detections.LoadBytes(path.Base(name), data, detections.Options{Source: detections.SourceBuiltin})
	if err != nil || len(res.Errors) > 0 || len(res.Rules) != 1 {
		t.Fatalf("%s: want one rule: %v %v", name, err, res.Errors)
	}
	if res.Rules[0].ID != of.ID {
		t.Fatalf("%s: rule ID %s, want the pack rule's %s", name, res.Rules[0].ID, of.ID)
	}
	return res.Rules[0]
}

// corpusTally counts recordings and what the pack found on them.
type corpusTally struct{ recs, tagged, fired, exact, family int }

// corpusTable is the per-category figure of one measurement.
type corpusTable struct {
	byCat  map[string]*corpusTally
	groups map[string]*corpusTally
}

func newCorpusTable() *corpusTable {
	return &corpusTable{byCat: map[string]*corpusTally{},
		groups: map[string]*corpusTally{"process_creation": {}, "other categories": {}, "all": {}}}
}

// add counts one recording's outcome.
func (ct *corpusTable) add(rec regressionRecording, known []string, out *regressionOutcome) {
	group := "other categories"
	if rec.category == "process_creation" {
		group = "process_creation"
	}
	if ct.byCat[rec.category] == nil {
		ct.byCat[rec.category] = &corpusTally{}
	}
	for _, tl := range []*corpusTally{ct.byCat[rec.category], ct.groups[group], ct.groups["all"]} {
		tl.recs++
		if len(known) > 0 {
			tl.tagged++
		}
		if len(out.hits) > 0 {
			tl.fired++
		}
		if out.exact {
			tl.exact++
		}
		if out.family {
			tl.family++
		}
	}
}

// String prints the table: one row per category, then the groups.
func (ct *corpusTable) String() string {
	pct := func(n, d int) string {
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(d))
	}
	row := func(name string, tl *corpusTally) string {
		return fmt.Sprintf("%-18s | %4d | %6d | %5d %4s | %6d %4s | %4d %4s | %8d %4s", name, tl.recs, tl.tagged,
			tl.exact, pct(tl.exact, tl.tagged), tl.family, pct(tl.family, tl.tagged), tl.exact, pct(tl.exact, tl.recs),
			tl.fired, pct(tl.fired, tl.recs))
	}
	table := []string{
		"category           | recs | tagged | found/tagged | family/tagged | found/recs | any hit/recs",
	}
	cats := make([]string, 0, len(ct.byCat))
	for c := range ct.byCat {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		if ct.groups[c] == nil { // process_creation is its own group: one row
			table = append(table, row(c, ct.byCat[c]))
		}
	}
	for _, g := range []string{"process_creation", "other categories", "all"} {
		table = append(table, row(g, ct.groups[g]))
	}
	return strings.Join(table, "\n")
}

// TestRegressionCorpusCoverage measures the builtin pack alone (Quarry's
// own IoA rules, loaded as TestDatasetsAcceptance loads them; no SigmaHQ
// rule) on a broad corpus of public attack recordings: SigmaHQ's regression
// data (../shared/sigma/regression_data), 100 EVTX recordings of real
// attack events, each beside the SigmaHQ rule it tests. A recording's known
// technique is what that SigmaHQ rule is tagged with (attack.tXXXX). Each
// recording is imported from its EVTX file with Quarry's importer and its
// events are matched against the builtin pack; it counts as found when a
// builtin hit names a known technique: the same technique or one of its
// sub-techniques (a hit on T1003.001 for a rule tagged T1003). IDs are
// compared in ATT&CK v19 (the embedded v18.1 knowledge base with the v19
// overlay), so an old and a new ID of one technique are equal (T1562.001
// and T1685). The "family" column is more lenient: it also counts a parent
// hit for a tagged sub-technique and a sibling sub-technique (T1003.002
// for T1003.001). Recordings whose SigmaHQ rule carries no technique tag
// (tactic only) have no known technique: they are listed, kept out of the
// percentage, and counted as misses in the figure over all recordings.
//
// The headline is cross-validated. The corpus is split in two fixed folds
// (corpusFold); some rules were written or changed from the recordings of
// one fold (testdata/corpus_derived.tsv), and each recording is measured by
// the pack as the other fold's writers left it: without the rules that came
// from its own fold, with the blind form of those changed from it, and with
// the other fold's form of a rule that merging the two folds changed
// (testdata/corpus_fold_forms). Until those rules the pack had never been
// tuned on this corpus, so the figure stays a held-out one. The whole pack's figure is printed too, marked as not
// held out. With QUARRY_CORPUS_FOLD=a or b only that fold is run, with the
// whole pack: the view of someone writing rules from that fold.
//
// The figure is measured, not asserted: no threshold. The test fails only
// when the measurement itself is broken (a recording that does not import,
// a rule not found, no recording at all, a bad corpus_derived.tsv line).
// docs/detection.md has the figures and their history.
func TestRegressionCorpusCoverage(t *testing.T) {
	sigma := sigmaHQDir()
	if _, err := os.Stat(filepath.Join(sigma, "regression_data")); err != nil {
		t.Skipf("SigmaHQ regression data not found under %s (set QUARRY_SIGMA to the folder of /work/shared/sigma): %v", sigma, err)
	}
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	canon := techniqueCanon{kb}
	pack := loadPack(t)
	derived := corpusDerived(t, pack)
	whole := detections.NewEngine(pack)
	held := map[string]*detections.Engine{
		"a": detections.NewEngine(heldOut(t, pack, derived, "a")),
		"b": detections.NewEngine(heldOut(t, pack, derived, "b")),
	}
	recs := regressionRecordings(t, sigma)
	if len(recs) == 0 {
		t.Fatalf("no EVTX recording found under %s", sigma)
	}
	fold := os.Getenv("QUARRY_CORPUS_FOLD")
	if fold != "" {
		if fold != "a" && fold != "b" {
			t.Fatalf("QUARRY_CORPUS_FOLD=%q: want a or b", fold)
		}
		var in []regressionRecording
		for _, rec := range recs {
			if corpusFold(rec.dir) == fold {
				in = append(in, rec)
			}
		}
		t.Logf("fold %s: %d of %d recordings, measured with the whole pack", fold, len(in), len(recs))
		recs = in
	}

	cv, all := newCorpusTable(), newCorpusTable()
	foldFound, foldTagged := map[string]int{}, map[string]int{} // held out, per fold
	measured := 0
	missed := map[string][]string{} // tagged technique → recordings that miss it
	var untagged []string
	for _, rec := range recs {
		if rec.rulePath == "" {
			t.Errorf("%s: SigmaHQ rule %s not found", rec.dir, rec.ruleID)
			continue
		}
		engs := []*detections.Engine{whole}
		if fold == "" {
			engs = append(engs, held[corpusFold(rec.dir)])
		}
		outs := runRecording(t, canon, rec, engs...)
		if outs == nil {
			continue
		}
		out := outs[0]
		if out.events == 0 {
			t.Errorf("%s: no event imported from %s", rec.dir, filepath.Base(rec.evtx))
		}
		shown := outs[len(outs)-1] // the held-out outcome, or the whole pack's on one fold: the lines below show it
		measured++
		var known []string
		for _, k := range rec.tagged {
			known = append(known, canon.id(k))
		}
		all.add(rec, known, out)
		cv.add(rec, known, shown)
		if len(known) > 0 {
			foldTagged[corpusFold(rec.dir)]++
			if shown.exact {
				foldFound[corpusFold(rec.dir)]++
			}
		}
		var hits []string
		for rule, techs := range shown.hits {
			hits = append(hits, rule+"["+strings.Join(techs, ",")+"]")
		}
		sort.Strings(hits)
		verdict := "miss"
		switch {
		case len(known) == 0:
			verdict = "untagged"
			untagged = append(untagged, rec.dir)
		case shown.exact:
			verdict = "FOUND"
		case shown.family:
			verdict = "family"
		}
		if len(known) > 0 && !shown.exact {
			seen := map[string]bool{}
			for _, k := range known {
				if !seen[k] {
					seen[k] = true
					missed[k] = append(missed[k], filepath.Base(rec.dir))
				}
			}
		}
		t.Logf("%-8s %-16s %-68s known %-28s %d events, builtin hits: %s", verdict, rec.category,
			filepath.Base(rec.dir), strings.Join(known, ","), shown.events, strings.Join(hits, " "))
	}

	if fold == "" {
		t.Logf("builtin pack alone on SigmaHQ regression data (%d EVTX recordings), cross-validated: each fold "+
			"measured by the pack as the other fold's writers left it (%d+%d rules written or changed from a fold):\n%s\n"+
			"held out by fold: a %d of %d tagged found (by fold b's rules), b %d of %d (by fold a's)", len(recs),
			len(derived["a"]), len(derived["b"]), cv, foldFound["a"], foldTagged["a"], foldFound["b"], foldTagged["b"])
		t.Logf("the whole pack on the same recordings (NOT held out: it includes the rules written from them):\n%s", all)
	} else {
		t.Logf("the whole pack on fold %s (%d EVTX recordings):\n%s", fold, len(recs), all)
	}
	t.Logf("recordings without a technique tag (no known technique): %s", strings.Join(untagged, " "))

	techs := make([]string, 0, len(missed))
	for k := range missed {
		techs = append(techs, k)
	}
	sort.Slice(techs, func(i, j int) bool {
		if len(missed[techs[i]]) != len(missed[techs[j]]) {
			return len(missed[techs[i]]) > len(missed[techs[j]])
		}
		return techs[i] < techs[j]
	})
	lines := make([]string, 0, len(techs))
	for _, k := range techs {
		lines = append(lines, fmt.Sprintf("%3d  %-60s %s", len(missed[k]), canon.name(k), strings.Join(missed[k], " ")))
	}
	t.Logf("known techniques not reported (recordings missing each):\n%s", strings.Join(lines, "\n"))

	if measured != len(recs) {
		t.Errorf("figure computed on %d of %d recordings", measured, len(recs))
	}
}

// TestTechniqueCanonNames checks the comparison TestRegressionCorpusCoverage
// credits recordings by, on the embedded knowledge base (no ../shared).
func TestTechniqueCanonNames(t *testing.T) {
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	c := techniqueCanon{kb}
	if a, b := c.id("t1562.001"), c.id("T1685"); a != b {
		t.Errorf("T1562.001 is %s in v19, T1685 is %s: want one ID", a, b)
	}
	for _, tc := range []struct {
		hit, known    []string
		exact, family bool
	}{
		{[]string{"T1003.001"}, []string{"T1003.001"}, true, true},
		{[]string{"T1003.001"}, []string{"T1003"}, true, true},      // sub-technique hit for its parent
		{[]string{"T1003"}, []string{"T1003.001"}, false, true},     // parent hit for a sub-technique
		{[]string{"T1003.002"}, []string{"T1003.001"}, false, true}, // sibling
		{[]string{"T1562.001"}, []string{"T1685"}, true, true},      // v18.1 ID, v19 ID
		{[]string{"T1140"}, []string{"T1027"}, false, false},        // another technique
		{[]string{"T1197", "T1105"}, []string{"T1036.003", "T1105"}, true, true},
		{[]string{"T1105"}, nil, false, false}, // nothing known
	} {
		exact, family := c.names(tc.hit, tc.known)
		if exact != tc.exact || family != tc.family {
			t.Errorf("hit %v, known %v: exact %v family %v, want %v %v", tc.hit, tc.known, exact, family, tc.exact, tc.family)
		}
	}
}

// TestCorpusFoldIsFixed pins the cross-validation split: a change to
// corpusFold would move recordings between the halves the rules were
// written from and measured on.
func TestCorpusFoldIsFixed(t *testing.T) {
	for dir, want := range map[string]string{
		"rules/windows/a": "b", "rules/windows/b": "a",
	} {
		if got := corpusFold(dir); got != want {
			t.Errorf("corpusFold(%q) = %q, want %q", dir, got, want)
		}
	}
}

// TestCorpusDerivedNamesPackRules checks testdata/corpus_derived.tsv,
// testdata/corpus_blind and testdata/corpus_fold_forms without the corpus:
// every line parses and names a rule of the pack (a rule renamed later
// cannot slip back into its fold's measurement), every fold form is the
// form of a rule its fold wrote or changed, and each fold's held-out pack
// loads with the rules it should have.
func TestCorpusDerivedNamesPackRules(t *testing.T) {
	pack := loadPack(t)
	derived := corpusDerived(t, pack)
	for _, fold := range []string{"a", "b"} {
		if len(derived[fold]) == 0 {
			t.Errorf("fold %s: no rule listed", fold)
		}
		for name := range foldForms(t, fold) {
			if derived[fold][name] == "" {
				t.Errorf("corpus_fold_forms/%s/%s: the rule is not listed for fold %s in corpus_derived.tsv", fold, name, fold)
			}
		}
		other := foldForms(t, otherFold(fold))
		dropped := 0
		for name, kind := range derived[fold] {
			if kind == "new" && !other[name] {
				dropped++
			}
		}
		if got, want := len(heldOut(t, pack, derived, fold)), len(pack)-dropped; got != want {
			t.Errorf("fold %s: held-out pack has %d rules, want %d", fold, got, want)
		}
	}
}
