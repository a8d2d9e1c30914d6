package lineage

import (
	"container/list"
	"sync"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// Defaults for Options.
const (
	DefaultMaxEntries = 1 << 16
	DefaultExitedTTL  = 5 * time.Minute
)

// startTolerance is how far apart two start times of one pid may be and
// still name the same process: sources differ in precision (/proc counts
// 10 ms clock ticks), and no pid is reused within it.
const startTolerance = 30 * time.Millisecond

// Options configure a Cache.
type Options struct {
	// MaxEntries bounds the processes kept; zero means DefaultMaxEntries.
	MaxEntries int
	// ExitedTTL is how long an exited process is kept; zero means
	// DefaultExitedTTL.
	ExitedTTL time.Duration
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// Cache holds recent processes. It is safe for concurrent use.
type Cache struct {
	opts Options

	mu     sync.Mutex
	byPID  map[int64][]*entry // oldest first
	lru    list.List          // *entry, most recently used first
	exited list.List          // *entry, in exit order
}

// entry is one process.
type entry struct {
	pid, ppid int64
	start     time.Time // zero when unknown
	path      string
	cmdline   string
	args      []string
	cwd       string
	exitedAt  time.Time // zero while running

	lruElem, exitElem *list.Element
}

// New returns an empty cache.
func New(opts Options) *Cache {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.ExitedTTL <= 0 {
		opts.ExitedTTL = DefaultExitedTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{opts: opts, byPID: make(map[int64][]*entry)}
}

// Len returns the number of processes kept.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Seed records processes already running (exec events read from /proc)
// without changing them.
func (c *Cache) Seed(evs []telemetry.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range evs {
		if evs[i].PID > 0 {
			c.recordExec(&evs[i])
		}
	}
}

// Enrich records an exec or exit event and fills in what the cache knows:
// ParentPath and ParentCmdline from the parent, and, for an exit, the
// exiting process's Path, Cmdline, Args, Cwd and PPID when the event lacks
// them. Fields already set are kept. Other kinds are left alone.
func (c *Cache) Enrich(ev *telemetry.Event) {
	if ev.PID <= 0 || (ev.Kind != telemetry.KindExec && ev.Kind != telemetry.KindExit) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire()
	switch ev.Kind {
	case telemetry.KindExec:
		e := c.recordExec(ev)
		c.fillParent(ev, e.ppid, e.start)
	case telemetry.KindExit:
		e := c.find(ev.PID, ev.StartTime)
		if e == nil {
			c.fillParent(ev, ev.PPID, ev.StartTime)
			return
		}
		fillEmpty(&ev.Path, e.path)
		fillEmpty(&ev.Cmdline, e.cmdline)
		fillEmpty(&ev.Cwd, e.cwd)
		if ev.Args == nil {
			ev.Args = e.args
		}
		if ev.PPID == telemetry.Unknown {
			ev.PPID = e.ppid
		}
		c.fillParent(ev, ev.PPID, e.start)
		c.markExited(e, ev.Time)
	}
}

func fillEmpty(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// fillParent sets the parent fields from the parent's current image.
func (c *Cache) fillParent(ev *telemetry.Event, ppid int64, childStart time.Time) {
	if ev.ParentPath != "" || ppid <= 0 {
		return
	}
	p := c.parent(ppid, childStart)
	if p == nil {
		return
	}
	c.lru.MoveToFront(p.lruElem)
	ev.ParentPath = p.path
	fillEmpty(&ev.ParentCmdline, p.cmdline)
}

// recordExec adds the process of an exec event or, when it is already
// known, replaces its image. It returns the entry.
func (c *Cache) recordExec(ev *telemetry.Event) *entry {
	e := c.find(ev.PID, ev.StartTime)
	if e == nil {
		// A new process: any other process with this pid is gone.
		for _, old := range c.byPID[ev.PID] {
			c.markExited(old, ev.Time)
		}
		e = &entry{pid: ev.PID, ppid: ev.PPID, start: ev.StartTime}
		e.lruElem = c.lru.PushFront(e)
		c.byPID[ev.PID] = append(c.byPID[ev.PID], e)
		c.evict()
	} else {
		c.lru.MoveToFront(e.lruElem)
		if e.start.IsZero() {
			e.start = ev.StartTime
		}
		if e.ppid <= 0 {
			e.ppid = ev.PPID
		}
	}
	if ev.PPID == telemetry.Unknown && e.ppid > 0 {
		ev.PPID = e.ppid // a new image keeps its parent
	}
	e.path, e.cmdline, e.args, e.cwd = ev.Path, ev.Cmdline, ev.Args, ev.Cwd
	return e
}

// find returns the process with this pid and start time: the running one
// when start is unknown.
func (c *Cache) find(pid int64, start time.Time) *entry {
	es := c.byPID[pid]
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		switch {
		case start.IsZero() || e.start.IsZero():
			if e.exitedAt.IsZero() {
				return e
			}
		case sameStart(e.start, start):
			return e
		}
	}
	return nil
}

// parent returns the process with pid ppid that was running when a child
// started at childStart: the newest one started before the child.
func (c *Cache) parent(ppid int64, childStart time.Time) *entry {
	es := c.byPID[ppid]
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		if childStart.IsZero() || e.start.IsZero() || !e.start.After(childStart.Add(startTolerance)) {
			return e
		}
	}
	return nil
}

func sameStart(a, b time.Time) bool {
	d := a.Sub(b)
	return d < startTolerance && d > -startTolerance
}

func (c *Cache) markExited(e *entry, at time.Time) {
	if !e.exitedAt.IsZero() {
		return
	}
	if at.IsZero() {
		at = c.opts.Now()
	}
	e.exitedAt = at
	e.exitElem = c.exited.PushBack(e)
}

// expire forgets processes that exited more than ExitedTTL ago.
func (c *Cache) expire() {
	limit := c.opts.Now().Add(-c.opts.ExitedTTL)
	for el := c.exited.Front(); el != nil; el = c.exited.Front() {
		e := el.Value.(*entry)
		if e.exitedAt.After(limit) {
			return
		}
		c.remove(e)
	}
}

// evict forgets the least recently used processes beyond MaxEntries.
func (c *Cache) evict() {
	for c.lru.Len() > c.opts.MaxEntries {
		c.remove(c.lru.Back().Value.(*entry))
	}
}

func (c *Cache) remove(e *entry) {
	c.lru.Remove(e.lruElem)
	if e.exitElem != nil {
		c.exited.Remove(e.exitElem)
	}
	es := c.byPID[e.pid]
	for i, x := range es {
		if x == e {
			es = append(es[:i], es[i+1:]...)
			break
		}
	}
	if len(es) == 0 {
		delete(c.byPID, e.pid)
	} else {
		c.byPID[e.pid] = es
	}
}
