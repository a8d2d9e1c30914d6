package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"

	sigmago "github.com/bradleyjkemp/sigma-go"
	"github.com/bradleyjkemp/sigma-go/evaluator"
	gsre "github.com/markuskont/go-sigma-rule-engine"
)

// Peer is another Sigma engine run over the same rules and corpus: each
// event is decoded with encoding/json into a map, the usual way to feed
// these engines, then matched.
type Peer interface {
	// Name is the engine's module path and version.
	Name() string
	// LoadFailures is how many rules did not load.
	LoadFailures() int
	// RuntimeFailures is how many loaded rules failed while matching (they
	// then never fire).
	RuntimeFailures() int
	// Match matches one decoded event and returns its number of hits.
	Match(ev map[string]any) int
}

// ScanPeer decodes and matches every JSON line of path.
func ScanPeer(p Peer, path string) (ScanResult, error) {
	var res ScanResult
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("%s scan: %w", p.Name(), err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			res.BadRecords++
			continue
		}
		res.Hits += p.Match(ev)
		res.Events++
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("%s scan: %w", p.Name(), err)
	}
	return res, nil
}

// goSigmaRuleEngine is github.com/markuskont/go-sigma-rule-engine.
type goSigmaRuleEngine struct{ rs *gsre.Ruleset }

// LoadGoSigmaRuleEngine loads every rule under dir.
func LoadGoSigmaRuleEngine(dir string) (Peer, error) {
	rs, err := gsre.NewRuleset(gsre.Config{Directory: []string{dir}})
	if err != nil {
		return nil, fmt.Errorf("go-sigma-rule-engine: %w", err)
	}
	return &goSigmaRuleEngine{rs: rs}, nil
}

func (g *goSigmaRuleEngine) Name() string {
	return "github.com/markuskont/go-sigma-rule-engine v0.3.0"
}
func (g *goSigmaRuleEngine) LoadFailures() int    { return g.rs.Failed + g.rs.Unsupported }
func (g *goSigmaRuleEngine) RuntimeFailures() int { return 0 }
func (g *goSigmaRuleEngine) Match(ev map[string]any) int {
	res, ok := g.rs.EvalAll(mapEvent(ev))
	if !ok {
		return 0
	}
	return len(res)
}

// mapEvent adapts a decoded event to go-sigma-rule-engine's Event.
type mapEvent map[string]any

// Keywords offers no free-text field (process_creation rules hardly use
// keyword searches).
func (m mapEvent) Keywords() ([]string, bool) { return nil, false }

// Select returns a field's value.
func (m mapEvent) Select(key string) (any, bool) {
	v, ok := m[key]
	return v, ok
}

// sigmaGo is github.com/bradleyjkemp/sigma-go, one evaluator per rule (its
// bundle mode caches every field value ever seen and swallows rule errors).
type sigmaGo struct {
	evals      []*evaluator.RuleEvaluator
	loadFailed int
	failed     []bool // per evaluator: failed at run time
	nfailed    int
}

// LoadSigmaGo parses the rule files.
func LoadSigmaGo(files []string) (Peer, error) {
	s := &sigmaGo{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("sigma-go: %w", err)
		}
		r, err := sigmago.ParseRule(data)
		if err != nil {
			s.loadFailed++
			continue
		}
		s.evals = append(s.evals, evaluator.ForRule(r))
	}
	s.failed = make([]bool, len(s.evals))
	return s, nil
}

func (s *sigmaGo) Name() string         { return "github.com/bradleyjkemp/sigma-go v0.6.6" }
func (s *sigmaGo) LoadFailures() int    { return s.loadFailed }
func (s *sigmaGo) RuntimeFailures() int { return s.nfailed }
func (s *sigmaGo) Match(ev map[string]any) int {
	n := 0
	ctx := context.Background()
	for i, e := range s.evals {
		res, err := e.Matches(ctx, ev)
		if err != nil {
			if !s.failed[i] {
				s.failed[i] = true
				s.nfailed++
			}
			continue
		}
		if res.Match {
			n++
		}
	}
	return n
}
