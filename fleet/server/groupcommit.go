package server

import (
	"context"
	"sync"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// groupCommitTimeout bounds one group commit: it writes other hosts' logs
// too, so it does not run on any one request's context.
const groupCommitTimeout = 30 * time.Second

// groupCommit writes the log requests that arrive while a write is under
// way together, in the next transaction: one commit for many hosts instead
// of one each. The first request to find no write under way leads: it
// writes everything pending, then whatever arrived meanwhile, until nothing
// is left; the others wait for the commit that holds theirs. Every request
// is answered only after its logs are committed.
type groupCommit struct {
	st      store.Store
	mu      sync.Mutex
	pending []pendingLogs
	leading bool
}

type pendingLogs struct {
	logs store.HostLogs
	done chan error
}

// append stores one host's log request and returns once it is committed.
func (g *groupCommit) append(ctx context.Context, hostID string, b *store.LogBatch) error {
	p := pendingLogs{logs: store.HostLogs{HostID: hostID, Batch: b}, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, p)
	if g.leading {
		g.mu.Unlock()
		select {
		case err := <-p.done:
			return err
		case <-ctx.Done():
			// The logs may still be committed; the host, never told, sends
			// them again and the store de-duplicates detections.
			return ctx.Err()
		}
	}
	g.leading = true
	for {
		batch := g.pending
		g.pending = nil
		g.mu.Unlock()
		logs := make([]store.HostLogs, len(batch))
		for i, b := range batch {
			logs[i] = b.logs
		}
		wctx, cancel := context.WithTimeout(context.Background(), groupCommitTimeout)
		err := g.st.AppendHostLogs(wctx, logs)
		cancel()
		for _, b := range batch {
			b.done <- err
		}
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.leading = false
			g.mu.Unlock()
			return <-p.done
		}
	}
}
