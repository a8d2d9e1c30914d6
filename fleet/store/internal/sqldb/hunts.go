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
		stmt, err := db.txStmt(ctx, tx, `INSERT INTO hunt_hosts (hunt_id, host_id, status, deadline) VALUES (?, ?, ?, ?)
ON CONFLICT (hunt_id, host_id) DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, id := range hostIDs {
			if _, err := stmt.ExecContext(ctx, h.ID, id, store.HuntPending, ms(h.Deadline)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create hunt: %w", err)
	}
	return nil
}

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
// hosts that took it already: no write for them); then one statement marks
// the hunts sent and reads their SQL.
func (db *DB) TakeHunts(ctx context.Context, hostID string, now, resendBefore time.Time) ([]store.Hunt, error) {
	check, err := db.readStmt(ctx, `SELECT 1 FROM hunt_hosts
WHERE host_id = ? AND status = ? AND deadline > ? AND sent_at < ? LIMIT 1`)
	if err != nil {
		return nil, fmt.Errorf("take hunts: %w", err)
	}
	var one int
	err = check.QueryRowContext(ctx, hostID, store.HuntPending, ms(now), max(ms(resendBefore), 1)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("take hunts: %w", err)
	}
	var out []store.Hunt
	err = db.write1(ctx, `UPDATE hunt_hosts SET sent_at = ?
WHERE host_id = ? AND status = ? AND deadline > ? AND sent_at < ?
RETURNING hunt_id, (SELECT query_sql FROM hunts WHERE hunts.id = hunt_hosts.hunt_id), deadline`, func(st *sql.Stmt) error {
		out = out[:0]
		rows, err := st.QueryContext(ctx, ms(now), hostID, store.HuntPending, ms(now), max(ms(resendBefore), 1))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h store.Hunt
			var query sql.NullString
			var deadline int64
			if err := rows.Scan(&h.ID, &query, &deadline); err != nil {
				return err
			}
			if !query.Valid {
				continue // the hunt row is gone; nothing to run
			}
			h.SQL, h.Deadline = query.String, fromMS(deadline)
			out = append(out, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("take hunts: %w", err)
	}
	return out, nil
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
		return db.answerHuntOnce(ctx, huntID, hostID, status, a)
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

// answerHuntOnce is AnswerHunt in one statement (PostgreSQL: the update
// and the row inserts in data-modifying WITH queries), one round trip
// instead of four. The rows are inserted only when the update matched,
// in their order.
func (db *DB) answerHuntOnce(ctx context.Context, huntID, hostID, status string, a store.Answer) (bool, error) {
	query := `WITH upd AS (
  UPDATE hunt_hosts SET status = ?, message = ?, row_count = ?, answered_at = ?
  WHERE hunt_id = ? AND host_id = ? AND status = ? AND deadline > ?
  RETURNING hunt_id, host_id)`
	args := []any{status, a.Message, len(a.Rows), ms(a.At), huntID, hostID, store.HuntPending, ms(a.At)}
	if len(a.Rows) > 0 {
		var values strings.Builder
		for i, r := range a.Rows {
			if i > 0 {
				values.WriteString(", ")
			}
			values.WriteString("(CAST(? AS TEXT), CAST(? AS INTEGER))")
			args = append(args, string(r), i)
		}
		query += `, ins AS (
  INSERT INTO hunt_rows (hunt_id, host_id, columns_json)
  SELECT upd.hunt_id, upd.host_id, r.c FROM upd CROSS JOIN (VALUES ` + values.String() + `) AS r(c, n) ORDER BY r.n)`
	}
	query += "\nSELECT count(*) FROM upd"
	var n int
	err := db.write1(ctx, query, func(st *sql.Stmt) error { return st.QueryRowContext(ctx, args...).Scan(&n) })
	if err != nil {
		return false, fmt.Errorf("answer hunt %q: %w", huntID, err)
	}
	return n == 1, nil
}
