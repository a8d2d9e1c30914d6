package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

const settingsSchema = `CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)`

// setting returns a saved value ("" when unset).
func (q *Queue) setting(ctx context.Context, name string) (string, error) {
	if _, err := q.db.ExecContext(ctx, settingsSchema); err != nil {
		return "", fmt.Errorf("agent settings: %w", err)
	}
	var v string
	err := q.db.QueryRowContext(ctx, "SELECT value FROM settings WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("agent settings %s: %w", name, err)
	}
	return v, nil
}

// setSetting saves a value.
func (q *Queue) setSetting(ctx context.Context, name, value string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.db.ExecContext(ctx, settingsSchema); err != nil {
		return fmt.Errorf("agent settings: %w", err)
	}
	_, err := q.db.ExecContext(ctx, `INSERT INTO settings(name, value) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("agent settings %s: %w", name, err)
	}
	return nil
}
