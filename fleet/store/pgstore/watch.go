package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/internal/sqldb"
)

// notifyChannel is the channel of the store's change notifications. It is
// the database's, not a schema's: fleets in several schemas of one
// database hear each other's changes, which costs them only cache misses.
const notifyChannel = "quarry_fleet_changes"

// Store is the PostgreSQL fleet store: the shared SQL store, and a
// store.Watcher over LISTEN/NOTIFY.
type Store struct {
	*sqldb.DB
	cfg *pgx.ConnConfig
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
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
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
