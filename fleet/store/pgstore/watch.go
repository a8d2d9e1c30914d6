package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/internal/sqldb"
)

// changesChannel is the channel of the change notifications of the fleet
// stored in schema (channels are the database's, not a schema's):
// quarry_fleet_changes in public, else followed by a hash of the schema's
// name (channel names are identifiers of at most 63 bytes).
func changesChannel(schema string) string {
	const base = "quarry_fleet_changes"
	if schema == "" || schema == "public" {
		return base
	}
	sum := sha256.Sum256([]byte(schema))
	return base + "_" + hex.EncodeToString(sum[:8])
}

// Store is the PostgreSQL fleet store: the shared SQL store, and a
// store.Watcher over LISTEN/NOTIFY.
type Store struct {
	*sqldb.DB
	cfg     *pgx.ConnConfig
	channel string // see changesChannel
}

var _ store.Watcher = (*Store)(nil)

// Watch implements store.Watcher: it listens on a connection of its own,
// reconnecting after a failure (waiting up to 5 s between attempts).
func (s *Store) Watch(ctx context.Context, fn func(store.Change)) {
	wait := 100 * time.Millisecond
	for {
		live := s.listen(ctx, fn)
		if live {
			fn(store.Change{Kind: store.ChangesLost})
			wait = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			if !live {
				fn(store.Change{Kind: store.ChangesLost})
			}
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// listen connects, listens and reports changes until the connection fails
// or ctx ends; live reports whether it got as far as listening (and so
// called fn with ChangesLive).
func (s *Store) listen(ctx context.Context, fn func(store.Change)) (live bool) {
	conn, err := pgx.ConnectConfig(ctx, s.cfg.Copy())
	if err != nil {
		return false
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+s.channel); err != nil {
		return false
	}
	fn(store.Change{Kind: store.ChangesLive})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		for _, c := range sqldb.ParseChanges(n.Payload) {
			fn(c)
		}
	}
}
