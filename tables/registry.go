package tables

import (
	"fmt"
	"sort"
	"sync"
)

// Registry holds every table Quarry serves. Both engines serve the tables of
// one registry; each table is registered already wrapped (see Wrap).
type Registry struct {
	mu     sync.RWMutex
	tables map[string]*Table
	opts   []WrapOption
}

// NewRegistry returns an empty registry whose tables are wrapped with opts.
func NewRegistry(opts ...WrapOption) *Registry {
	return &Registry{tables: make(map[string]*Table), opts: opts}
}

// Register validates, wraps and adds tables. A name registered twice is an
// error, and nothing of that call is added.
func (r *Registry) Register(ts ...Table) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	batch := make(map[string]*Table, len(ts))
	for i := range ts {
		t := ts[i]
		if err := t.Validate(); err != nil {
			return fmt.Errorf("register table: %w", err)
		}
		if _, dup := r.tables[t.Name]; dup {
			return fmt.Errorf("register table %s: already registered", t.Name)
		}
		if _, dup := batch[t.Name]; dup {
			return fmt.Errorf("register table %s: given twice", t.Name)
		}
		wrapped := Wrap(t, r.opts...)
		batch[t.Name] = &wrapped
	}
	for name, t := range batch {
		r.tables[name] = t
	}
	return nil
}

// Table returns the named table.
func (r *Registry) Table(name string) (*Table, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.tables[name]
	return t, ok
}

// Names returns the registered table names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.tables))
	for n := range r.tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Tables returns the registered tables, sorted by name.
func (r *Registry) Tables() []*Table {
	names := r.Names()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Table, len(names))
	for i, n := range names {
		out[i] = r.tables[n]
	}
	return out
}

// Closest returns up to n registered names nearest to name (by edit distance,
// then by shared prefix), for "no such table" errors.
func (r *Registry) Closest(name string, n int) []string {
	return Closest(name, r.Names(), n)
}

// Closest returns up to n of candidates nearest to name by edit distance
// (one containing name, or contained in it, counts as near), closest first;
// none beyond half the name's length away.
func Closest(name string, candidates []string, n int) []string {
	names := candidates
	type scored struct {
		name  string
		score int
	}
	ss := make([]scored, 0, len(names))
	for _, cand := range names {
		d := editDistance(name, cand)
		if len(name) >= 3 && (containsFold(cand, name) || containsFold(name, cand)) {
			d = d / 3 // a table whose name contains the typed word is a good guess
		}
		ss = append(ss, scored{cand, d})
	}
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].score < ss[j].score })
	out := make([]string, 0, n)
	for _, s := range ss {
		if len(out) == n {
			break
		}
		// Beyond half the name's length the guess is noise.
		if s.score > max(3, len(name)/2+1) {
			break
		}
		out = append(out, s.name)
	}
	return out
}

func containsFold(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && indexFold(s, sub) >= 0
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		match := true
		for j := 0; j < len(sub); j++ {
			a, b := s[i+j], sub[j]
			if 'A' <= a && a <= 'Z' {
				a += 'a' - 'A'
			}
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			if a != b {
				match = false
				break
			}
		}
		if match {
			return i
		}
	}
	return -1
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
