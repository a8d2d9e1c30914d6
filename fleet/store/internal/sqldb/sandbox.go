package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// sandboxColumns are the stored columns of a run after host_id, in the
// order upsertSandboxRuns binds them and scanSandboxRun reads them.
const sandboxColumns = `run_id, origin, host, sample, sha256, sha1, md5, size, started, duration_ms, verdict, score,
  techniques, tactics, tree, files, network, rules, reported, received_at`

// upsertSandboxRunSQL inserts a run or, when its host stored it before,
// replaces it unless the stored report is newer.
const upsertSandboxRunSQL = `INSERT INTO sandbox_runs (host_id, ` + sandboxColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (host_id, run_id) DO UPDATE SET origin = excluded.origin, host = excluded.host, sample = excluded.sample,
  sha256 = excluded.sha256, sha1 = excluded.sha1, md5 = excluded.md5, size = excluded.size, started = excluded.started,
  duration_ms = excluded.duration_ms, verdict = excluded.verdict, score = excluded.score,
  techniques = excluded.techniques, tactics = excluded.tactics, tree = excluded.tree, files = excluded.files,
  network = excluded.network, rules = excluded.rules, reported = excluded.reported, received_at = excluded.received_at
WHERE excluded.reported >= sandbox_runs.reported`

// upsertSandboxRuns stores a host's runs (see store.Store.AppendLogs).
func (db *DB) upsertSandboxRuns(ctx context.Context, tx *sql.Tx, hostID string, runs []store.SandboxRun, received time.Time) error {
	if len(runs) == 0 {
		return nil
	}
	up, err := db.txStmt(ctx, tx, upsertSandboxRunSQL)
	if err != nil {
		return fmt.Errorf("sandbox runs: %w", err)
	}
	defer up.Close()
	for i := range runs {
		r := &runs[i]
		if r.ID == "" {
			continue
		}
		if _, err := up.ExecContext(ctx, hostID, r.ID, r.Origin, r.Host, r.Sample, r.SHA256, r.SHA1, r.MD5, r.Size,
			ms(r.Started), r.Duration.Milliseconds(), r.Verdict, r.Score, strings.Join(r.Techniques, ","),
			strings.Join(r.Tactics, ","), jsonText(r.Tree), jsonText(r.Files), jsonText(r.Network), jsonText(r.Rules),
			ms(r.Reported), ms(received)); err != nil {
			return fmt.Errorf("sandbox run %s: %w", r.ID, err)
		}
	}
	return nil
}

// jsonText encodes a run's part for its column ("" for none). The server
// cleaned its strings (no NUL, valid UTF-8), so the JSON is valid text.
func jsonText[T any](v []T) string {
	if len(v) == 0 {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

const sandboxSelect = `SELECT r.host_id, COALESCE(h.host_identifier, ''), COALESCE(h.hostname, ''), r.run_id, r.origin,
  r.host, r.sample, r.sha256, r.sha1, r.md5, r.size, r.started, r.duration_ms, r.verdict, r.score, r.techniques,
  r.tactics, r.reported, r.received_at`

func scanSandboxRun(row interface{ Scan(...any) error }, parts ...any) (*store.SandboxRun, error) {
	var r store.SandboxRun
	var started, dur, reported, received int64
	var techniques, tactics string
	dest := []any{&r.HostID, &r.HostIdentifier, &r.Hostname, &r.ID, &r.Origin, &r.Host, &r.Sample, &r.SHA256, &r.SHA1,
		&r.MD5, &r.Size, &started, &dur, &r.Verdict, &r.Score, &techniques, &tactics, &reported, &received}
	if err := row.Scan(append(dest, parts...)...); err != nil {
		return nil, err
	}
	r.Started, r.Reported, r.ReceivedAt = fromMS(started), fromMS(reported), fromMS(received)
	r.Duration = time.Duration(dur) * time.Millisecond
	r.Techniques, r.Tactics = splitList(techniques), splitList(tactics)
	r.Tree, r.Files, r.Network, r.Rules = []store.IncidentNode{}, nil, nil, nil
	return &r, nil
}

// SandboxRuns implements store.Store.
func (db *DB) SandboxRuns(ctx context.Context, f store.SandboxRunFilter) ([]store.SandboxRun, int, error) {
	var w conds
	w.in("r.host_id", f.HostIDs)
	w.in("r.verdict", f.Verdicts)
	if t := strings.ToUpper(strings.TrimSpace(f.Technique)); t != "" {
		// The technique itself, or a sub-technique of it.
		w.add("((',' || r.techniques || ',') LIKE ? OR (',' || r.techniques || ',') LIKE ?)",
			"%,"+likeEscape(t)+",%", "%,"+likeEscape(t)+".%")
	}
	w.timeRange("r.started", "r.started", f.Since, f.Until)
	cond, args := w.sql()
	return listPage(ctx, db, "sandbox runs", `sandbox_runs r`+cond, sandboxSelect+` FROM sandbox_runs r LEFT JOIN hosts h ON h.id = r.host_id`+cond+`
ORDER BY r.started DESC, COALESCE(h.host_identifier, ''), r.host_id, r.run_id`, args, f.Limit, f.Offset, func(rows *sql.Rows) (store.SandboxRun, error) {
		r, err := scanSandboxRun(rows)
		if err != nil {
			return store.SandboxRun{}, err
		}
		return *r, nil
	})
}

// SandboxRun implements store.Store.
func (db *DB) SandboxRun(ctx context.Context, hostID, runID string) (*store.SandboxRun, error) {
	var tree, files, network, rules string
	r, err := scanSandboxRun(db.r.QueryRowContext(ctx, db.q(sandboxSelect+`, r.tree, r.files, r.network, r.rules
FROM sandbox_runs r LEFT JOIN hosts h ON h.id = r.host_id WHERE r.host_id = ? AND r.run_id = ?`), hostID, runID),
		&tree, &files, &network, &rules)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sandbox run %s of host %s: %w", runID, hostID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox run %s of host %s: %w", runID, hostID, err)
	}
	for _, p := range []struct {
		text string
		v    any
	}{{tree, &r.Tree}, {files, &r.Files}, {network, &r.Network}, {rules, &r.Rules}} {
		if p.text == "" {
			continue
		}
		if err := json.Unmarshal([]byte(p.text), p.v); err != nil {
			return nil, fmt.Errorf("sandbox run %s of host %s: stored JSON: %w", runID, hostID, err)
		}
	}
	for i := range r.Tree {
		r.Tree[i].Reported = r.Reported
	}
	return r, nil
}
