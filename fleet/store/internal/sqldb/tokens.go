package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// CreateToken implements store.Store.
func (db *DB) CreateToken(ctx context.Context, name, hash string) error {
	if _, err := db.w.ExecContext(ctx, db.q(`INSERT INTO tokens (hash, name, created) VALUES (?, ?, ?)`),
		hash, name, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// TokenExists implements store.Store.
func (db *DB) TokenExists(ctx context.Context, hash string) (bool, error) {
	var one int
	err := db.r.QueryRowContext(ctx, db.q(`SELECT 1 FROM tokens WHERE hash = ?`), hash).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check token: %w", err)
	}
	return true, nil
}

// PutPack implements store.Store.
func (db *DB) PutPack(ctx context.Context, name string, pack []byte) error {
	if _, err := db.w.ExecContext(ctx, db.q(`INSERT INTO packs (name, body, updated) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated = excluded.updated`),
		name, string(pack), time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("put pack %q: %w", name, err)
	}
	return nil
}

// DeletePack implements store.Store.
func (db *DB) DeletePack(ctx context.Context, name string) error {
	res, err := db.w.ExecContext(ctx, db.q(`DELETE FROM packs WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("delete pack %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("delete pack %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// Packs implements store.Store.
func (db *DB) Packs(ctx context.Context) (map[string][]byte, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT name, body FROM packs`)
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var name, body string
		if err := rows.Scan(&name, &body); err != nil {
			return nil, fmt.Errorf("list packs: %w", err)
		}
		out[name] = []byte(body)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	return out, nil
}
