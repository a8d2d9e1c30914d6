package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// SignatureHits turns a sandbox report's signatures into hits, one per
// signature, on the start event of the process each is about (starts, by
// ProcessGUID as the report gave it; a signature whose process has no start
// there is left out and counted in missing). Each hit's rule is the
// signature (detections.ReportedRule): ID "<origin>:<name>", title its
// name, author and source the sandbox, techniques its ATT&CK ttps,
// severity from the sandbox's (importers.SeverityName).
func SignatureHits(rep *importers.SandboxReport, starts map[string]*telemetry.Event, kb *attack.KB) (hits []detections.Hit, missing int) {
	origin := rep.Run.Origin
	author := map[string]string{"cape": "CAPE sandbox", "cuckoo": "Cuckoo sandbox"}[origin]
	if author == "" {
		author = origin
	}
	for _, s := range rep.Signatures {
		ev := starts[s.ProcessGUID]
		if ev == nil {
			ev = starts[rep.RootGUID]
		}
		if ev == nil {
			missing++
			continue
		}
		desc := s.Description
		if len(s.Families) > 0 {
			desc += " (families: " + strings.Join(s.Families, ", ") + ")"
		}
		r := detections.ReportedRule(origin+":"+s.Name, s.Name, author, detections.Source(origin),
			detections.ParseSeverity(importers.SeverityName(s.Severity)), desc, s.Techniques, kb)
		hits = append(hits, detections.Hit{Rule: r, Techniques: r.Techniques, Tactics: r.Tactics, Event: ev, Time: ev.Time})
	}
	return hits, missing
}

// StoreReported stores hits another tool reported (SignatureHits) as
// detection stores its own: rows (Records) for medium and higher ones,
// technique tags on their event for informational and low ones. eids are
// the store ids of the hits' events, by hit. It returns the rows stored.
func StoreReported(ctx context.Context, st *eventstore.Store, hits []detections.Hit, eids []int64, kb *attack.KB) ([]telemetry.Hit, error) {
	var recs []telemetry.Hit
	tags := map[int64][]string{}
	for i, h := range hits {
		addHit(kb, &recs, tags, h, eids[i])
	}
	if _, err := st.SaveHits(ctx, recs, tags); err != nil {
		return nil, fmt.Errorf("store reported hits: %w", err)
	}
	return recs, nil
}

// RunAttack resolves a run's techniques (retired IDs to their successors
// in kb, unknown ones kept) and gives its tactics by ID (TA0006), as a
// detonation's run names them: those of the techniques and those its hits
// were stored with, in ATT&CK's matrix order (v18.1's vocabulary, as hits
// store them). Without kb the techniques are returned as given and no
// tactics.
func RunAttack(kb *attack.KB, techniques, hitTactics []string) (techs, tactics []string) {
	if kb == nil {
		return techniques, nil
	}
	seen := map[string]bool{}
	tacs := append([]string(nil), hitTactics...)
	for _, id := range techniques {
		if t, _, ok := kb.Resolve(id); ok {
			id = t.ID
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		techs = append(techs, id)
		for _, p := range kb.TechniqueTacticsOf(id) {
			tacs = append(tacs, p.Tactic)
		}
	}
	sort.Strings(techs)
	for _, short := range kb.TacticsOf(techs, tacs, false) {
		if ta, ok := kb.Tactic(short); ok {
			tactics = append(tactics, ta.ID)
		}
	}
	return techs, tactics
}
