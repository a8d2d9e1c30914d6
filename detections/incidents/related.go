package incidents

import (
	"context"
	"sort"
	"strings"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// Related incidents
//
// Grouping stays on one host, along ancestry. Across hosts (and between
// trees of one host that ancestry does not join, such as PsExec and the
// PSEXESVC it starts), incidents are related, not merged: two incidents are
// related when a hit of each, at most Window apart, shares an indicator —
// the same user (not a system account), the same command line (at least
// MinSharedCmdline bytes) or the same process hashes. Relations are
// computed when asked for (related_incidents, quarry incidents --related),
// from the stored hits, so they need no upkeep and are the same for the
// same input.

// MinSharedCmdline is the shortest command line that relates incidents
// ("id" or "whoami" run on two hosts relate nothing).
const MinSharedCmdline = 16

// systemUsers never relate incidents: every host runs as them.
var systemUsers = map[string]bool{
	"root": true, "system": true, "nt authority\\system": true, "nt authority\\local service": true,
	"nt authority\\network service": true, "-": true,
}

// Link says why two incidents are related.
type Link struct {
	IncidentID string
	RelatedID  string
	Host       string // the related incident's host
	Share      string // eventstore.ShareUser, ShareCmdline or ShareHashes
	Value      string
}

// Related returns the incidents related to incidentID, by indicator and
// related id.
func Related(ctx context.Context, st *eventstore.Store, incidentID string, opts Options) ([]Link, error) {
	opts = opts.withDefaults()
	var in *eventstore.IncidentRecord
	if err := st.ScanIncidents(ctx, eventstore.IncidentFilter{IncidentIDs: []string{incidentID}}, func(r *eventstore.IncidentRecord) bool {
		c := *r
		in = &c
		return false
	}); err != nil || in == nil {
		return nil, err
	}
	var hitIDs []string
	if err := st.ScanIncidentHits(ctx, []string{incidentID}, nil, func(p eventstore.IncidentHitPair) bool {
		hitIDs = append(hitIDs, p.HitID)
		return true
	}); err != nil {
		return nil, err
	}
	if len(hitIDs) == 0 {
		return nil, nil
	}
	type indicator struct{ share, value string }
	seen := map[indicator]bool{}
	var inds []indicator
	add := func(share, value string) {
		k := indicator{share, value}
		if value != "" && !seen[k] {
			seen[k] = true
			inds = append(inds, k)
		}
	}
	var eids []int64
	if err := st.ScanHitsByID(ctx, hitIDs, func(h *telemetry.Hit) bool {
		if u := h.Username; u != "" && !systemUsers[strings.ToLower(u)] {
			add(eventstore.ShareUser, u)
		}
		if len(h.Cmdline) >= MinSharedCmdline {
			add(eventstore.ShareCmdline, h.Cmdline)
		}
		if h.EID > 0 {
			eids = append(eids, h.EID)
		}
		return true
	}); err != nil {
		return nil, err
	}
	evs, err := st.EventsByEIDs(ctx, eids)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		add(eventstore.ShareHashes, ev.Hashes)
	}
	sort.Slice(inds, func(i, j int) bool {
		if inds[i].share != inds[j].share {
			return inds[i].share < inds[j].share
		}
		return inds[i].value < inds[j].value
	})
	lo, hi := in.FirstSeen.Add(-opts.Window), in.LastSeen.Add(opts.Window)
	var out []Link
	linked := map[string]bool{}
	for _, ind := range inds {
		ids, err := st.RelatedHitIDs(ctx, ind.share, ind.value, lo, hi)
		if err != nil {
			return nil, err
		}
		var rel []string
		for start := 0; start < len(ids); start += idChunk {
			if err := st.ScanIncidentHits(ctx, nil, ids[start:min(start+idChunk, len(ids))], func(p eventstore.IncidentHitPair) bool {
				if p.IncidentID != incidentID && !linked[ind.share+"\x00"+p.IncidentID] {
					linked[ind.share+"\x00"+p.IncidentID] = true
					rel = append(rel, p.IncidentID)
				}
				return true
			}); err != nil {
				return nil, err
			}
		}
		if len(ids) == 0 {
			continue
		}
		hosts := map[string]string{}
		if len(rel) > 0 {
			if err := st.ScanIncidents(ctx, eventstore.IncidentFilter{IncidentIDs: rel}, func(r *eventstore.IncidentRecord) bool {
				hosts[r.IncidentID] = r.Host
				return true
			}); err != nil {
				return nil, err
			}
		}
		sort.Strings(rel)
		for _, id := range rel {
			out = append(out, Link{IncidentID: incidentID, RelatedID: id, Host: hosts[id], Share: ind.share, Value: ind.value})
		}
	}
	return out, nil
}

// idChunk bounds the ids of one IN (…) list, under SQLite's limit on
// parameters (eventstore.Store.ScanIncidentHits does not split its list).
const idChunk = 500
