package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quarry-sec/quarry/detections/packs"
)

// Pack is an osquery query pack as JSON, its fields kept as written (so
// osquery's defaults, such as "removed": true, stay osquery's).
type Pack map[string]json.RawMessage

// packQuery is what the server reads of a pack's query.
type packQuery struct {
	Query    *string  `json:"query"`
	Interval *float64 `json:"interval"`
	Platform string   `json:"platform"`
}

// packName is what a pack may be called.
var packName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// ParsePack reads an osquery pack: an object with "queries", each query
// with a "query" string and a positive "interval".
func ParsePack(data []byte) (Pack, error) {
	var p Pack
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("pack: malformed JSON: %w", err)
	}
	if p == nil {
		return nil, fmt.Errorf("pack: not an object")
	}
	var qs map[string]packQuery
	if err := json.Unmarshal(p["queries"], &qs); err != nil || qs == nil {
		return nil, fmt.Errorf("pack: \"queries\" must be an object of queries")
	}
	for name, q := range qs {
		if q.Query == nil || strings.TrimSpace(*q.Query) == "" {
			return nil, fmt.Errorf("pack: query %q has no \"query\"", name)
		}
		if q.Interval == nil || *q.Interval <= 0 {
			return nil, fmt.Errorf("pack: query %q needs a positive \"interval\"", name)
		}
	}
	if _, err := packPlatform(p); err != nil {
		return nil, err
	}
	return p, nil
}

func packPlatform(p Pack) (string, error) {
	raw, ok := p["platform"]
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("pack: \"platform\" must be a string")
	}
	return s, nil
}

// LoadPacksDir reads every *.json file of dir as a pack named after the
// file (without .json).
func LoadPacksDir(dir string) (map[string]Pack, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("packs dir %s: %w", dir, err)
	}
	out := map[string]Pack{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if !packName.MatchString(name) {
			return nil, fmt.Errorf("pack file %s: name must match %s", f, packName)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("pack file: %w", err)
		}
		p, err := ParsePack(data)
		if err != nil {
			return nil, fmt.Errorf("pack file %s: %w", f, err)
		}
		out[name] = p
	}
	return out, nil
}

// detectionPack is Quarry's detection pack as a Pack.
var detectionPack = sync.OnceValue(func() Pack {
	data, err := json.Marshal(packs.Detection())
	if err != nil {
		return nil
	}
	var p Pack
	if json.Unmarshal(data, &p) != nil {
		return nil
	}
	return p
})

// platformMatches reports whether osquery's platform filter (comma-
// separated: linux, darwin, windows, freebsd, posix, any, all) admits a
// host of the family. A host of unknown family gets everything.
func platformMatches(filter, fam string) bool {
	filter = strings.TrimSpace(filter)
	if filter == "" || fam == "" {
		return true
	}
	for _, p := range strings.Split(filter, ",") {
		switch p = strings.ToLower(strings.TrimSpace(p)); p {
		case "any", "all", fam:
			return true
		case "posix":
			if fam != FamilyWindows {
				return true
			}
		case "ubuntu", "centos", "rhel", "debian":
			if fam == FamilyLinux {
				return true
			}
		}
	}
	return false
}

// forFamily returns the pack with the queries a host of the family runs,
// false when the pack's own platform excludes it or no query is left.
func (p Pack) forFamily(fam string) (Pack, bool) {
	if plat, _ := packPlatform(p); !platformMatches(plat, fam) {
		return nil, false
	}
	var qs map[string]json.RawMessage
	if err := json.Unmarshal(p["queries"], &qs); err != nil {
		return nil, false
	}
	kept := map[string]json.RawMessage{}
	for name, raw := range qs {
		var q packQuery
		if json.Unmarshal(raw, &q) == nil && platformMatches(q.Platform, fam) {
			kept[name] = raw
		}
	}
	if len(kept) == 0 {
		return nil, false
	}
	out := make(Pack, len(p))
	for k, v := range p {
		out[k] = v
	}
	out["queries"], _ = json.Marshal(kept)
	return out, true
}

// packCache holds the store's packs for a few seconds.
type packCache struct {
	mu       sync.Mutex
	packs    map[string]Pack
	fetched  time.Time
	fetching bool   // a request is reading the store's packs now
	gen      uint64 // bumped by invalidatePacks
	// configs are config bodies of the cached packs by platform family,
	// built on first use (a config is the same for every host of a
	// family; building it parsed every query of every pack).
	configs map[string][]byte
}

const packCacheTTL = 5 * time.Second

// allPacks returns every pack by name: Quarry's detection pack, the file
// packs and the store's. Past the cache's TTL one request reads the store
// while the others take the cached packs instead of queueing behind it
// (every log and config request needs them).
func (s *Server) allPacks(ctx context.Context) (map[string]Pack, error) {
	c := &s.packs
	c.mu.Lock()
	now := s.cfg.Now()
	stale := c.packs == nil || now.Sub(c.fetched) > packCacheTTL || now.Before(c.fetched)
	if !stale || (c.fetching && c.packs != nil) {
		p := c.packs
		c.mu.Unlock()
		return p, nil
	}
	c.fetching = true
	gen := c.gen
	c.mu.Unlock()

	stored, err := s.cfg.Store.Packs(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetching = false
	if err != nil {
		return nil, err
	}
	all := map[string]Pack{}
	for name, data := range stored {
		if p, err := ParsePack(data); err == nil {
			all[name] = p
		}
	}
	for name, p := range s.cfg.FilePacks {
		all[name] = p
	}
	if !s.cfg.NoDetectionPack {
		all[packs.Name] = detectionPack()
	}
	if gen == c.gen { // not invalidated meanwhile (a pack changed after this read began)
		c.packs, c.fetched, c.configs = all, now, nil
	}
	return all, nil
}

// invalidatePacks makes the next allPacks read the store.
func (s *Server) invalidatePacks() {
	s.packs.mu.Lock()
	s.packs.packs, s.packs.configs = nil, nil
	s.packs.gen++
	s.packs.mu.Unlock()
}

// queryName is the name of a query within its pack for osquery's logged
// name (pack_<pack>_<query>, or with "/" as pack_delimiter), else name.
func queryName(name string, known map[string]Pack) string {
	_, q := splitPackName(name, known)
	return q
}

// nameForms returns the names a query of a known pack is logged under
// with either pack delimiter ("_" or "/"), when name is one of them.
func nameForms(name string, known map[string]Pack) []string {
	p, q := splitPackName(name, known)
	if p == "" {
		return nil
	}
	return []string{"pack_" + p + "_" + q, "pack/" + p + "/" + q}
}

// splitPackName splits osquery's pack<d><pack><d><query> (d "_" or "/")
// into a known pack's name and the query's; for any other name, "" and
// the name.
func splitPackName(name string, known map[string]Pack) (pack, query string) {
	for _, d := range []string{"_", "/"} {
		rest, ok := strings.CutPrefix(name, "pack"+d)
		if !ok {
			continue
		}
		// The longest matching pack name wins (pack names may hold "_").
		names := make([]string, 0, len(known))
		for p := range known {
			names = append(names, p)
		}
		sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
		for _, p := range names {
			if q, ok := strings.CutPrefix(rest, p+d); ok && q != "" {
				return p, q
			}
		}
	}
	return "", name
}
