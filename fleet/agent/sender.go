package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"time"
)

// Batch bounds of one log request.
const (
	batchItems = 1024
	batchBytes = 4 << 20
	// sendTimeout bounds one log batch, request and acknowledgement.
	sendTimeout = 30 * time.Second
)

func (a *Agent) logLoop(ctx context.Context) {
	every(ctx, a.period(func(p periods) time.Duration { return p.log }), func(ctx context.Context) {
		if err := a.Flush(ctx); err != nil && ctx.Err() == nil {
			a.report(err)
		}
	})
}

// Flush sends every queued live query answer (their hunts' deadlines run)
// and log, result logs before status logs (a status line, such as a
// scheduled query's error, must not hold back detections), in batches; a batch leaves the
// queue only when the server answers 200. It first reports logs the queue
// bound dropped, in a status log. It stops at the first failure: the rest
// stays queued.
func (a *Agent) Flush(ctx context.Context) error {
	// A server failing distributed writes may still take logs: an
	// answer's failure does not hold them back.
	answerErr := a.sendAnswers(ctx)
	if err := a.flushLogs(ctx); err != nil {
		return errors.Join(answerErr, err)
	}
	return answerErr
}

func (a *Agent) flushLogs(ctx context.Context) error {
	if err := a.reportDrops(ctx); err != nil {
		return err
	}
	for _, kind := range []string{osqwire.LogResult, osqwire.LogStatus} {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			sent, err := a.sendBatch(ctx, kind)
			if err != nil {
				return err
			}
			if !sent {
				break
			}
		}
	}
	return nil
}

// sendBatch sends the oldest batch of kind and removes it from the queue on
// the server's 200. Once begun, a batch is not cut short by ctx's
// cancellation (only by sendTimeout): a request the server took but whose
// answer the agent dropped would be sent again. It returns false when the
// queue holds no log of kind.
func (a *Agent) sendBatch(ctx context.Context, kind string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	items, err := a.queue.Peek(ctx, kind, batchItems, batchBytes)
	if err != nil || len(items) == 0 {
		return false, err
	}
	if err := a.sendLogs(ctx, kind, items); err != nil {
		a.sendFailures.Add(1)
		return false, err
	}
	if err := a.queue.Ack(ctx, items); err != nil {
		return false, err
	}
	a.sent.Add(int64(len(items)))
	return true, nil
}

func (a *Agent) sendLogs(ctx context.Context, kind string, items []Item) error {
	data := make([]json.RawMessage, len(items))
	for i, it := range items {
		data[i] = it.Body
	}
	err := a.call(ctx, osqwire.PathLog, func(k string) any {
		return osqwire.LogRequest{NodeKey: k, LogType: kind, Data: data}
	}, nil)
	if err != nil {
		return fmt.Errorf("send %d %s logs: %w", len(items), kind, err)
	}
	return nil
}

// reportDrops sends a status log counting the logs the queue bound dropped
// since the last report.
func (a *Agent) reportDrops(ctx context.Context) error {
	n, err := a.queue.Dropped(ctx)
	if err != nil || n == 0 {
		return err
	}
	msg := fmt.Sprintf("quarry agent: log queue full (%d bytes): dropped %d logs or live query answers, oldest first", a.queue.maxBytes, n)
	line := json.RawMessage(a.statusLog(osqwire.SeverityWarning, msg))
	err = a.call(ctx, osqwire.PathLog, func(k string) any {
		return osqwire.LogRequest{NodeKey: k, LogType: osqwire.LogStatus, Data: []json.RawMessage{line}}
	}, nil)
	if err != nil {
		return fmt.Errorf("report dropped logs: %w", err)
	}
	a.dropped.Add(n)
	return a.queue.Reported(ctx, n)
}
