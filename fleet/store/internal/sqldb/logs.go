package sqldb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// AppendLogs implements store.Store. With group commit, the log requests
// that wait for the same commit are written together, as one
// AppendHostLogs (see merge): their rows and detections several to a
// statement. Should that fail, each request is written alone, so one
// host's bad batch does not fail the others'.
func (db *DB) AppendLogs(ctx context.Context, hostID string, b *store.LogBatch) error {
	if b.Empty() {
		return nil
	}
	l := &store.HostLogs{HostID: hostID, Batch: b}
	one := func(tx *sql.Tx) error { return db.appendLogs(ctx, tx, []any{l}) }
	m := &merge{kind: "logs", arg: l, run: db.appendLogs}
	if db.d.Arrays && db.d.WritableCTE {
		m.lone = db.appendLogsLone
	}
	if err := db.txIn(ctx, db.logLane(), m, one); err != nil {
		return fmt.Errorf("append logs: %w", err)
	}
	return nil
}

// AppendHostLogs implements store.Store.
func (db *DB) AppendHostLogs(ctx context.Context, logs []store.HostLogs) error {
	args := make([]any, 0, len(logs))
	for i := range logs {
		if !logs[i].Batch.Empty() {
			args = append(args, &logs[i])
		}
	}
	if len(args) == 0 {
		return nil
	}
	if err := db.txLogs(ctx, func(tx *sql.Tx) error { return db.appendLogs(ctx, tx, args) }); err != nil {
		return fmt.Errorf("append logs: %w", err)
	}
	return nil
}

// appendLogs writes log requests (args: *store.HostLogs) in tx: the rows
// and detections of every host several to a statement.
func (db *DB) appendLogs(ctx context.Context, tx *sql.Tx, args []any) error {
	received := time.Now()
	var rs []hostResult
	var ds []hostDetection
	var ins []hostIncident
	var ns []hostNode
	var gone []hostGone
	for _, a := range args {
		l := a.(*store.HostLogs)
		for i := range l.Batch.GoneIncidents {
			gone = append(gone, hostGone{host: l.HostID, g: &l.Batch.GoneIncidents[i]})
		}
		for i := range l.Batch.Incidents {
			ins = append(ins, hostIncident{host: l.HostID, in: &l.Batch.Incidents[i]})
		}
		for i := range l.Batch.IncidentNodes {
			ns = append(ns, hostNode{host: l.HostID, n: &l.Batch.IncidentNodes[i]})
		}
		for i, k := range rowKeys(l.Batch.Results) {
			rs = append(rs, hostResult{host: l.HostID, r: &l.Batch.Results[i], key: k})
		}
		for i := range l.Batch.Detections {
			ds = append(ds, hostDetection{host: l.HostID, d: &l.Batch.Detections[i]})
		}
	}
	if err := db.insertResults(ctx, tx, rs); err != nil {
		return err
	}
	for _, a := range args {
		l := a.(*store.HostLogs)
		if err := db.insertStatuses(ctx, tx, l.HostID, l.Batch.Statuses); err != nil {
			return err
		}
	}
	if err := db.upsertDetections(ctx, tx, ds, received); err != nil {
		return err
	}
	if err := db.upsertIncidents(ctx, tx, ins, received); err != nil {
		return err
	}
	if err := db.upsertNodes(ctx, tx, ns); err != nil {
		return err
	}
	for _, a := range args {
		l := a.(*store.HostLogs)
		if err := db.upsertSandboxRuns(ctx, tx, l.HostID, l.Batch.SandboxRuns, received); err != nil {
			return err
		}
	}
	// After the upserts: a gone incident's newer state stored by another
	// request of the same group commit is kept.
	return db.deleteGoneIncidents(ctx, tx, gone)
}

// appendLogsLone is appendLogs in one statement on the writer pool,
// outside a transaction, when the log requests (args: *store.HostLogs)
// carry results and detections only (a host's check-in: the common case),
// at most arrayRowsPerStatement of each and no detection twice: the
// results' insert in a data-modifying WITH of the detections' upsert. A
// group of log requests was four round trips (BEGIN, results, detections,
// COMMIT), the log lane's most frequent write. With Dialect.Arrays and
// Dialect.WritableCTE only.
func (db *DB) appendLogsLone(ctx context.Context, args []any) (bool, error) {
	received := time.Now()
	type key struct{ host, hit, tech string }
	seen := map[key]bool{}
	var rargs, dargs []any
	nr, nd := 0, 0
	for _, a := range args {
		l := a.(*store.HostLogs)
		b := l.Batch
		if len(b.Statuses)+len(b.Incidents)+len(b.IncidentNodes)+len(b.GoneIncidents)+len(b.SandboxRuns) > 0 {
			return false, nil
		}
		if nr += len(b.Results); nr > arrayRowsPerStatement {
			return false, nil
		}
		if nd += len(b.Detections); nd > arrayRowsPerStatement {
			return false, nil
		}
		for i := range b.Detections {
			d := &b.Detections[i]
			k := key{l.HostID, d.HitID, d.TechniqueID}
			if seen[k] {
				return false, nil // an upsert may not touch a row twice
			}
			seen[k] = true
			dargs = append(dargs, detectionArgs(l.HostID, d, received)...)
		}
		for i, k := range rowKeys(b.Results) {
			rargs = appendResultArgs(rargs, l.HostID, &b.Results[i], k)
		}
	}
	rsrc, rargs, err := db.rowSource(resultTypes, rargs)
	if err != nil {
		return false, fmt.Errorf("results: %w", err)
	}
	dsrc, dargs, err := db.rowSource(detectionTypes, dargs)
	if err != nil {
		return false, fmt.Errorf("detections: %w", err)
	}
	query := db.q("WITH r AS (" + resultHead + " " + rsrc + "\n" + resultTail + ")\n" +
		detectionHead + " " + dsrc + "\n" + detectionTail)
	if _, err := db.w.ExecContext(ctx, query, append(rargs, dargs...)...); err != nil {
		return false, fmt.Errorf("results and detections: %w", err)
	}
	return true, nil
}

// resultsPerStatement bounds the rows of one result insert.
const resultsPerStatement = 100

// hostResult is a result row to store with its host and row key.
type hostResult struct {
	host string
	r    *store.Result
	key  string
}

// resultHead and resultTail are the head and tail of a result insert (see
// insertSQL): a row stored before under the same natural key is skipped.
// resultTypes are its column types, as appendResultArgs binds them.
const (
	resultHead = `INSERT INTO results (host_id, name, query, action, time, columns_json,
  decorations, epoch, counter, row_key)`
	resultTail = `ON CONFLICT (host_id, name, epoch, counter, row_key) DO NOTHING`
)

var resultTypes = mustTypes("result", appendResultArgs(nil, "", &store.Result{}, ""))

// appendResultArgs appends the values of host's result row r, of natural
// key key, in resultHead's column order.
func appendResultArgs(args []any, host string, r *store.Result, key string) []any {
	return append(args, host, r.Name, r.Query, r.Action, ms(r.Time), string(r.Columns), string(r.Decorations),
		r.Epoch, r.Counter, key)
}

// insertResults stores result rows, several to a statement (one round trip
// to the database for up to resultsPerStatement), skipping those stored
// before under the same natural key (see store.Store.AppendLogs).
func (db *DB) insertResults(ctx context.Context, tx *sql.Tx, rs []hostResult) error {
	per := db.perStatement(resultsPerStatement)
	for start := 0; start < len(rs); start += per {
		chunk := rs[start:min(start+per, len(rs))]
		args := make([]any, 0, 10*len(chunk))
		for _, hr := range chunk {
			args = appendResultArgs(args, hr.host, hr.r, hr.key)
		}
		query, args, err := db.insertSQL(resultHead, resultTypes, args, resultTail)
		if err != nil {
			return fmt.Errorf("results: %w", err)
		}
		stmt, err := db.txStmt(ctx, tx, query)
		if err != nil {
			return fmt.Errorf("results: %w", err)
		}
		_, err = stmt.ExecContext(ctx, args...)
		stmt.Close()
		if err != nil {
			return fmt.Errorf("results: %w", err)
		}
	}
	return nil
}

// rowKeys returns each result's row_key: a hash of its action, time and
// row (hex), followed by "#n" for the n-th identical row of the batch under
// the same name, epoch and counter (n ≥ 1), so identical rows of one
// request are all kept while a request sent again matches its first copy
// row for row.
func rowKeys(rs []store.Result) []string {
	type ident struct {
		name           string
		epoch, counter int64
		sum            [sha256.Size]byte
	}
	seen := make(map[ident]int, len(rs))
	keys := make([]string, len(rs))
	var buf []byte
	for i, r := range rs {
		buf = append(buf[:0], r.Action...)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, ms(r.Time), 10)
		buf = append(buf, 0)
		buf = append(buf, bytes.TrimSpace(r.Columns)...)
		id := ident{name: r.Name, epoch: r.Epoch, counter: r.Counter, sum: sha256.Sum256(buf)}
		k := hex.EncodeToString(id.sum[:16])
		if n := seen[id]; n > 0 {
			k += "#" + strconv.Itoa(n)
		}
		seen[id]++
		keys[i] = k
	}
	return keys
}

func (db *DB) insertStatuses(ctx context.Context, tx *sql.Tx, hostID string, ss []store.StatusLog) error {
	if len(ss) == 0 {
		return nil
	}
	stmt, err := db.txStmt(ctx, tx, `INSERT INTO status_logs (host_id, time, severity, filename, line, message, version)
VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, s := range ss {
		if _, err := stmt.ExecContext(ctx, hostID, ms(s.Time), s.Severity, s.Filename, s.Line, s.Message, s.Version); err != nil {
			return fmt.Errorf("status log: %w", err)
		}
	}
	return nil
}

// Results implements store.Store.
func (db *DB) Results(ctx context.Context, f store.ResultFilter) ([]store.Result, int, error) {
	var w conds
	w.add("(name = ? OR query = ?"+strings.Repeat(" OR name = ?", len(f.Names))+")", f.Query, f.Query)
	for _, n := range f.Names {
		w.args = append(w.args, n)
	}
	if f.HostID != "" {
		w.add("host_id = ?", f.HostID)
	}
	w.timeRange("time", "time", f.Since, f.Until)
	cond, args := w.sql()
	return listPage(ctx, db, "results", `results`+cond, `SELECT id, host_id, name, query, action, time, columns_json, decorations, epoch, counter
FROM results`+cond+` ORDER BY time DESC, id DESC`, args, f.Limit, f.Offset, func(rows *sql.Rows) (store.Result, error) {
		var r store.Result
		var t int64
		var cols, decs string
		if err := rows.Scan(&r.ID, &r.HostID, &r.Name, &r.Query, &r.Action, &t, &cols, &decs, &r.Epoch, &r.Counter); err != nil {
			return r, err
		}
		r.Time = fromMS(t)
		r.Columns = json.RawMessage(cols)
		if decs != "" {
			r.Decorations = json.RawMessage(decs)
		}
		return r, nil
	})
}

// StatusLogs implements store.Store.
func (db *DB) StatusLogs(ctx context.Context, hostID string, n int) ([]store.StatusLog, error) {
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT host_id, time, severity, filename, line, message, version
FROM status_logs WHERE host_id = ? ORDER BY time DESC, id DESC LIMIT ?`), hostID, limit(n))
	if err != nil {
		return nil, fmt.Errorf("list status logs: %w", err)
	}
	defer rows.Close()
	var out []store.StatusLog
	for rows.Next() {
		var s store.StatusLog
		var t int64
		if err := rows.Scan(&s.HostID, &t, &s.Severity, &s.Filename, &s.Line, &s.Message, &s.Version); err != nil {
			return nil, fmt.Errorf("list status logs: %w", err)
		}
		s.Time = fromMS(t)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list status logs: %w", err)
	}
	return out, nil
}

// conds gathers a list query's WHERE terms and their arguments.
type conds struct {
	terms []string
	args  []any
}

// add adds term with its arguments.
func (c *conds) add(term string, args ...any) {
	c.terms = append(c.terms, term)
	c.args = append(c.args, args...)
}

// in adds col IN (vals…); no term for no values.
func (c *conds) in(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	c.terms = append(c.terms, col+" IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")+")")
	for _, v := range vals {
		c.args = append(c.args, v)
	}
}

// timeRange adds sinceCol >= since and untilCol < until, each when set.
func (c *conds) timeRange(sinceCol, untilCol string, since, until time.Time) {
	if !since.IsZero() {
		c.add(sinceCol+" >= ?", ms(since))
	}
	if !until.IsZero() {
		c.add(untilCol+" < ?", ms(until))
	}
}

// sql returns " WHERE …" ("" for no terms) and the arguments.
func (c *conds) sql() (string, []any) {
	if len(c.terms) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(c.terms, " AND "), c.args
}

// listPage reads one page of a list: the number of rows of countFrom (a
// FROM clause with its WHERE, taking args), then the page of listSQL (the
// query without its LIMIT and OFFSET, taking args) from offset, at most
// limit(n) rows, each read by scan. what names the list in errors.
func listPage[T any](ctx context.Context, db *DB, what, countFrom, listSQL string, args []any, n, offset int,
	scan func(*sql.Rows) (T, error)) ([]T, int, error) {
	var total int
	if err := db.r.QueryRowContext(ctx, db.q(`SELECT count(*) FROM `+countFrom), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count %s: %w", what, err)
	}
	pageArgs := append(append(make([]any, 0, len(args)+2), args...), limit(n), max(offset, 0))
	rows, err := db.r.QueryContext(ctx, db.q(listSQL+` LIMIT ? OFFSET ?`), pageArgs...)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", what, err)
	}
	return out, total, nil
}

// limit is a page size: 100 by default, at most 10,000.
func limit(n int) int {
	if n <= 0 {
		return 100
	}
	return min(n, 10000)
}
