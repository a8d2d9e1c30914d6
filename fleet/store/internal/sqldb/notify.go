package sqldb

import (
	"context"
	"database/sql"
	"strings"

	"github.com/quarry-sec/quarry/fleet/store"
)

// Changes reach the servers watching the store (Dialect.Notify) as
// notification payloads of lines: "key HOST-ID KEY-HASH" (store.ChangeHostKey)
// or "hunt" (store.ChangeHunt).
const (
	notifyKey  = "key"
	notifyHunt = "hunt"
	// notifyMax bounds a payload (PostgreSQL's limit is 8,000 bytes).
	notifyMax = 7000
)

// notify sends change lines to the servers watching, in tx: they are
// delivered when tx commits, and never if it rolls back.
func (db *DB) notify(ctx context.Context, tx *sql.Tx, lines []string) error {
	if db.d.Notify == "" || len(lines) == 0 {
		return nil
	}
	send := func(payload string) error {
		_, err := tx.ExecContext(ctx, db.q(`SELECT pg_notify(?, ?)`), db.d.Notify, payload)
		return err
	}
	var b strings.Builder
	for _, l := range lines {
		if b.Len() > 0 && b.Len()+len(l)+1 > notifyMax {
			if err := send(b.String()); err != nil {
				return err
			}
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	return send(b.String())
}

// ParseChanges reads a notification payload sent by notify; lines it does
// not know are skipped.
func ParseChanges(payload string) []store.Change {
	var out []store.Change
	for _, l := range strings.Split(payload, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == notifyKey:
			out = append(out, store.Change{Kind: store.ChangeHostKey, HostID: f[1], NodeKeyHash: f[2]})
		case len(f) == 1 && f[0] == notifyHunt:
			out = append(out, store.Change{Kind: store.ChangeHunt})
		}
	}
	return out
}
