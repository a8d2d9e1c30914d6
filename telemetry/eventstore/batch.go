package eventstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// Status says what storing one event of a batch did.
type Status uint8

// Statuses.
const (
	// StatusNew: the event is stored as a row of its own.
	StatusNew Status = iota
	// StatusMerged: the event is a start record of a process whose start
	// another source recorded already (Security 4688 beside Sysmon EID 1);
	// it was merged into that row (empty columns filled, source listed).
	StatusMerged
	// StatusAlready: the same record (by its identity) was stored before.
	StatusAlready
)

// Stored is the outcome of storing one event of a batch.
type Stored struct {
	// EID is the row the event is in (its own, the one it merged into, or
	// the one stored before).
	EID    int64
	Status Status
}

// DetectFunc runs inside a batch's transaction once every event has its
// identity (ProcessKey set, parent fields filled, stored[i] its row and
// status): it returns what detection found in the batch, stored with it.
// It may be called again if the batch is retried, so it must not keep
// state.
type DetectFunc func(events []telemetry.Event, stored []Stored) (Detected, error)

// Detected is what detection found in a batch.
type Detected struct {
	// Tags are each event's technique tags (comma-separated; nil for none).
	Tags []string
	// Hits are the hit rows: IoA hits, and IoC hits (kind ioc) beside
	// their Sightings.
	Hits      []telemetry.Hit
	Sightings []telemetry.IOCSighting
}

// BatchResult says what StoreBatch did.
type BatchResult struct {
	Stored               []Stored
	New, Merged, Already int
	// Hits counts the hit rows newly stored (a row stored before is not
	// stored again); Sightings the IoC sightings likewise.
	Hits, Sightings int
}

// StoreBatch stores a batch in one transaction: the events (each given its
// identity: a record stored before is not stored again, a start record of a
// process another source recorded merges into that row, every event gets
// its ProcessKey), the tags and hits detect returns (detect may be nil),
// and a mark of where hits landed for incidents (see PendingIncidents).
// Either all of it is stored or nothing. events are updated in place
// (ProcessKey; the parent path and command line of a start record that
// lacks them, from the process that had its parent pid); on an error they
// are as they were.
func (s *Store) StoreBatch(ctx context.Context, events []telemetry.Event, detect DetectFunc) (BatchResult, error) {
	if len(events) == 0 {
		return BatchResult{}, nil
	}
	if s.readOnly {
		return BatchResult{}, fmt.Errorf("store events in %s: %w", s.path, ErrReadOnly)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	saved := make([]savedFields, len(events))
	for i := range events {
		e := &events[i]
		saved[i] = savedFields{e.ProcessKey, e.ParentPath, e.ParentCmdline}
	}
	res, err := s.storeBatch(ctx, events, detect)
	if err != nil {
		s.procs = newProcCache() // its changes were not committed
		for i := range events {
			e := &events[i]
			e.ProcessKey, e.ParentPath, e.ParentCmdline = saved[i].key, saved[i].parentPath, saved[i].parentCmdline
		}
		return BatchResult{}, err
	}
	if len(s.procs.byKey) > procCacheMax {
		s.procs = newProcCache()
	}
	return res, nil
}

type savedFields struct{ key, parentPath, parentCmdline string }

// prepared is an event's encoded columns and identity.
type prepared struct {
	args, fields any
	rkey         []byte
	mergeInto    int64
}

func (s *Store) storeBatch(ctx context.Context, events []telemetry.Event, detect DetectFunc) (res BatchResult, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("store events: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	r, err := s.newResolver(ctx, tx)
	if err != nil {
		return res, fmt.Errorf("store events: %w", err)
	}
	defer r.close()
	var next int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(eid), 0) + 1 FROM events").Scan(&next); err != nil {
		return res, fmt.Errorf("store events: %w", err)
	}
	firstNew := next
	// 1. Identity: already stored, merged or new; the process of each.
	prep := make([]prepared, len(events))
	res.Stored = make([]Stored, len(events))
	var buf []byte
	for i := range events {
		e := &events[i]
		pr := &prep[i]
		pr.args, pr.fields = encodeArgs(e), encodeFields(e)
		as, _ := pr.args.(string)
		fs, _ := pr.fields.(string)
		pr.rkey, buf = recordKey(buf, e, as, fs)
	}
	inBatch, err := storedKeys(ctx, tx, prep)
	if err != nil {
		return res, err
	}
	if err := r.prefetch(events); err != nil {
		return res, fmt.Errorf("store events: %w", err)
	}
	for i := range events {
		e := &events[i]
		pr := &prep[i]
		if sn, ok := inBatch[string(pr.rkey)]; ok {
			res.Stored[i] = Stored{EID: sn.eid, Status: StatusAlready}
			e.ProcessKey = sn.key
			res.Already++
			continue
		}
		if e.Kind == telemetry.KindExec {
			if err := r.parent(e); err != nil {
				return res, fmt.Errorf("store event %d of %d: %w", i+1, len(events), err)
			}
			out, err := r.exec(e, next)
			if err != nil {
				return res, fmt.Errorf("store event %d of %d: %w", i+1, len(events), err)
			}
			e.ProcessKey = out.p.key
			if out.merge {
				pr.mergeInto = out.p.eid
				res.Stored[i] = Stored{EID: out.p.eid, Status: StatusMerged}
				inBatch[string(pr.rkey)] = seen{out.p.eid, e.ProcessKey}
				res.Merged++
				continue
			}
		} else {
			key, err := r.actor(e)
			if err != nil {
				return res, fmt.Errorf("store event %d of %d: %w", i+1, len(events), err)
			}
			e.ProcessKey = key
		}
		res.Stored[i] = Stored{EID: next, Status: StatusNew}
		inBatch[string(pr.rkey)] = seen{next, e.ProcessKey}
		next++
		res.New++
	}

	// 2. Detection, on the events as they now are.
	var found Detected
	if detect != nil {
		if found, err = detect(events, res.Stored); err != nil {
			return res, err
		}
	}
	tags := found.Tags

	// 3. Rows.
	stmt := tx.StmtContext(ctx, s.insert)
	args := make([]any, insertParams+2)
	retag := map[int64][]string{}
	for i := range events {
		e := &events[i]
		tag := ""
		if i < len(tags) {
			tag = tags[i]
		}
		st := res.Stored[i]
		switch st.Status {
		case StatusNew:
			bindEvent(args, e, tag)
			args[12], args[34] = prep[i].args, prep[i].fields
			args[insertParams], args[insertParams+1] = prep[i].rkey, st.EID
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return res, fmt.Errorf("store event %d of %d: %w", i+1, len(events), err)
			}
		case StatusMerged:
			if err := mergeRow(ctx, tx, st.EID, e); err != nil {
				return res, fmt.Errorf("store event %d of %d: %w", i+1, len(events), err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO merged_records (rkey, eid) VALUES (?, ?)", prep[i].rkey, st.EID); err != nil {
				return res, fmt.Errorf("store event %d of %d: %w", i+1, len(events), err)
			}
			fallthrough
		default:
			if tag != "" {
				retag[st.EID] = append(retag[st.EID], tag)
			}
		}
	}
	if err := r.save(); err != nil {
		return res, err
	}
	if err := tagTx(ctx, tx, retag); err != nil {
		return res, err
	}
	if res.Hits, err = s.hitsTx(ctx, tx, found.Hits); err != nil {
		return res, err
	}
	if res.Sightings, err = sightingsTx(ctx, tx, found.Sightings); err != nil {
		return res, err
	}
	if next > firstNew {
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO batches (last_eid, stored_at) VALUES (?, ?)", next-1, s.now().UnixNano()); err != nil {
			return res, fmt.Errorf("store events: record batch: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("commit %d events: %w", len(events), err)
	}
	r.committed()
	return res, nil
}

type seen struct {
	eid int64
	key string
}

// storedKeys returns the rows of the records among prep stored before (by
// their identity, merged ones included), in a few queries.
func storedKeys(ctx context.Context, tx *sql.Tx, prep []prepared) (map[string]seen, error) {
	out := map[string]seen{}
	for start := 0; start < len(prep); start += 500 {
		chunk := prep[start:min(start+500, len(prep))]
		args := make([]any, len(chunk))
		for i := range chunk {
			args[i] = chunk[i].rkey
		}
		ph := placeholders(len(chunk))
		for _, q := range []string{
			"SELECT rkey, eid, process_key FROM events WHERE rkey IN (" + ph + ")",
			"SELECT m.rkey, m.eid, coalesce(e.process_key, '') FROM merged_records m LEFT JOIN events e ON e.eid = m.eid WHERE m.rkey IN (" + ph + ")",
		} {
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return nil, fmt.Errorf("store events: look up identities: %w", err)
			}
			for rows.Next() {
				var k []byte
				var sn seen
				if err := rows.Scan(&k, &sn.eid, &sn.key); err != nil {
					rows.Close()
					return nil, fmt.Errorf("store events: look up identities: %w", err)
				}
				out[string(k)] = sn
			}
			if err := rows.Close(); err != nil {
				return nil, fmt.Errorf("store events: look up identities: %w", err)
			}
		}
	}
	return out, nil
}

func insertKeyedSQL() string {
	return "INSERT INTO events (" + insertKeyedColumns + ") VALUES (" +
		"?" + repeatComma(insertParams+1) + ")"
}

func repeatComma(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, ",?"...)
	}
	return string(b)
}

// mergeRow merges a start record into the row of its process's start: the
// row's empty columns take the record's values, its source lists both, its
// fields gain the record's fields it lacks.
func mergeRow(ctx context.Context, tx *sql.Tx, eid int64, e *telemetry.Event) error {
	var source string
	var fields sql.NullString
	if err := tx.QueryRowContext(ctx, "SELECT source, fields FROM events WHERE eid = ?", eid).Scan(&source, &fields); err != nil {
		return fmt.Errorf("merge into event %d: %w", eid, err)
	}
	var f telemetry.Fields
	if fields.Valid {
		if err := json.Unmarshal([]byte(fields.String), &f); err != nil {
			return fmt.Errorf("merge into event %d: fields: %w", eid, err)
		}
	}
	for k, v := range e.Fields.All() {
		if _, ok := f.Get(k); !ok {
			f.Append(k, v)
		}
	}
	var fieldsJSON any
	if f.Len() > 0 {
		b, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("merge into event %d: fields: %w", eid, err)
		}
		fieldsJSON = string(b)
	}
	fill := func(col string) string { return col + " = CASE WHEN " + col + " = '' THEN ? ELSE " + col + " END" }
	fillID := func(col string) string { return col + " = CASE WHEN " + col + " < 0 THEN ? ELSE " + col + " END" }
	q := "UPDATE events SET source = ?, fields = ?, " +
		fill("path") + ", " + fill("cmdline") + ", " + fill("cwd") + ", " + fill("comm") + ", " +
		fill("username") + ", " + fill("logon_id") + ", " + fill("parent_path") + ", " + fill("parent_cmdline") + ", " +
		fill("process_guid") + ", " + fill("parent_guid") + ", " + fill("integrity_level") + ", " +
		fill("original_file_name") + ", " + fill("hashes") + ", " +
		fillID("ppid") + ", " + fillID("uid") + ", " + fillID("euid") + ", " + fillID("gid") + ", " +
		fillID("egid") + ", " + fillID("auid") + ", " +
		"start_time = CASE WHEN start_time = 0 THEN ? ELSE start_time END, " +
		"args = coalesce(args, ?), truncated = max(truncated, ?) WHERE eid = ?"
	_, err := tx.ExecContext(ctx, q, addSource(source, e.Source), fieldsJSON,
		e.Path, e.Cmdline, e.Cwd, e.Comm, e.Username, e.LogonID, e.ParentPath, e.ParentCmdline,
		e.ProcessGUID, e.ParentGUID, e.IntegrityLevel, e.OriginalFileName, e.Hashes,
		e.PPID, e.UID, e.EUID, e.GID, e.EGID, e.AUID, unixNano(e.StartTime), encodeArgs(e), boolInt(e.Truncated), eid)
	if err != nil {
		return fmt.Errorf("merge into event %d: %w", eid, err)
	}
	return nil
}

// tagTx adds technique IDs to stored events' techniques in tx.
func tagTx(ctx context.Context, tx *sql.Tx, tags map[int64][]string) error {
	for eid, ids := range tags {
		var cur string
		err := tx.QueryRowContext(ctx, "SELECT techniques FROM events WHERE eid = ?", eid).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			continue // trimmed by retention meanwhile
		}
		if err != nil {
			return fmt.Errorf("tag event %d: %w", eid, err)
		}
		merged := mergeTags(cur, splitTags(ids))
		if merged == cur {
			continue
		}
		if _, err := tx.ExecContext(ctx, "UPDATE events SET techniques = ? WHERE eid = ?", merged, eid); err != nil {
			return fmt.Errorf("tag event %d: %w", eid, err)
		}
	}
	return nil
}

// splitTags splits comma-separated tag lists.
func splitTags(ids []string) []string {
	var out []string
	for _, s := range ids {
		for len(s) > 0 {
			i := 0
			for i < len(s) && s[i] != ',' {
				i++
			}
			if i > 0 {
				out = append(out, s[:i])
			}
			if i == len(s) {
				break
			}
			s = s[i+1:]
		}
	}
	return out
}

// hitsTx stores hit rows in tx (a row stored before is left as it is) and
// marks where new ones landed for incidents; it returns how many rows were
// new.
func (s *Store) hitsTx(ctx context.Context, tx *sql.Tx, hits []telemetry.Hit) (int, error) {
	if len(hits) == 0 {
		return 0, nil
	}
	stmt, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO hits ("+hitColumns+", stored_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
	if err != nil {
		return 0, fmt.Errorf("store hits: %w", err)
	}
	defer stmt.Close()
	now := s.now().UnixNano()
	type span struct{ lo, hi int64 }
	spans := map[string]*span{}
	n := 0
	for i := range hits {
		h := &hits[i]
		r, err := stmt.ExecContext(ctx, h.HitID, h.TechniqueID, unixNano(h.Time), h.Host, h.RuleID, h.RuleTitle,
			h.RuleAuthor, h.RuleSource, h.TechniqueName, h.Tactic, h.Severity, h.Confidence, h.Description,
			h.Recommendations, h.EID, h.PID, h.Path, h.Cmdline, h.ParentPath, h.Username, h.Source, now)
		if err != nil {
			return 0, fmt.Errorf("store hit %d of %d: %w", i+1, len(hits), err)
		}
		if k, _ := r.RowsAffected(); k == 0 {
			continue
		}
		n++
		t := unixNano(h.Time)
		sp, ok := spans[h.Host]
		if !ok {
			spans[h.Host] = &span{t, t}
			continue
		}
		sp.lo, sp.hi = min(sp.lo, t), max(sp.hi, t)
	}
	for host, sp := range spans {
		if _, err := tx.ExecContext(ctx, "INSERT INTO incident_pending (host, lo, hi) VALUES (?, ?, ?)", host, sp.lo, sp.hi); err != nil {
			return 0, fmt.Errorf("store hits: mark incidents: %w", err)
		}
	}
	return n, nil
}

// SaveHits stores hit rows and technique tags of stored events (comma-
// separated lists by eid) in one transaction, as StoreBatch does for a
// batch's own; it returns how many hit rows were new.
func (s *Store) SaveHits(ctx context.Context, hits []telemetry.Hit, tags map[int64][]string) (int, error) {
	if len(hits) == 0 && len(tags) == 0 {
		return 0, nil
	}
	if s.readOnly {
		return 0, fmt.Errorf("store hits in %s: %w", s.path, ErrReadOnly)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store hits: %w", err)
	}
	n, err := s.hitsTx(ctx, tx, hits)
	if err == nil {
		err = tagTx(ctx, tx, tags)
	}
	if err != nil {
		tx.Rollback()
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit %d hits: %w", len(hits), err)
	}
	return n, nil
}

// PendingSpan is where new hits landed on a host whose incidents are not
// regrouped yet.
type PendingSpan struct {
	ID     int64
	Host   string
	Lo, Hi time.Time
}

// PendingIncidents returns the spans whose incidents wait to be regrouped
// (by detections/incidents.RefreshPending), oldest first.
func (s *Store) PendingIncidents(ctx context.Context) ([]PendingSpan, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT id, host, lo, hi FROM incident_pending ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read pending incidents: %w", err)
	}
	defer rows.Close()
	var out []PendingSpan
	for rows.Next() {
		var p PendingSpan
		var lo, hi int64
		if err := rows.Scan(&p.ID, &p.Host, &lo, &hi); err != nil {
			return nil, fmt.Errorf("read pending incidents: %w", err)
		}
		p.Lo, p.Hi = fromUnixNano(lo), fromUnixNano(hi)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ClearPendingIncidents forgets the pending spans up to id (their incidents
// are regrouped).
func (s *Store) ClearPendingIncidents(ctx context.Context, upTo int64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.write.ExecContext(ctx, "DELETE FROM incident_pending WHERE id <= ?", upTo); err != nil {
		return fmt.Errorf("clear pending incidents: %w", err)
	}
	return nil
}
