package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/quarry-sec/quarry/fleet/osqwire"
)

// KindLive is the queue kind of live query answers: they wait on disk like
// logs until the server takes them, so an answer computed just before an
// outage (or an agent restart) still reaches the hunt.
const KindLive = "live"

// Live answer retention.
const (
	// answerMaxAge keeps an answer whose hunt deadline the server did not
	// say (an osquery server other than Quarry's): past it, no hunt is
	// assumed to wait for it any more (Quarry's longest is 7 days, its
	// default 5 minutes).
	answerMaxAge = 24 * time.Hour
	// deadlineGrace allows for clock skew between agent and server
	// before an answer past its hunt's deadline is dropped (the server
	// would ignore it).
	deadlineGrace = time.Minute
)

// queuedAnswer is one live query's answer waiting in the queue.
type queuedAnswer struct {
	ID string `json:"id"`
	// Deadline is the hunt's deadline in UNIX seconds as the server gave
	// it; 0 when it gave none.
	Deadline int64               `json:"deadline,omitempty"`
	Queued   int64               `json:"queued"`
	Rows     []map[string]string `json:"rows"`
	Status   int                 `json:"status"`
	Message  string              `json:"message,omitempty"`
	Stats    osqwire.QueryStats  `json:"stats"`
}

// expired reports whether no hunt waits for the answer at now.
func (q *queuedAnswer) expired(now time.Time) bool {
	if q.Deadline > 0 {
		return now.After(time.Unix(q.Deadline, 0).Add(deadlineGrace))
	}
	return now.After(time.Unix(q.Queued, 0).Add(answerMaxAge))
}

func (a *Agent) distributedLoop(ctx context.Context) {
	every(ctx, a.period(func(p periods) time.Duration { return p.distributed }), func(ctx context.Context) {
		// Answers queued while the server was away go first: their
		// hunts' deadlines run.
		if err := a.sendAnswers(ctx); err != nil {
			if ctx.Err() == nil {
				a.report(err)
			}
			return
		}
		if _, err := a.PollOnce(ctx); err != nil && ctx.Err() == nil {
			a.report(err)
		}
	})
}

// PollOnce reads the live queries for this host, runs them, queues the
// answers on disk and sends what is queued; it returns how many queries it
// answered. Answers the server does not take stay queued for the next
// poll or log flush.
func (a *Agent) PollOnce(ctx context.Context) (int, error) {
	n, err := a.pollLive(ctx)
	if err != nil || n == 0 {
		return 0, err
	}
	return n, a.sendAnswers(ctx)
}

// pollLive reads and runs the live queries and queues their answers; it
// returns how many it answered.
func (a *Agent) pollLive(ctx context.Context) (int, error) {
	var read osqwire.DistributedReadResponse
	if err := a.call(ctx, osqwire.PathDistributedRead, func(k string) any { return osqwire.NodeRequest{NodeKey: k} }, &read); err != nil {
		return 0, fmt.Errorf("distributed read: %w", err)
	}
	if len(read.Queries) == 0 {
		return 0, nil
	}
	var bodies [][]byte
	for id, sql := range read.Queries {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if d, ok := read.Discovery[id]; ok && !a.discovered(ctx, d) {
			continue // osquery runs a query only where its discovery query returns rows
		}
		start := time.Now()
		qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
		rows, err := a.query(qctx, sql)
		cancel()
		ans := queuedAnswer{ID: id, Deadline: read.Deadlines[id], Queued: time.Now().Unix(), Rows: rows,
			Stats: osqwire.QueryStats{WallTimeMs: time.Since(start).Milliseconds()}}
		if err != nil {
			ans.Rows, ans.Status, ans.Message = []map[string]string{}, 1, err.Error()
		}
		b, err := json.Marshal(ans)
		if err != nil {
			return 0, fmt.Errorf("live query %s: encode answer: %w", id, err)
		}
		bodies = append(bodies, b)
	}
	if len(bodies) == 0 {
		return 0, nil
	}
	if err := a.queue.Push(ctx, KindLive, bodies...); err != nil {
		return 0, fmt.Errorf("live queries: queue answers: %w", err)
	}
	a.live.Add(int64(len(bodies)))
	return len(bodies), nil
}

// discovered runs a discovery query: true when it returns a row.
func (a *Agent) discovered(ctx context.Context, sql string) bool {
	qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	rows, err := a.query(qctx, sql)
	return err == nil && len(rows) > 0
}

// sendAnswers sends the queued live query answers, several to a
// distributed write, and removes them from the queue once the server
// answers 200. Answers past their hunt's deadline are dropped unsent, and
// so are answers the server refuses for good (a 4xx other than 401, 408
// and 429: sending them again cannot succeed); both are counted in
// Stats.LiveDropped. It stops at the first other failure: the rest stays
// queued.
func (a *Agent) sendAnswers(ctx context.Context) error {
	a.answerMu.Lock()
	defer a.answerMu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	for {
		items, err := a.queue.Peek(ctx, KindLive, batchItems, batchBytes)
		if err != nil || len(items) == 0 {
			return err
		}
		now := time.Now()
		var send, drop []Item
		var answers []queuedAnswer
		for _, it := range items {
			var qa queuedAnswer
			if json.Unmarshal(it.Body, &qa) != nil || qa.ID == "" || qa.expired(now) {
				drop = append(drop, it)
				continue
			}
			send = append(send, it)
			answers = append(answers, qa)
		}
		if err := a.dropAnswers(ctx, drop); err != nil {
			return err
		}
		if len(send) == 0 {
			continue
		}
		err = a.writeLive(ctx, writeOf(answers))
		if refused(err) && len(send) > 1 {
			// One of them may be what the server refuses: each alone.
			for i, it := range send {
				err := a.writeLive(ctx, writeOf(answers[i:i+1]))
				if refused(err) {
					a.report(err)
					err = a.dropAnswers(ctx, []Item{it})
				} else if err == nil {
					err = a.queue.Ack(ctx, []Item{it})
				}
				if err != nil {
					return err
				}
			}
			continue
		}
		if refused(err) {
			a.report(err)
			if err := a.dropAnswers(ctx, send); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := a.queue.Ack(ctx, send); err != nil {
			return err
		}
	}
}

// dropAnswers removes answers from the queue unsent and counts them.
func (a *Agent) dropAnswers(ctx context.Context, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	if err := a.queue.Ack(ctx, items); err != nil {
		return err
	}
	a.liveDropped.Add(int64(len(items)))
	return nil
}

// refused reports whether err is the server refusing a request for good.
func refused(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code >= 400 && se.Code < 500 &&
		se.Code != http.StatusUnauthorized && se.Code != http.StatusRequestTimeout && se.Code != http.StatusTooManyRequests
}

// writeOf is the distributed write carrying answers.
func writeOf(answers []queuedAnswer) osqwire.DistributedWriteRequest[[]Row] {
	w := osqwire.DistributedWriteRequest[[]Row]{
		Queries:  make(map[string][]Row, len(answers)),
		Statuses: make(map[string]osqwire.Int, len(answers)),
		Messages: map[string]string{},
		Stats:    make(map[string]osqwire.QueryStats, len(answers)),
	}
	for _, qa := range answers {
		rows := qa.Rows
		if rows == nil {
			rows = []Row{}
		}
		w.Queries[qa.ID], w.Statuses[qa.ID], w.Stats[qa.ID] = rows, osqwire.Int(qa.Status), qa.Stats
		if qa.Message != "" {
			w.Messages[qa.ID] = qa.Message
		}
	}
	return w
}

func (a *Agent) writeLive(ctx context.Context, w osqwire.DistributedWriteRequest[[]Row]) error {
	err := a.call(ctx, osqwire.PathDistWrite, func(k string) any {
		w.NodeKey = k
		return w
	}, nil)
	if err != nil {
		return fmt.Errorf("distributed write: %w", err)
	}
	return nil
}
