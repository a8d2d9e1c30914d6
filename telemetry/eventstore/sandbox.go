package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// sandboxSchema (version 4, stored_at 5) holds the sandbox runs: one row per
// telemetry.SandboxRun, its events being ordinary events whose run_id is
// the run's. started is Unix ns (UTC), duration_ns nanoseconds; techniques
// and tactics are comma-separated ATT&CK IDs; report is the run's summary
// as JSON. Runs are not trimmed by retention: they are small, and a run
// whose events are gone still says what the sample did.
const sandboxSchema = `
CREATE TABLE IF NOT EXISTS sandbox_runs (
	run_id TEXT PRIMARY KEY,
	origin TEXT NOT NULL,
	host TEXT NOT NULL DEFAULT '',
	sample TEXT NOT NULL DEFAULT '',
	sha256 TEXT NOT NULL DEFAULT '',
	sha1 TEXT NOT NULL DEFAULT '',
	md5 TEXT NOT NULL DEFAULT '',
	size INTEGER NOT NULL DEFAULT 0,
	started INTEGER NOT NULL DEFAULT 0,
	duration_ns INTEGER NOT NULL DEFAULT 0,
	verdict TEXT NOT NULL DEFAULT '',
	score REAL NOT NULL DEFAULT 0,
	techniques TEXT NOT NULL DEFAULT '',
	tactics TEXT NOT NULL DEFAULT '',
	report BLOB,
	stored_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sandbox_runs_started ON sandbox_runs(started);
CREATE INDEX IF NOT EXISTS sandbox_runs_stored_at ON sandbox_runs(stored_at);
CREATE INDEX IF NOT EXISTS sandbox_runs_sha256 ON sandbox_runs(sha256) WHERE sha256 != '';
`

const sandboxColumns = `run_id, origin, host, sample, sha256, sha1, md5, size, started, duration_ns,
	verdict, score, techniques, tactics, stored_at`

// PutSandboxRun stores run, replacing a stored run of the same ID (a
// re-import of one report updates its row rather than adding another).
func (s *Store) PutSandboxRun(ctx context.Context, run telemetry.SandboxRun) error {
	if run.ID == "" {
		return errors.New("store sandbox run: empty run id")
	}
	if run.Origin == "" {
		return fmt.Errorf("store sandbox run %s: empty origin", run.ID)
	}
	if s.readOnly {
		return fmt.Errorf("store sandbox run %s: %w", run.ID, ErrReadOnly)
	}
	var report any
	if len(run.Report) > 0 {
		report = run.Report
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.write.ExecContext(ctx, "INSERT OR REPLACE INTO sandbox_runs ("+sandboxColumns+", report) VALUES (?"+repeatComma(15)+")",
		run.ID, run.Origin, run.Host, run.Sample, run.SHA256, run.SHA1, run.MD5, run.Size,
		unixNano(run.Started), int64(run.Duration), run.Verdict, run.Score,
		strings.Join(run.Techniques, ","), strings.Join(run.Tactics, ","), s.now().UnixNano(), report)
	if err != nil {
		return fmt.Errorf("store sandbox run %s: %w", run.ID, err)
	}
	return nil
}

// SandboxRunFilter selects stored runs. Zero fields do not filter; Since
// is inclusive and Until exclusive, on the run's start.
type SandboxRunFilter struct {
	Since, Until time.Time
	// StoredSince (inclusive) and StoredUntil (exclusive) bound the run's
	// StoredAt.
	StoredSince, StoredUntil time.Time
	IDs                      []string // run ids
	Origins                  []string
	SHA256                   []string
	// Limit stops after this many runs when > 0.
	Limit int
	// WithReport reads each run's report too (left nil otherwise).
	WithReport bool
}

// SandboxRuns returns the stored runs f selects, newest first.
func (s *Store) SandboxRuns(ctx context.Context, f SandboxRunFilter) ([]telemetry.SandboxRun, error) {
	var w where
	if !f.Since.IsZero() {
		w.add("started >= ?", f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		w.add("started < ?", f.Until.UnixNano())
	}
	if !f.StoredSince.IsZero() {
		w.add("stored_at >= ?", f.StoredSince.UnixNano())
	}
	if !f.StoredUntil.IsZero() {
		w.add("stored_at < ?", f.StoredUntil.UnixNano())
	}
	in(&w, "run_id", f.IDs)
	in(&w, "origin", f.Origins)
	in(&w, "sha256", f.SHA256)
	cond, args := w.sql()
	report := "NULL"
	if f.WithReport {
		report = "report"
	}
	q := "SELECT " + sandboxColumns + ", " + report + " FROM sandbox_runs" + cond + " ORDER BY started DESC, run_id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return s.querySandboxRuns(ctx, q, args...)
}

// SandboxRun returns the stored run with that ID, its report included; ok
// is false when there is none.
func (s *Store) SandboxRun(ctx context.Context, id string) (run telemetry.SandboxRun, ok bool, err error) {
	runs, err := s.querySandboxRuns(ctx, "SELECT "+sandboxColumns+", report FROM sandbox_runs WHERE run_id = ?", id)
	if err != nil || len(runs) == 0 {
		return telemetry.SandboxRun{}, false, err
	}
	return runs[0], true, nil
}

func (s *Store) querySandboxRuns(ctx context.Context, q string, args ...any) ([]telemetry.SandboxRun, error) {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read sandbox runs: %w", err)
	}
	defer rows.Close()
	var out []telemetry.SandboxRun
	for rows.Next() {
		var (
			r                    telemetry.SandboxRun
			started, dur, stored int64
			techniques, tactics  string
			report               []byte
		)
		if err := rows.Scan(&r.ID, &r.Origin, &r.Host, &r.Sample, &r.SHA256, &r.SHA1, &r.MD5, &r.Size, &started, &dur,
			&r.Verdict, &r.Score, &techniques, &tactics, &stored, &report); err != nil {
			return nil, fmt.Errorf("read sandbox runs: %w", err)
		}
		r.Started = fromUnixNano(started)
		r.Duration = time.Duration(dur)
		r.StoredAt = fromUnixNano(stored)
		r.Techniques = splitList(techniques)
		r.Tactics = splitList(tactics)
		if len(report) > 0 {
			r.Report = report
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sandbox runs: %w", err)
	}
	return out, nil
}

// splitList splits a comma-separated list; "" is no items.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
