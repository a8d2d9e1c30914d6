package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/quarry-sec/quarry/fleet/store"
)

const hostColumns = `id, node_key, host_identifier, hostname, platform, family, os_version,
  osquery_version, quarry_version, enrolled_at, last_seen`

// EnrollHost implements store.Store.
func (db *DB) EnrollHost(ctx context.Context, h *store.Host) error {
	if h.EnrolledAt.IsZero() {
		h.EnrolledAt = time.Now()
	}
	if h.LastSeen.IsZero() {
		h.LastSeen = h.EnrolledAt
	}
	newID := uuid.NewString()
	var id string
	var enrolled int64
	err := db.write1(ctx, `INSERT INTO hosts (`+hostColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (host_identifier) DO UPDATE SET node_key = excluded.node_key, hostname = excluded.hostname,
  platform = excluded.platform, family = excluded.family, os_version = excluded.os_version,
  osquery_version = excluded.osquery_version, quarry_version = excluded.quarry_version,
  last_seen = excluded.last_seen
RETURNING id, enrolled_at`, func(st *sql.Stmt) error {
		return st.QueryRowContext(ctx, newID, store.HashNodeKey(h.NodeKey), h.HostIdentifier, h.Hostname, h.Platform, h.Family, h.OSVersion,
			h.OsqueryVersion, h.QuarryVersion, ms(h.EnrolledAt), ms(h.LastSeen)).Scan(&id, &enrolled)
	})
	if err != nil {
		return fmt.Errorf("enroll host %q: %w", h.HostIdentifier, err)
	}
	h.ID = id
	h.EnrolledAt = fromMS(enrolled)
	return nil
}

func scanHost(sc interface{ Scan(...any) error }) (*store.Host, error) {
	var h store.Host
	var enrolled, seen int64
	if err := sc.Scan(&h.ID, &h.NodeKey, &h.HostIdentifier, &h.Hostname, &h.Platform, &h.Family, &h.OSVersion,
		&h.OsqueryVersion, &h.QuarryVersion, &enrolled, &seen); err != nil {
		return nil, err
	}
	h.EnrolledAt, h.LastSeen = fromMS(enrolled), fromMS(seen)
	return &h, nil
}

// HostByNodeKey implements store.Store.
func (db *DB) HostByNodeKey(ctx context.Context, nodeKey string) (*store.Host, error) {
	st, err := db.readStmt(ctx, `SELECT `+hostColumns+` FROM hosts WHERE node_key = ?`)
	if err != nil {
		return nil, fmt.Errorf("host by node key: %w", err)
	}
	h, err := scanHost(st.QueryRowContext(ctx, store.HashNodeKey(nodeKey)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("host by node key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("host by node key: %w", err)
	}
	return h, nil
}

// Hosts implements store.Store.
func (db *DB) Hosts(ctx context.Context) ([]store.Host, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+hostColumns+` FROM hosts ORDER BY host_identifier`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer rows.Close()
	var out []store.Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, fmt.Errorf("list hosts: %w", err)
		}
		out = append(out, *h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	return out, nil
}

// touchesPerStatement bounds the hosts of one last-seen update.
const touchesPerStatement = 500

// TouchHosts implements store.Store: one UPDATE for up to
// touchesPerStatement hosts (a row per host took a round trip each while
// holding the rows locked), in host ID order, so that two servers updating
// the same hosts lock them in the same order.
func (db *DB) TouchHosts(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(ids); start += touchesPerStatement {
			chunk := ids[start:min(start+touchesPerStatement, len(ids))]
			var values strings.Builder
			args := make([]any, 0, 2*len(chunk))
			for i, id := range chunk {
				if i > 0 {
					values.WriteString(", ")
				}
				values.WriteString("(CAST(? AS TEXT), CAST(? AS BIGINT))")
				args = append(args, id, ms(seen[id]))
			}
			// VALUES columns are column1, column2 in SQLite and PostgreSQL.
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE hosts SET last_seen = v.column2
FROM (VALUES `+values.String()+`) AS v
WHERE hosts.id = v.column1 AND hosts.last_seen < v.column2`), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch hosts: %w", err)
	}
	return nil
}

// TouchHost implements store.Store.
func (db *DB) TouchHost(ctx context.Context, hostID string, seen time.Time) error {
	if _, err := db.w.ExecContext(ctx, db.q(`UPDATE hosts SET last_seen = ? WHERE id = ? AND last_seen < ?`),
		ms(seen), hostID, ms(seen)); err != nil {
		return fmt.Errorf("touch host: %w", err)
	}
	return nil
}
