package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// CreateHunt implements store.Store.
func (db *DB) CreateHunt(ctx context.Context, h *store.Hunt, hostIDs []string) error {
	targets, err := json.Marshal(h.Targets)
	if err != nil {
		return fmt.Errorf("create hunt: %w", err)
	}
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO hunts (id, query_sql, targets, created, deadline) VALUES (?, ?, ?, ?, ?)`),
			h.ID, h.SQL, string(targets), ms(h.Created), ms(h.Deadline)); err != nil {
			return err
		}
		// The targets go several hundred to a statement: a hunt across
		// 10,000 hosts took 10,000 round trips while holding the writer
		// (every enrollment and log waited behind it).
		per := db.perStatement(huntHostsPerStatement)
		for start := 0; start < len(hostIDs); start += per {
			chunk := hostIDs[start:min(start+per, len(hostIDs))]
			args := make([]any, 0, 4*len(chunk))
			for _, id := range chunk {
				args = append(args, h.ID, id, store.HuntPending, ms(h.Deadline))
			}
			query, args, err := db.insertSQL(`INSERT INTO hunt_hosts (hunt_id, host_id, status, deadline)`, huntHostTypes, args,
				`ON CONFLICT (hunt_id, host_id) DO NOTHING`)
			if err != nil {
				return err
			}
			stmt, err := db.txStmt(ctx, tx, query)
			if err != nil {
				return err
			}
			_, err = stmt.ExecContext(ctx, args...)
			stmt.Close()
			if err != nil {
				return err
			}
		}
		return db.notify(ctx, tx, []string{notifyHunt})
	})
	if err != nil {
		return fmt.Errorf("create hunt: %w", err)
	}
	return nil
}

// huntHostTypes are the column types of a hunt_hosts row of CreateHunt.
var huntHostTypes = []string{colText, colText, colText, colBigint}

// huntHostsPerStatement bounds the target hosts of one insert of CreateHunt.
const huntHostsPerStatement = 500

// Hunt implements store.Store.
func (db *DB) Hunt(ctx context.Context, id string) (*store.Hunt, error) {
	var h store.Hunt
	var targets string
	var created, deadline int64
	err := db.r.QueryRowContext(ctx, db.q(`SELECT id, query_sql, targets, created, deadline FROM hunts WHERE id = ?`), id).
		Scan(&h.ID, &h.SQL, &targets, &created, &deadline)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("hunt %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("hunt %q: %w", id, err)
	}
	if err := json.Unmarshal([]byte(targets), &h.Targets); err != nil {
		return nil, fmt.Errorf("hunt %q: targets: %w", id, err)
	}
	h.Created, h.Deadline = fromMS(created), fromMS(deadline)
	return &h, nil
}

// HuntHosts implements store.Store.
func (db *DB) HuntHosts(ctx context.Context, huntID string) ([]store.HuntHost, error) {
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT hh.host_id, COALESCE(h.host_identifier, ''), COALESCE(h.hostname, ''),
  hh.status, hh.message, hh.row_count, hh.sent_at, hh.answered_at
FROM hunt_hosts hh LEFT JOIN hosts h ON h.id = hh.host_id
WHERE hh.hunt_id = ? ORDER BY 2, 1`), huntID)
	if err != nil {
		return nil, fmt.Errorf("hunt hosts: %w", err)
	}
	defer rows.Close()
	out := []store.HuntHost{}
	for rows.Next() {
		var hh store.HuntHost
		var sent, answered int64
		if err := rows.Scan(&hh.HostID, &hh.HostIdentifier, &hh.Hostname, &hh.Status, &hh.Message, &hh.Rows,
			&sent, &answered); err != nil {
			return nil, fmt.Errorf("hunt hosts: %w", err)
		}
		hh.SentAt, hh.AnsweredAt = fromMS(sent), fromMS(answered)
		out = append(out, hh)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hunt hosts: %w", err)
	}
	return out, nil
}

// HuntCounts implements store.Store.
func (db *DB) HuntCounts(ctx context.Context, huntID string) (map[string]int, int, error) {
	st, err := db.readStmt(ctx, `SELECT status, count(*), COALESCE(SUM(row_count), 0) FROM hunt_hosts
WHERE hunt_id = ? GROUP BY status`)
	if err != nil {
		return nil, 0, fmt.Errorf("hunt counts: %w", err)
	}
	rows, err := st.QueryContext(ctx, huntID)
	if err != nil {
		return nil, 0, fmt.Errorf("hunt counts: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	total := 0
	for rows.Next() {
		var status string
		var n, sum int
		if err := rows.Scan(&status, &n, &sum); err != nil {
			return nil, 0, fmt.Errorf("hunt counts: %w", err)
		}
		counts[status] = n
		total += sum
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("hunt counts: %w", err)
	}
	return counts, total, nil
}

// HuntRows implements store.Store.
func (db *DB) HuntRows(ctx context.Context, huntID string, n, offset int) ([]store.HuntRow, error) {
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT host_id, columns_json FROM hunt_rows WHERE hunt_id = ?
ORDER BY id LIMIT ? OFFSET ?`), huntID, limit(n), max(offset, 0))
	if err != nil {
		return nil, fmt.Errorf("hunt rows: %w", err)
	}
	defer rows.Close()
	out := []store.HuntRow{}
	for rows.Next() {
		var r store.HuntRow
		var cols string
		if err := rows.Scan(&r.HostID, &cols); err != nil {
			return nil, fmt.Errorf("hunt rows: %w", err)
		}
		r.Columns = json.RawMessage(cols)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hunt rows: %w", err)
	}
	return out, nil
}

// ActiveHunts implements store.Store.
func (db *DB) ActiveHunts(ctx context.Context, now time.Time) (int, error) {
	var n int
	st, err := db.readStmt(ctx, `SELECT count(*) FROM hunts WHERE deadline > ?`)
	if err != nil {
		return 0, fmt.Errorf("active hunts: %w", err)
	}
	if err := st.QueryRowContext(ctx, ms(now)).Scan(&n); err != nil {
		return 0, fmt.Errorf("active hunts: %w", err)
	}
	return n, nil
}

// TakeHunts implements store.Store. A read first checks whether the host
// has a hunt to take (while a hunt runs, most distributed reads come from
// hosts that took it already: no write for them), and when it next may;
// then one statement marks the hunts sent and reads their SQL. With group
// commit, the hand-outs of a group are one statement (see takeMany).
//
// When the hand-out takes every hunt the check found due, next is exact:
// the earliest of now plus the resend interval and the resend time of the
// host's hunts handed out recently, so its next reads cost no check until
// then (they cost one each while the answer was "from now on", which is
// what next is when the hand-out took fewer hunts or more than the check
// found: a hunt created or handed out meanwhile).
func (db *DB) TakeHunts(ctx context.Context, hostID string, now, resendBefore time.Time) ([]store.Hunt, time.Time, error) {
	check, err := db.readStmt(ctx, `SELECT MIN(sent_at), MIN(CASE WHEN sent_at >= ? THEN sent_at END),
  COUNT(CASE WHEN sent_at < ? THEN 1 END)
FROM hunt_hosts WHERE host_id = ? AND status = ? AND deadline > ?`)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("take hunts: %w", err)
	}
	before := max(ms(resendBefore), 1)
	var first, recent sql.NullInt64
	var due int
	if err := check.QueryRowContext(ctx, before, before, hostID, store.HuntPending, ms(now)).Scan(&first, &recent, &due); err != nil {
		return nil, time.Time{}, fmt.Errorf("take hunts: %w", err)
	}
	if !first.Valid {
		return nil, time.Time{}, nil // no unanswered hunt left
	}
	resend := now.Sub(resendBefore)
	if first.Int64 >= before { // handed out recently: due again later
		return nil, time.UnixMilli(first.Int64).Add(resend).UTC(), nil
	}
	t := &take{hostID: hostID, now: ms(now), before: before}
	one := func(tx *sql.Tx) error { return db.takeMany(ctx, tx, []any{t}) }
	m := &merge{kind: "take", arg: t, lone: db.takeLone,
		run: func(ctx context.Context, tx *sql.Tx, args []any) error { return db.takeMany(ctx, tx, args) }}
	if err := db.txMerged(ctx, m, one); err != nil {
		return nil, time.Time{}, fmt.Errorf("take hunts: %w", err)
	}
	if len(t.hunts) != due || t.taken != due {
		// The hunts changed since the check: due again from now on.
		return t.hunts, now, nil
	}
	next := time.UnixMilli(t.now).Add(resend)
	if r := time.UnixMilli(recent.Int64).Add(resend); recent.Valid && r.Before(next) {
		next = r
	}
	return t.hunts, next.UTC(), nil
}

// take is one host's hand-out of hunts: the host, now and resendBefore
// (UNIX ms) and, once written, the hunts it took.
type take struct {
	hostID      string
	now, before int64
	hunts       []store.Hunt
	taken       int // hunt_hosts rows marked sent, hunt row or not
}

// takesPerStatement bounds the hosts of one hand-out statement.
const takesPerStatement = 500

// takeTypes are the columns of a hand-out's rows: host, now, resendBefore.
var takeTypes = []string{colText, colBigint, colBigint}

// takeLone is takeMany on the writer pool, outside a transaction, when
// the hand-outs (args: *take) take one statement: at most
// takesPerStatement (see perStatement), no host twice.
func (db *DB) takeLone(ctx context.Context, args []any) (bool, error) {
	if len(args) > db.perStatement(takesPerStatement) {
		return false, nil
	}
	seen := make(map[string]bool, len(args))
	for _, a := range args {
		t := a.(*take)
		if seen[t.hostID] {
			return false, nil
		}
		seen[t.hostID] = true
	}
	return true, db.takeMany(ctx, db.w, args)
}

// takeMany hands out the hunts of several hosts (args: *take) in one
// UPDATE each takesPerStatement hosts: while a hunt starts, thousands of
// hosts take it within a second, and one statement each would queue them
// behind the group commit one round trip at a time. A host asking twice
// in the group goes in a later statement (and takes nothing more).
func (db *DB) takeMany(ctx context.Context, tx execer, args []any) error {
	rest := make([]*take, len(args))
	for i, a := range args {
		rest[i] = a.(*take)
		rest[i].hunts, rest[i].taken = nil, 0
	}
	for len(rest) > 0 {
		seen := make(map[string]*take, len(rest))
		var round, later []*take
		for _, t := range rest {
			if seen[t.hostID] != nil || len(round) == db.perStatement(takesPerStatement) {
				later = append(later, t)
				continue
			}
			seen[t.hostID] = t
			round = append(round, t)
		}
		vals := make([]any, 0, 3*len(round))
		for _, t := range round {
			vals = append(vals, t.hostID, t.now, t.before)
		}
		src, vals, err := db.rowSource(takeTypes, vals)
		if err != nil {
			return err
		}
		vals = append(vals, store.HuntPending)
		rows, err := tx.QueryContext(ctx, db.q(`UPDATE hunt_hosts SET sent_at = v.column2
FROM (`+src+`) AS v
WHERE hunt_hosts.host_id = v.column1 AND hunt_hosts.deadline > v.column2 AND hunt_hosts.sent_at < v.column3
  AND hunt_hosts.status = ?
RETURNING hunt_hosts.host_id, hunt_hosts.hunt_id, (SELECT query_sql FROM hunts WHERE hunts.id = hunt_hosts.hunt_id),
  hunt_hosts.deadline`), vals...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var host string
			var h store.Hunt
			var query sql.NullString
			var deadline int64
			if err := rows.Scan(&host, &h.ID, &query, &deadline); err != nil {
				rows.Close()
				return err
			}
			t := seen[host]
			if t == nil {
				continue
			}
			if t.taken++; !query.Valid {
				continue // the hunt row is gone; nothing to run
			}
			h.SQL, h.Deadline = query.String, fromMS(deadline)
			t.hunts = append(t.hunts, h)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rest = later
	}
	return nil
}

// AnswerHunt implements store.Store.
func (db *DB) AnswerHunt(ctx context.Context, huntID, hostID string, a store.Answer) (bool, error) {
	if a.At.IsZero() {
		a.At = time.Now()
	}
	status := store.HuntAnswered
	if a.Status != 0 {
		status = store.HuntError
	}
	if db.d.WritableCTE && len(a.Rows) <= answerRowsPerStatement {
		ans := &answer{huntID: huntID, hostID: hostID, status: status, a: a}
		one := func(tx *sql.Tx) error { return db.answerMany(ctx, tx, []any{ans}) }
		m := &merge{kind: "answer", arg: ans, lone: db.answerLone,
			run: func(ctx context.Context, tx *sql.Tx, args []any) error { return db.answerMany(ctx, tx, args) }}
		if err := db.txMerged(ctx, m, one); err != nil {
			return false, fmt.Errorf("answer hunt %q: %w", huntID, err)
		}
		return ans.ok, nil
	}
	var ok bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		upd, err := db.txStmt(ctx, tx, `UPDATE hunt_hosts SET status = ?, message = ?, row_count = ?, answered_at = ?
WHERE hunt_id = ? AND host_id = ? AND status = ? AND deadline > ?`)
		if err != nil {
			return err
		}
		defer upd.Close()
		res, err := upd.ExecContext(ctx, status, a.Message, len(a.Rows), ms(a.At), huntID, hostID, store.HuntPending, ms(a.At))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if ok = n == 1; !ok || len(a.Rows) == 0 {
			return nil
		}
		stmt, err := db.txStmt(ctx, tx, `INSERT INTO hunt_rows (hunt_id, host_id, columns_json) VALUES (?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range a.Rows {
			if _, err := stmt.ExecContext(ctx, huntID, hostID, string(r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("answer hunt %q: %w", huntID, err)
	}
	return ok, nil
}

// answerRowsPerStatement bounds the rows answerHuntOnce stores in its one
// statement; larger answers take a transaction.
const answerRowsPerStatement = 500

// answer is one host's answer to a hunt and, once written, whether it was
// taken (see AnswerHunt).
type answer struct {
	huntID, hostID, status string
	a                      store.Answer
	ok                     bool
}

// Bounds of one answerMany statement: answers, and placeholders (at most
// 65,535 in PostgreSQL).
const (
	answersPerStatement = 200
	answerArgsMax       = 30000
)

// Column types of answerMany's answers (k, hunt, host, status, message,
// row count, at) and rows (k, n, columns).
var (
	answerTypes    = []string{colBigint, colText, colText, colText, colText, colBigint, colBigint}
	answerRowTypes = []string{colBigint, colBigint, colText}
)

// answerLone is answerMany on the writer pool, outside a transaction,
// when the answers (args: *answer) take one statement: at most
// answersPerStatement (see perStatement) and answerArgsMax values, no
// host answering a hunt twice.
func (db *DB) answerLone(ctx context.Context, args []any) (bool, error) {
	if len(args) > db.perStatement(answersPerStatement) {
		return false, nil
	}
	type pair struct{ hunt, host string }
	seen := make(map[pair]bool, len(args))
	nargs := 1
	for _, a := range args {
		an := a.(*answer)
		p := pair{an.huntID, an.hostID}
		nargs += 7 + 3*len(an.a.Rows)
		if seen[p] || nargs > answerArgsMax {
			return false, nil
		}
		seen[p] = true
	}
	return true, db.answerMany(ctx, db.w, args)
}

// answerMany stores several hosts' answers (args: *answer, each with at
// most answerRowsPerStatement rows) in one statement each
// answersPerStatement (PostgreSQL's data-modifying WITH): the update of
// each answered host and the insert of the rows of the updated ones, in
// their order. When a hunt starts, thousands of hosts answer within a
// second; one statement each queued them behind the group commit one round
// trip at a time. An answer to the same hunt by the same host twice in the
// group goes in a later statement (and is refused as answered already).
func (db *DB) answerMany(ctx context.Context, tx execer, args []any) error {
	rest := make([]*answer, len(args))
	for i, a := range args {
		rest[i] = a.(*answer)
		rest[i].ok = false
	}
	type pair struct{ hunt, host string }
	for len(rest) > 0 {
		seen := map[pair]bool{}
		var round, later []*answer
		nargs := 1
		for _, a := range rest {
			p := pair{a.huntID, a.hostID}
			need := 7 + 3*len(a.a.Rows)
			if seen[p] || len(round) == db.perStatement(answersPerStatement) || (len(round) > 0 && nargs+need > answerArgsMax) {
				later = append(later, a)
				continue
			}
			seen[p] = true
			round = append(round, a)
			nargs += need
		}
		answers := make([]any, 0, 7*len(round))
		var rowVals []any
		for k, a := range round {
			answers = append(answers, k, a.huntID, a.hostID, a.status, a.a.Message, len(a.a.Rows), ms(a.a.At))
			for n, r := range a.a.Rows {
				rowVals = append(rowVals, k, n, string(r))
			}
		}
		src, vals, err := db.rowSource(answerTypes, answers)
		if err != nil {
			return err
		}
		vals = append(vals, store.HuntPending)
		query := `WITH v (k, hunt_id, host_id, status, message, row_count, at) AS (` + src + `),
upd AS (
  UPDATE hunt_hosts SET status = v.status, message = v.message, row_count = v.row_count, answered_at = v.at
  FROM v
  WHERE hunt_hosts.hunt_id = v.hunt_id AND hunt_hosts.host_id = v.host_id AND hunt_hosts.status = ?
    AND hunt_hosts.deadline > v.at
  RETURNING v.k, v.hunt_id, v.host_id)`
		// With arrays, the rows go in even when there are none: one
		// statement text for every answer.
		if len(rowVals) > 0 || db.d.Arrays {
			rsrc, rargs, err := db.rowSource(answerRowTypes, rowVals)
			if err != nil {
				return err
			}
			vals = append(vals, rargs...)
			query += `,
r (k, n, c) AS (` + rsrc + `),
ins AS (
  INSERT INTO hunt_rows (hunt_id, host_id, columns_json)
  SELECT upd.hunt_id, upd.host_id, r.c FROM upd JOIN r ON r.k = upd.k ORDER BY upd.k, r.n)`
		}
		query += "\nSELECT k FROM upd"
		rows, err := tx.QueryContext(ctx, db.q(query), vals...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k int
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return err
			}
			if k >= 0 && k < len(round) {
				round[k].ok = true
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rest = later
	}
	return nil
}
