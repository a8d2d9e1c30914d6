package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"time"
)

// scheduleLoop runs each scheduled query when due: first right after the
// config arrives, then every interval.
func (a *Agent) scheduleLoop(ctx context.Context) {
	next := map[string]time.Time{}
	tick := max(a.cfg.ScheduleUnit/4, 10*time.Millisecond)
	every(ctx, func() time.Duration { return tick }, func(ctx context.Context) {
		a.mu.Lock()
		js := a.jobs
		a.mu.Unlock()
		for _, j := range js {
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			if due, ok := next[j.Name]; ok && now.Before(due) {
				continue
			}
			next[j.Name] = now.Add(time.Duration(j.Interval) * a.cfg.ScheduleUnit)
			a.runJob(ctx, j)
		}
	})
}

// runJob runs one scheduled query and queues its result log: the rows added
// and removed since the last run (differential), or all rows (snapshot).
// A failing query logs a status line when its error changes.
func (a *Agent) runJob(ctx context.Context, j job) {
	a.runs.Add(1)
	qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	cur, err := a.query(qctx, j.Query)
	cancel()
	if ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	last := a.errs[j.Name]
	if err != nil {
		a.errs[j.Name] = err.Error()
	} else {
		delete(a.errs, j.Name)
	}
	a.mu.Unlock()
	if err != nil {
		if last != err.Error() {
			a.queueStatus(ctx, osqwire.SeverityError, fmt.Sprintf("Error executing scheduled query %s: %v", j.Name, err))
		}
		a.report(fmt.Errorf("scheduled query %s: %w", j.Name, err))
		return
	}
	if err := a.logResults(ctx, j, cur, time.Now()); err != nil {
		a.report(err)
	}
}

// query runs sql on the engine and reads its rows as strings.
func (a *Agent) query(ctx context.Context, sql string) ([]Row, error) {
	rows, err := a.cfg.Engine.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return scanRows(rows, a.cfg.MaxRows)
}

// logResults diffs cur against the query's last results and commits the
// result log with the new state.
func (a *Agent) logResults(ctx context.Context, j job, cur []Row, now time.Time) error {
	prev, ok, err := a.queue.loadState(ctx, j.Name)
	if err != nil {
		return err
	}
	st := queryState{Query: j.Query, Epoch: 0, Counter: 0, Rows: cur}
	fresh := !ok || prev.Query != j.Query || prev.Epoch != st.Epoch
	if !fresh {
		st.Counter = prev.Counter + 1
	}
	l := osqwire.ResultLog[Row]{
		Name: j.Name, HostIdentifier: a.cfg.HostIdentifier, CalendarTime: osqwire.CalendarTime(now.Unix()),
		UnixTime: osqwire.Int(now.Unix()), Epoch: osqwire.Int(st.Epoch), Counter: osqwire.Int(st.Counter), Numerics: false,
	}
	emit := true
	if j.Snapshot {
		l.Snapshot, l.Action = cur, "snapshot"
		st.Rows = []Row{} // snapshots are not diffed
	} else {
		var base []Row
		if !fresh {
			base = prev.Rows
		}
		added, removed := diffRows(base, cur)
		if !j.Removed {
			removed = []Row{}
		}
		l.DiffResults = &osqwire.DiffResults[Row]{Added: added, Removed: removed}
		emit = len(added)+len(removed) > 0
	}
	var body []byte
	if emit {
		if body, err = json.Marshal(l); err != nil {
			return fmt.Errorf("result log %s: %w", j.Name, err)
		}
	}
	if err := a.queue.commitResult(ctx, j.Name, st, body); err != nil {
		return err
	}
	if emit {
		a.resultLogs.Add(1)
	}
	return nil
}

// queueStatus queues a status log line.
func (a *Agent) queueStatus(ctx context.Context, severity int, msg string) {
	if err := a.queue.Push(ctx, osqwire.LogStatus, a.statusLog(severity, msg)); err != nil {
		a.report(err)
	}
}

func (a *Agent) statusLog(severity int, msg string) []byte {
	now := time.Now().Unix()
	b, _ := json.Marshal(osqwire.StatusLog{ // a struct of strings and ints always encodes
		HostIdentifier: a.cfg.HostIdentifier, CalendarTime: osqwire.CalendarTime(now), UnixTime: osqwire.Int(now),
		Severity: osqwire.Int(severity), Filename: "agent.go", Line: 1, Message: msg, Version: OsqueryCompatVersion,
	})
	return b
}
