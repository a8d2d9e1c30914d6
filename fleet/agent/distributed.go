package agent

import (
	"context"
	"fmt"
	"time"
)

// maxPendingWrites bounds answers kept in memory while the server cannot
// take them.
const maxPendingWrites = 64

func (a *Agent) distributedLoop(ctx context.Context) {
	var pending []DistributedWriteRequest
	every(ctx, a.period(func(p periods) time.Duration { return p.distributed }), func(ctx context.Context) {
		pending = a.retryWrites(ctx, pending)
		w, err := a.pollLive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				a.report(err)
			}
			return
		}
		if w == nil {
			return
		}
		if err := a.writeLive(ctx, *w); err != nil {
			if ctx.Err() == nil {
				a.report(err)
			}
			if len(pending) < maxPendingWrites {
				pending = append(pending, *w)
			}
		}
	})
}

// retryWrites sends answers that failed before; it returns those still
// unsent.
func (a *Agent) retryWrites(ctx context.Context, pending []DistributedWriteRequest) []DistributedWriteRequest {
	for len(pending) > 0 {
		if err := a.writeLive(ctx, pending[0]); err != nil {
			return pending
		}
		pending = pending[1:]
	}
	return nil
}

// PollOnce reads the live queries for this host, runs them and writes the
// answers; it returns how many queries it answered.
func (a *Agent) PollOnce(ctx context.Context) (int, error) {
	w, err := a.pollLive(ctx)
	if err != nil || w == nil {
		return 0, err
	}
	return len(w.Statuses), a.writeLive(ctx, *w)
}

// pollLive reads and runs the live queries; nil when there are none.
func (a *Agent) pollLive(ctx context.Context) (*DistributedWriteRequest, error) {
	var read DistributedReadResponse
	if err := a.call(ctx, PathDistributedRead, func(k string) any { return NodeRequest{NodeKey: k} }, &read); err != nil {
		return nil, fmt.Errorf("distributed read: %w", err)
	}
	if len(read.Queries) == 0 {
		return nil, nil
	}
	w := DistributedWriteRequest{
		Queries:  map[string][]map[string]string{},
		Statuses: map[string]int{},
		Messages: map[string]string{},
		Stats:    map[string]QueryStats{},
	}
	for id, sql := range read.Queries {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if d, ok := read.Discovery[id]; ok && !a.discovered(ctx, d) {
			continue // osquery runs a query only where its discovery query returns rows
		}
		start := time.Now()
		qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
		rows, err := a.query(qctx, sql)
		cancel()
		w.Stats[id] = QueryStats{WallTimeMs: time.Since(start).Milliseconds()}
		if err != nil {
			w.Queries[id] = []map[string]string{}
			w.Statuses[id] = 1
			w.Messages[id] = err.Error()
			continue
		}
		w.Queries[id] = rows
		w.Statuses[id] = 0
	}
	a.live.Add(int64(len(w.Statuses)))
	return &w, nil
}

// discovered runs a discovery query: true when it returns a row.
func (a *Agent) discovered(ctx context.Context, sql string) bool {
	qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	rows, err := a.query(qctx, sql)
	return err == nil && len(rows) > 0
}

func (a *Agent) writeLive(ctx context.Context, w DistributedWriteRequest) error {
	err := a.call(ctx, PathDistWrite, func(k string) any {
		w.NodeKey = k
		return w
	}, nil)
	if err != nil {
		return fmt.Errorf("distributed write: %w", err)
	}
	return nil
}
