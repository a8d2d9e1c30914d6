package activity

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// Limits of a tree's activity.
const (
	// PerKind is how many events of each kind a process's activity lists;
	// the others are only counted.
	PerKind = 3
	// MaxTreeEvents bounds the events read for one tree.
	MaxTreeEvents = 20000
)

// Item is one event of a process's activity.
type Item struct {
	Time    int64  `json:"time"` // UNIX seconds
	Summary string `json:"summary"`
	EID     int64  `json:"eid"`
	// Techniques of the hits on the event, sorted; Severity the strongest
	// hit's, "" without hits.
	Techniques []string `json:"techniques,omitempty"`
	Severity   string   `json:"severity,omitempty"`
	// IOCs are the badges of the IoC hits on the event ("IOC <indicator>",
	// distinct): threat intelligence indicators found in it.
	IOCs []string `json:"iocs,omitempty"`
}

// KindActivity is what a process did of one kind (network, file, registry…):
// how many events, the first few listed.
type KindActivity struct {
	Count int    `json:"count"`
	Items []Item `json:"items"`
}

// ProcessActivity is a process's events other than its start and exit, by
// kind (process_activity.kind).
type ProcessActivity map[string]*KindActivity

// JSON returns the activity as compact JSON ("" when empty).
func (p ProcessActivity) JSON() string {
	if len(p) == 0 {
		return ""
	}
	b, err := json.Marshal(p)
	if err != nil {
		return ""
	}
	return string(b)
}

// Kinds returns the activity's kinds, most events first.
func (p ProcessActivity) Kinds() []string {
	out := make([]string, 0, len(p))
	for k := range p {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if p[out[i]].Count != p[out[j]].Count {
			return p[out[i]].Count > p[out[j]].Count
		}
		return out[i] < out[j]
	})
	return out
}

// ParseProcessActivity reads the JSON of ProcessActivity.JSON ("" is none).
func ParseProcessActivity(s string) (ProcessActivity, error) {
	if s == "" {
		return nil, nil
	}
	var p ProcessActivity
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("process activity: %w", err)
	}
	return p, nil
}

// Summarize returns a stored event's kind (process_activity.kind) and its
// one-line summary.
func Summarize(a *eventstore.Activity) (kind, summary string) {
	k, _, s := describe(a, true)
	if str, ok := s.(string); ok {
		return k, str
	}
	return k, ""
}

// TreeActivity reads what each of the processes keys did, in one query
// (at most MaxTreeEvents events): per process and kind, the count and the
// first perKind events in time order, each with the techniques of the hits
// on it. Process starts and exits are left out (the tree shows them).
func TreeActivity(ctx context.Context, st *eventstore.Store, keys []string, perKind int) (map[string]ProcessActivity, error) {
	out := map[string]ProcessActivity{}
	var ks []string
	seen := map[string]bool{}
	for _, k := range keys {
		if k != "" && !seen[k] {
			seen[k] = true
			ks = append(ks, k)
		}
	}
	if len(ks) == 0 {
		return out, nil
	}
	type ref struct {
		key, kind string
		i         int
	}
	shown := map[int64][]ref{}
	var eids []int64
	err := st.ScanActivity(ctx, eventstore.ActivityFilter{ProcessKeys: ks, TimeOrder: true, Limit: MaxTreeEvents}, func(a *eventstore.Activity) bool {
		if a.Kind == telemetry.KindExec || a.Kind == telemetry.KindExit {
			return true
		}
		kind, summary := Summarize(a)
		p := out[a.ProcessKey]
		if p == nil {
			p = ProcessActivity{}
			out[a.ProcessKey] = p
		}
		k := p[kind]
		if k == nil {
			k = &KindActivity{}
			p[kind] = k
		}
		k.Count++
		if len(k.Items) < perKind {
			k.Items = append(k.Items, Item{Time: a.Time.Unix(), Summary: summary, EID: a.EID})
			if len(shown[a.EID]) == 0 {
				eids = append(eids, a.EID)
			}
			shown[a.EID] = append(shown[a.EID], ref{a.ProcessKey, kind, len(k.Items) - 1})
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("activity of %d processes: %w", len(ks), err)
	}
	sort.Slice(eids, func(i, j int) bool { return eids[i] < eids[j] })
	err = st.ScanHitsByEIDs(ctx, eids, func(h *telemetry.Hit) bool {
		for _, r := range shown[h.EID] {
			it := &out[r.key][r.kind].Items[r.i]
			if h.Kind() == telemetry.KindIOC {
				if !contains(it.IOCs, h.RuleTitle) {
					it.IOCs = append(it.IOCs, h.RuleTitle)
				}
			} else if h.TechniqueID != "" && !contains(it.Techniques, h.TechniqueID) {
				it.Techniques = append(it.Techniques, h.TechniqueID)
				sort.Strings(it.Techniques)
			}
			if it.Severity == "" || incidents.SeverityWeight(h.Severity) > incidents.SeverityWeight(it.Severity) {
				it.Severity = h.Severity
			}
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("hits on the activity of %d processes: %w", len(ks), err)
	}
	return out, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
