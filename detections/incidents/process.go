package incidents

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// Process is one process of a host's tree, as the stored events know it.
//
// Its identity (Key) tells reused pids apart: Sysmon's process GUID when the
// source records one ("g:<guid>"), else the pid with the kernel's start time
// ("s:<pid>:<start ns>", eBPF and the process connector), else the pid with
// the time of its start event ("e:<pid>:<time ns>", Security 4688, auditd).
// A parent that only its children name (started before the recording, or
// not seen) is a phantom: "g:<guid>" when they give its GUID, else
// "u:<pid>:<path>".
type Process struct {
	Key     string
	Host    string
	PID     int64
	PPID    int64
	Path    string
	Cmdline string
	User    string
	// Start is when the process started; zero for a phantom.
	Start time.Time
	// EID is the eid of the process's (latest) start event; 0 for a phantom.
	EID     int64
	GUID    string
	Phantom bool

	parentDone bool
	parent     *Process
	exitDone   bool
	exit       time.Time
	// What the (latest) start event says of the parent.
	ppidAt        time.Time // when the process started, for finding its parent
	parentGUID    string
	parentPath    string
	parentCmdline string
}

// Resolver finds processes and their parents in the event store, memoizing
// what it read. It is not safe for concurrent use.
type Resolver struct {
	st     *eventstore.Store
	byKey  map[string]*Process
	byEID  map[int64]*Process
	events map[int64]*eventstore.StoredEvent // prefetched events that are not starts
	execs  map[string][]eventstore.StoredEvent
	exits  map[string][]time.Time
	guids  map[string]*eventstore.StoredEvent // by host and GUID; nil: none stored
	keys   map[string]*eventstore.StoredEvent // by process key; nil: no start stored
}

// NewResolver returns a resolver over st.
func NewResolver(st *eventstore.Store) *Resolver {
	return &Resolver{st: st, byKey: map[string]*Process{}, byEID: map[int64]*Process{},
		events: map[int64]*eventstore.StoredEvent{}, execs: map[string][]eventstore.StoredEvent{},
		exits: map[string][]time.Time{}, guids: map[string]*eventstore.StoredEvent{},
		keys: map[string]*eventstore.StoredEvent{}}
}

// pidCache bounds the starts and exits of one pid read at once; a pid with
// more falls back to one query per lookup.
const pidCache = 4096

// Prefetch reads the events of eids in a few queries, so ByEID finds them
// without one query each.
func (r *Resolver) Prefetch(ctx context.Context, eids []int64) error {
	var need []int64
	for _, e := range eids {
		if _, ok := r.byEID[e]; !ok && r.events[e] == nil && e > 0 {
			need = append(need, e)
		}
	}
	evs, err := r.st.EventsByEIDs(ctx, need)
	if err != nil {
		return err
	}
	for i := range evs {
		if evs[i].Kind == telemetry.KindExec {
			r.fromExec(&evs[i])
		} else {
			r.events[evs[i].EID] = &evs[i]
		}
	}
	return nil
}

func pidKey(host string, pid int64) string { return fmt.Sprintf("%s\x00%d", host, pid) }

// latestExec is eventstore.LatestExec through the per-pid cache.
func (r *Resolver) latestExec(ctx context.Context, host string, pid int64, t time.Time) (eventstore.StoredEvent, bool, error) {
	k := pidKey(host, pid)
	evs, ok := r.execs[k]
	if !ok {
		var err error
		if evs, err = r.st.ExecsOfPID(ctx, host, pid, pidCache); err != nil {
			return eventstore.StoredEvent{}, false, err
		}
		r.execs[k] = evs
	}
	if len(evs) >= pidCache {
		return r.st.LatestExec(ctx, host, pid, t)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if !evs[i].Time.After(t) {
			return evs[i], true, nil
		}
	}
	return eventstore.StoredEvent{}, false, nil
}

// firstExit is eventstore.FirstExit through the per-pid cache.
func (r *Resolver) firstExit(ctx context.Context, host string, pid int64, t time.Time) (time.Time, bool, error) {
	k := pidKey(host, pid)
	ts, ok := r.exits[k]
	if !ok {
		var err error
		if ts, err = r.st.ExitsOfPID(ctx, host, pid, pidCache); err != nil {
			return time.Time{}, false, err
		}
		r.exits[k] = ts
	}
	if len(ts) >= pidCache {
		return r.st.FirstExit(ctx, host, pid, t)
	}
	for _, x := range ts {
		if !x.Before(t) {
			return x, true, nil
		}
	}
	return time.Time{}, false, nil
}

// execByGUID is eventstore.ExecByGUID, memoized.
func (r *Resolver) execByGUID(ctx context.Context, host, guid string) (*eventstore.StoredEvent, error) {
	k := host + "\x00" + guid
	if ev, ok := r.guids[k]; ok {
		return ev, nil
	}
	ev, found, err := r.st.ExecByGUID(ctx, host, guid)
	if err != nil {
		return nil, err
	}
	var out *eventstore.StoredEvent
	if found {
		out = &ev
	}
	r.guids[k] = out
	return out, nil
}

// execByKey is eventstore.ExecByKey, memoized.
func (r *Resolver) execByKey(ctx context.Context, key string) (*eventstore.StoredEvent, error) {
	if ev, ok := r.keys[key]; ok {
		return ev, nil
	}
	ev, found, err := r.st.ExecByKey(ctx, key)
	if err != nil {
		return nil, err
	}
	var out *eventstore.StoredEvent
	if found {
		out = &ev
	}
	r.keys[key] = out
	return out, nil
}

func normGUID(g string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(g), "{}"))
}

// keyOf returns the identity of a process start event: the store's
// process_key; for events stored before the store kept one, Sysmon's GUID,
// else the pid with the start time.
func keyOf(ev *telemetry.Event) string {
	switch {
	case ev.ProcessKey != "":
		return ev.ProcessKey
	case ev.ProcessGUID != "":
		return "g:" + normGUID(ev.ProcessGUID)
	case !ev.StartTime.IsZero():
		return fmt.Sprintf("s:%d:%d", ev.PID, ev.StartTime.UnixNano())
	default:
		return fmt.Sprintf("e:%d:%d", ev.PID, ev.Time.UnixNano())
	}
}

func startOf(ev *telemetry.Event) time.Time {
	if !ev.StartTime.IsZero() {
		return ev.StartTime
	}
	return ev.Time
}

// fromExec returns the process of a stored start event. A later start event
// of the same process (an exec that replaced its image) updates its path
// and command line: a process shows its latest image.
func (r *Resolver) fromExec(ev *eventstore.StoredEvent) *Process {
	if p, ok := r.byEID[ev.EID]; ok {
		return p
	}
	k := keyOf(&ev.Event)
	p, ok := r.byKey[k]
	if !ok {
		p = &Process{Key: k, Host: ev.Host, Start: startOf(&ev.Event), GUID: ev.ProcessGUID}
		r.byKey[k] = p
	}
	if ev.EID >= p.EID {
		p.PID, p.PPID, p.EID = ev.PID, ev.PPID, ev.EID
		p.Path, p.Cmdline = ev.Path, ev.Cmdline
		if p.Path == "" {
			p.Path = ev.Field("Image")
		}
		if p.Cmdline == "" {
			p.Cmdline = ev.Field("CommandLine")
		}
		p.User = ev.Username
		p.Phantom = false
		p.ppidAt = startOf(&ev.Event)
		p.parentGUID, p.parentPath, p.parentCmdline = ev.ParentGUID, ev.ParentPath, ev.ParentCmdline
	}
	r.byEID[ev.EID] = p
	return p
}

func (r *Resolver) phantom(key, host string, pid int64, path, cmdline, guid string) *Process {
	if p, ok := r.byKey[key]; ok {
		return p
	}
	p := &Process{Key: key, Host: host, PID: pid, PPID: telemetry.Unknown, Path: path, Cmdline: cmdline, GUID: guid,
		Phantom: true, parentDone: true, exitDone: true}
	r.byKey[key] = p
	return p
}

// ByEID returns the process an event (a start, or any event naming a
// process) belongs to; nil when the event is not stored or names none.
func (r *Resolver) ByEID(ctx context.Context, eid int64) (*Process, error) {
	if eid <= 0 {
		return nil, nil
	}
	if p, ok := r.byEID[eid]; ok {
		return p, nil
	}
	var ev eventstore.StoredEvent
	if pe := r.events[eid]; pe != nil {
		ev = *pe
	} else {
		var ok bool
		var err error
		if ev, ok, err = r.st.EventByEID(ctx, eid); err != nil || !ok {
			return nil, err
		}
	}
	if ev.Kind == telemetry.KindExec {
		return r.fromExec(&ev), nil
	}
	// Another event of a process (Sysmon file, network… events; an exit):
	// the store named its process.
	var p *Process
	guid := ev.ProcessGUID
	if guid == "" {
		guid = ev.Field("ProcessGuid")
	}
	switch {
	case ev.ProcessKey != "":
		start, err := r.execByKey(ctx, ev.ProcessKey)
		if err != nil {
			return nil, err
		}
		if start != nil {
			p = r.fromExec(start)
		} else {
			p = r.phantom(ev.ProcessKey, ev.Host, ev.PID, ev.Path, ev.Cmdline, guid)
		}
	case guid != "":
		start, err := r.execByGUID(ctx, ev.Host, guid)
		if err != nil {
			return nil, err
		}
		if start != nil {
			p = r.fromExec(start)
		} else {
			p = r.phantom(eventstore.GUIDKey(ev.Host, guid), ev.Host, ev.PID, ev.Path, ev.Cmdline, guid)
		}
	case ev.PID > 0:
		var err error
		if p, err = r.running(ctx, ev.Host, ev.PID, ev.Time); err != nil {
			return nil, err
		}
	}
	if p != nil {
		r.byEID[eid] = p
	}
	return p, nil
}

// ByPID returns the process that had pid on host at t and was still running
// then (a pid whose last start was followed by an exit before t is not
// taken for it: the pid was reused or the process is gone).
func (r *Resolver) ByPID(ctx context.Context, host string, pid int64, t time.Time) (*Process, error) {
	return r.running(ctx, host, pid, t)
}

func (r *Resolver) running(ctx context.Context, host string, pid int64, t time.Time) (*Process, error) {
	ev, ok, err := r.latestExec(ctx, host, pid, t)
	if err != nil || !ok {
		return nil, err
	}
	exit, exited, err := r.firstExit(ctx, host, pid, ev.Time)
	if err != nil {
		return nil, err
	}
	if exited && exit.Before(t) {
		return nil, nil
	}
	return r.fromExec(&ev), nil
}

// Parent returns p's parent: by its GUID when the source records one, else
// the process that had p's parent pid when p started (pid reuse is told
// apart by start times and exits). A parent the store has no start of is a
// phantom built from what p's start event says of it. nil when p names no
// parent.
func (r *Resolver) Parent(ctx context.Context, p *Process) (*Process, error) {
	if p.parentDone {
		return p.parent, nil
	}
	p.parentDone = true
	if p.EID == 0 {
		return nil, nil
	}
	switch {
	case p.parentGUID != "":
		pe, err := r.execByGUID(ctx, p.Host, p.parentGUID)
		if err != nil {
			return nil, err
		}
		if pe != nil {
			p.parent = r.fromExec(pe)
		} else {
			p.parent = r.phantom(eventstore.GUIDKey(p.Host, p.parentGUID), p.Host, p.PPID, p.parentPath, p.parentCmdline, p.parentGUID)
		}
	case p.PPID > 0 && p.PPID != p.PID:
		par, err := r.running(ctx, p.Host, p.PPID, p.ppidAt)
		if err != nil {
			return nil, err
		}
		if par != nil && !par.Start.After(p.ppidAt) {
			p.parent = par
		} else {
			p.parent = r.phantom(fmt.Sprintf("u:%d:%s", p.PPID, p.parentPath), p.Host, p.PPID, p.parentPath, p.parentCmdline, "")
		}
	}
	return p.parent, nil
}

// Exit returns when p exited; ok is false while it runs or when no exit is
// stored.
func (r *Resolver) Exit(ctx context.Context, p *Process) (time.Time, bool, error) {
	if !p.exitDone {
		p.exitDone = true
		t, ok, err := r.firstExit(ctx, p.Host, p.PID, p.Start)
		if err != nil {
			return time.Time{}, false, err
		}
		if ok {
			p.exit = t
		}
	}
	return p.exit, !p.exit.IsZero(), nil
}

// Children returns p's children (processes whose parent resolves to p),
// oldest first, at most limit of them.
func (r *Resolver) Children(ctx context.Context, p *Process, limit int) ([]*Process, error) {
	if p.Phantom && p.GUID == "" {
		return nil, nil
	}
	var evs []eventstore.StoredEvent
	var err error
	if p.GUID != "" {
		evs, err = r.st.ExecChildrenByGUID(ctx, p.Host, p.GUID, limit)
	} else {
		exit, _, xerr := r.Exit(ctx, p)
		if xerr != nil {
			return nil, xerr
		}
		evs, err = r.st.ExecChildren(ctx, p.Host, p.PID, p.Start, exit, limit)
	}
	if err != nil {
		return nil, err
	}
	var out []*Process
	seen := map[string]bool{}
	for i := range evs {
		c := r.fromExec(&evs[i])
		if seen[c.Key] || c == p {
			continue
		}
		par, err := r.Parent(ctx, c)
		if err != nil {
			return nil, err
		}
		if par != p {
			continue
		}
		seen[c.Key] = true
		out = append(out, c)
	}
	return out, nil
}

// Name returns the process's executable name, lower-cased, for boundary
// matching ("C:\Windows\explorer.EXE" → "explorer.exe").
func (p *Process) Name() string {
	s := strings.ReplaceAll(p.Path, `\`, "/")
	return strings.ToLower(path.Base(s))
}
