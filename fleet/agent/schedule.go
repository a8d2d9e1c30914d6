package agent

import (
	"encoding/json"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"runtime"
	"sort"
	"strings"
)

// PackDelimiter joins "pack", a pack's name and a query's name into the
// name the query's results are logged under, as osquery's --pack_delimiter
// default does: pack_quarry-detections_quarry_ioa_hits.
const PackDelimiter = "_"

// PackQueryName is the logged name of query in pack, with osquery's
// default delimiter.
func PackQueryName(pack, query string) string {
	return packQueryName(pack, query, PackDelimiter)
}

func packQueryName(pack, query, delim string) string {
	return "pack" + delim + pack + delim + query
}

// job is one scheduled query after the config's schedule and packs are
// flattened and filtered by platform.
type job struct {
	Name     string
	Query    string
	Interval int // seconds
	Snapshot bool
	Removed  bool // log removed rows too
}

// jobs flattens a config into the queries this platform runs, sorted by name.
// Packs given as strings (paths or URLs for osquery to fetch) are skipped.
func jobs(cfg osqwire.ConfigResponse, platform, delim string) []job {
	var out []job
	add := func(name string, q osqwire.ScheduledQuery, packPlatform string) {
		if strings.TrimSpace(q.Query) == "" || q.Interval <= 0 {
			return
		}
		if !platformMatches(packPlatform, platform) || !platformMatches(q.Platform, platform) {
			return
		}
		out = append(out, job{
			Name: name, Query: q.Query, Interval: q.Interval, Snapshot: q.Snapshot,
			Removed: q.Removed == nil || *q.Removed,
		})
	}
	for name, q := range cfg.Schedule {
		add(name, q, "")
	}
	for pname, raw := range cfg.Packs {
		var p osqwire.Pack
		if err := json.Unmarshal(raw, &p); err != nil {
			continue
		}
		for qname, q := range p.Queries {
			add(packQueryName(pname, qname, delim), q, p.Platform)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// platformMatches applies osquery's platform filter: empty, "all" and "any"
// match everything, "posix" every Unix; else a comma-separated list.
func platformMatches(filter, platform string) bool {
	if filter == "" {
		return true
	}
	if platform == "" {
		platform = runtime.GOOS
	}
	for _, f := range strings.Split(filter, ",") {
		switch f = strings.TrimSpace(strings.ToLower(f)); f {
		case "all", "any", "":
			return true
		case "posix":
			if platform != "windows" {
				return true
			}
		case "darwin", "macos":
			if platform == "darwin" {
				return true
			}
		default:
			if f == platform {
				return true
			}
		}
	}
	return false
}
