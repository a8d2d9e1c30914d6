package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/quarry-sec/quarry/fleet/osqwire"
)

// queryState is what a differential query remembers between runs.
type queryState struct {
	Query   string
	Epoch   int64
	Counter int64
	Rows    []Row
}

// loadState returns the last results of the scheduled query name; ok is
// false when it never ran.
func (q *Queue) loadState(ctx context.Context, name string) (st queryState, ok bool, err error) {
	var rows []byte
	err = q.db.QueryRowContext(ctx, "SELECT query, epoch, counter, rows FROM results WHERE name = ?", name).
		Scan(&st.Query, &st.Epoch, &st.Counter, &rows)
	if errors.Is(err, sql.ErrNoRows) {
		return queryState{}, false, nil
	}
	if err != nil {
		return queryState{}, false, fmt.Errorf("agent state %s: %w", name, err)
	}
	if err := json.Unmarshal(rows, &st.Rows); err != nil {
		return queryState{}, false, fmt.Errorf("agent state %s: %w", name, err)
	}
	return st, true, nil
}

// commitResult queues a result log (when log is not nil) and saves the
// query's new state, in one transaction: a crash never logs a diff twice nor
// loses one.
func (q *Queue) commitResult(ctx context.Context, name string, st queryState, log []byte) error {
	rows, err := json.Marshal(st.Rows)
	if err != nil {
		return fmt.Errorf("agent state %s: %w", name, err)
	}
	var bodies [][]byte
	if log != nil {
		bodies = [][]byte{log}
	}
	return q.commit(ctx, osqwire.LogResult, bodies, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO results(name, query, epoch, counter, rows) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET query = excluded.query, epoch = excluded.epoch,
			counter = excluded.counter, rows = excluded.rows`, name, st.Query, st.Epoch, st.Counter, rows)
		if err != nil {
			return fmt.Errorf("agent state %s: save: %w", name, err)
		}
		return nil
	})
}

// forgetStates drops the state of queries no longer scheduled.
func (q *Queue) forgetStates(ctx context.Context, keep map[string]bool) error {
	names := make([]string, 0, len(keep))
	for n := range keep {
		names = append(names, n)
	}
	list, _ := json.Marshal(names)
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.db.ExecContext(ctx, "DELETE FROM results WHERE name NOT IN (SELECT value FROM json_each(?))", string(list)); err != nil {
		return fmt.Errorf("agent state: forget: %w", err)
	}
	return nil
}
