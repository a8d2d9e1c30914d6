package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/quarry-sec/quarry/fleet/store"
)

const hostColumns = `id, node_key, host_identifier, hostname, platform, family, os_version,
  osquery_version, quarry_version, enrolled_at, last_seen`

// enrollUpsert is the conflict clause of an enrollment: enrolling an
// identifier again keeps the host's ID and enrollment time.
const enrollUpsert = `ON CONFLICT (host_identifier) DO UPDATE SET node_key = excluded.node_key, hostname = excluded.hostname,
  platform = excluded.platform, family = excluded.family, os_version = excluded.os_version,
  osquery_version = excluded.osquery_version, quarry_version = excluded.quarry_version,
  last_seen = excluded.last_seen
RETURNING id, host_identifier, enrolled_at`

// enrollment is one host to enroll and, once written, its ID and
// enrollment time.
type enrollment struct {
	h        *store.Host
	newID    string
	id       string
	enrolled int64
}

func (e *enrollment) args() []any {
	h := e.h
	return []any{e.newID, store.HashNodeKey(h.NodeKey), h.HostIdentifier, h.Hostname, h.Platform, h.Family, h.OSVersion,
		h.OsqueryVersion, h.QuarryVersion, ms(h.EnrolledAt), ms(h.LastSeen)}
}

// EnrollHost implements store.Store. Enrollments that wait for the same
// group commit are written together (see enrollMany): a fleet coming up
// enrolls a thousand hosts a second.
func (db *DB) EnrollHost(ctx context.Context, h *store.Host) error {
	if h.EnrolledAt.IsZero() {
		h.EnrolledAt = time.Now()
	}
	if h.LastSeen.IsZero() {
		h.LastSeen = h.EnrolledAt
	}
	e := &enrollment{h: h, newID: uuid.NewString()}
	one := func(tx *sql.Tx) error { return db.enrollMany(ctx, tx, []any{e}) }
	if err := db.txMerged(ctx, &merge{kind: "enroll", arg: e, run: db.enrollMany}, one); err != nil {
		return fmt.Errorf("enroll host %q: %w", h.HostIdentifier, err)
	}
	h.ID = e.id
	h.EnrolledAt = fromMS(e.enrolled)
	return nil
}

// enrollsPerStatement bounds the hosts of one enrollment statement.
const enrollsPerStatement = 200

// enrollTypes are the column types of a host row (hostColumns, as
// enrollment.args binds them).
var enrollTypes = []string{colText, colText, colText, colText, colText, colText, colText, colText, colText, colBigint, colBigint}

// enrollMany writes enrollments (args: *enrollment) in multi-row upserts,
// filling in each one's ID and enrollment time. One statement may not
// touch a row twice, so an identifier enrolling twice in the group goes
// in a later statement (and keeps the key it was given last).
func (db *DB) enrollMany(ctx context.Context, tx *sql.Tx, args []any) error {
	rest := make([]*enrollment, len(args))
	for i, a := range args {
		rest[i] = a.(*enrollment)
	}
	for len(rest) > 0 {
		seen := make(map[string]*enrollment, len(rest))
		var round, later []*enrollment
		for _, e := range rest {
			if seen[e.h.HostIdentifier] != nil || len(round) == db.perStatement(enrollsPerStatement) {
				later = append(later, e)
				continue
			}
			seen[e.h.HostIdentifier] = e
			round = append(round, e)
		}
		vals := make([]any, 0, 11*len(round))
		for _, e := range round {
			vals = append(vals, e.args()...)
		}
		query, vals, err := db.insertSQL(`INSERT INTO hosts (`+hostColumns+`)`, enrollTypes, vals, enrollUpsert)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, db.q(query), vals...)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var id, ident string
			var enrolled int64
			if err := rows.Scan(&id, &ident, &enrolled); err != nil {
				rows.Close()
				return err
			}
			if e := seen[ident]; e != nil {
				e.id, e.enrolled = id, enrolled
				n++
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if n != len(round) {
			return fmt.Errorf("enrolled %d hosts, %d came back", len(round), n)
		}
		// A host enrolled again keeps its ID: its old key must stop
		// working wherever it is cached.
		var changed []string
		for _, e := range round {
			if e.id != e.newID {
				changed = append(changed, notifyKey+" "+e.id+" "+store.HashNodeKey(e.h.NodeKey))
			}
		}
		if err := db.notify(ctx, tx, changed); err != nil {
			return err
		}
		rest = later
	}
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

// touchTypes are the columns of a last-seen update's rows: host, time.
var touchTypes = []string{colText, colBigint}

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
		per := db.perStatement(touchesPerStatement)
		for start := 0; start < len(ids); start += per {
			chunk := ids[start:min(start+per, len(ids))]
			args := make([]any, 0, 2*len(chunk))
			for _, id := range chunk {
				args = append(args, id, ms(seen[id]))
			}
			src, args, err := db.rowSource(touchTypes, args)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE hosts SET last_seen = v.column2
FROM (`+src+`) AS v
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
