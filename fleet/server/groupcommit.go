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
// of one each. The request that finds no write under way leads: it writes
// everything pending (its own logs among them), answers those requests, and
// hands the lead to the first request that arrived meanwhile, so no request
// waits for more than two commits. Every request is answered only after its
// logs are committed.
type groupCommit struct {
	st      store.Store
	mu      sync.Mutex
	pending []pendingLogs
	leading bool
}

type pendingLogs struct {
	logs store.HostLogs
	done chan commitResult
}

// commitResult answers a waiting request: its logs' commit error, or lead
// (write the pending logs now).
type commitResult struct {
	err  error
	lead bool
}

// append stores one host's log request and returns once it is committed.
// A waiting request does not give up on its context: the lead may pass to
// it, and a write is bounded by groupCommitTimeout.
func (g *groupCommit) append(hostID string, b *store.LogBatch) error {
	p := pendingLogs{logs: store.HostLogs{HostID: hostID, Batch: b}, done: make(chan commitResult, 2)}
	g.mu.Lock()
	g.pending = append(g.pending, p)
	if g.leading {
		g.mu.Unlock()
		r := <-p.done
		if !r.lead {
			return r.err
		}
		g.mu.Lock()
	} else {
		g.leading = true
	}
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()

	logs := make([]store.HostLogs, len(batch))
	for i, b := range batch {
		logs[i] = b.logs
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupCommitTimeout)
	err := g.st.AppendHostLogs(ctx, logs)
	cancel()
	for _, b := range batch {
		b.done <- commitResult{err: err}
	}

	g.mu.Lock()
	if len(g.pending) > 0 {
		next := g.pending[0]
		g.mu.Unlock()
		next.done <- commitResult{lead: true}
	} else {
		g.leading = false
		g.mu.Unlock()
	}
	return (<-p.done).err
}
