package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// hitsSchema holds detection hits: one row per hit and technique, so a hit
// of a rule tagged with two techniques is two rows sharing hit_id.
const hitsSchema = `
CREATE TABLE IF NOT EXISTS hits (
	hit_id TEXT NOT NULL,
	technique_id TEXT NOT NULL,
	time INTEGER NOT NULL,
	host TEXT NOT NULL,
	rule_id TEXT NOT NULL,
	rule_title TEXT NOT NULL,
	rule_author TEXT NOT NULL,
	rule_source TEXT NOT NULL,
	technique_name TEXT NOT NULL,
	tactic TEXT NOT NULL,
	severity TEXT NOT NULL,
	confidence TEXT NOT NULL,
	description TEXT NOT NULL,
	recommendations TEXT NOT NULL,
	eid INTEGER NOT NULL,
	pid INTEGER NOT NULL,
	path TEXT NOT NULL,
	cmdline TEXT NOT NULL,
	parent_path TEXT NOT NULL,
	username TEXT NOT NULL,
	source TEXT NOT NULL,
	stored_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (hit_id, technique_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hits_time ON hits(time);
CREATE INDEX IF NOT EXISTS hits_technique ON hits(technique_id, time);
CREATE INDEX IF NOT EXISTS hits_host ON hits(host, time);
CREATE INDEX IF NOT EXISTS hits_eid ON hits(eid);
`

const hitColumns = `hit_id, technique_id, time, host, rule_id, rule_title, rule_author, rule_source,
	technique_name, tactic, severity, confidence, description, recommendations, eid, pid, path, cmdline,
	parent_path, username, source`

// AppendHits stores hit rows in one transaction. A row whose (hit_id,
// technique_id) is already stored is left as it is, so re-running detection
// over the same events does not duplicate hits.
func (s *Store) AppendHits(ctx context.Context, hits []telemetry.Hit) error {
	_, err := s.SaveHits(ctx, hits, nil)
	return err
}

// HitFilter selects stored hits; zero fields do not filter.
type HitFilter struct {
	Since, Until time.Time
	// DetectedSince and DetectedUntil (exclusive) bound when the hit was
	// found (stored_at).
	DetectedSince, DetectedUntil time.Time
	// TechniqueIDs match exactly; TechniquePrefixes match an ID and its
	// sub-techniques (T1003 matches T1003.001).
	TechniqueIDs      []string
	TechniquePrefixes []string
	// TechniqueLike are SQL LIKE patterns on technique_id (ANDed).
	TechniqueLike []string
	Hosts         []string
	RuleIDs       []string
	HitIDs        []string
	// Kind keeps only hits of one kind (telemetry.KindIOA or telemetry.KindIOC) when set.
	Kind  string
	Limit int
}

func (f HitFilter) where() (string, []any) {
	var w where
	w.window(f.Since, f.Until)
	if !f.DetectedSince.IsZero() {
		w.add("stored_at >= ?", f.DetectedSince.UnixNano())
	}
	if !f.DetectedUntil.IsZero() {
		w.add("stored_at < ?", f.DetectedUntil.UnixNano())
	}
	in(&w, "technique_id", f.TechniqueIDs)
	in(&w, "host", f.Hosts)
	in(&w, "rule_id", f.RuleIDs)
	in(&w, "hit_id", f.HitIDs)
	switch f.Kind {
	case telemetry.KindIOC:
		w.add("rule_source = ?", telemetry.RuleSourceIntel)
	case telemetry.KindIOA:
		w.add("rule_source <> ?", telemetry.RuleSourceIntel)
	}
	anyOf(&w, "(technique_id = ? OR technique_id LIKE ?)", f.TechniquePrefixes,
		func(p string) []any { return []any{p, p + ".%"} })
	for _, p := range f.TechniqueLike {
		w.add("technique_id LIKE ?", p)
	}
	return w.sql()
}

// ScanHits streams the hits matching f, oldest first, to fn until it returns
// false. The *telemetry.Hit is reused between calls.
func (s *Store) ScanHits(ctx context.Context, f HitFilter, fn func(*telemetry.Hit) bool) error {
	where, args := f.where()
	q := "SELECT " + hitColumns + ", stored_at FROM hits" + where + " ORDER BY time, hit_id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read hits: %w", err)
	}
	defer rows.Close()
	var h telemetry.Hit
	var ns, stored int64
	dest := []any{&h.HitID, &h.TechniqueID, &ns, &h.Host, &h.RuleID, &h.RuleTitle, &h.RuleAuthor, &h.RuleSource,
		&h.TechniqueName, &h.Tactic, &h.Severity, &h.Confidence, &h.Description, &h.Recommendations, &h.EID,
		&h.PID, &h.Path, &h.Cmdline, &h.ParentPath, &h.Username, &h.Source, &stored}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read hits: %w", err)
		}
		h.Time, h.DetectedAt = fromUnixNano(ns), fromUnixNano(stored)
		if !fn(&h) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read hits: %w", err)
	}
	return nil
}

// idChunk bounds the ids of one IN (…) list, under SQLite's limit on
// parameters.
const idChunk = 500

// ScanHitsByID streams the hit rows of the given hit ids, any number of
// them, a few hundred ids per query (each query's rows oldest first), to fn
// until it returns false.
func (s *Store) ScanHitsByID(ctx context.Context, ids []string, fn func(*telemetry.Hit) bool) error {
	more := true
	for start := 0; start < len(ids) && more; start += idChunk {
		err := s.ScanHits(ctx, HitFilter{HitIDs: ids[start:min(start+idChunk, len(ids))]}, func(h *telemetry.Hit) bool {
			more = fn(h)
			return more
		})
		if err != nil {
			return err
		}
	}
	return nil
}
