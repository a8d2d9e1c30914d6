package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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

// Tokens implements store.Store.
func (db *DB) Tokens(ctx context.Context) ([]store.Token, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT hash, name, created FROM tokens ORDER BY created, hash`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		var hash, name string
		var created int64
		if err := rows.Scan(&hash, &name, &created); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, store.Token{ID: hash[:min(len(hash), store.TokenIDLength)], Name: name, Created: fromMS(created)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken implements store.Store. An ID shorter than
// store.TokenIDLength, or naming several tokens, is refused.
func (db *DB) RevokeToken(ctx context.Context, id string) error {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < store.TokenIDLength || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("revoke token %q: %w", id, store.ErrNotFound)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM tokens WHERE substr(hash, 1, ?) = ?`), len(id), id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if n > 1 {
			return fmt.Errorf("%d tokens have that ID: give more of it", n)
		}
		_, err := tx.ExecContext(ctx, db.q(`DELETE FROM tokens WHERE substr(hash, 1, ?) = ?`), len(id), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke token %q: %w", id, err)
	}
	return nil
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
