package eventstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// Identity: every stored record has one (events.rkey), so storing the same
// record again stores nothing; every event names the process it belongs to
// (events.process_key), one per real process whatever the sources that
// recorded it.

// MergeWindow is how far apart two start records of one pid on one host,
// from different sources, may be and still be taken for the same process
// (Sysmon EID 1 and Security 4688 of one process are a millisecond or two
// apart once their clocks agree).
const MergeWindow = 2 * time.Second

// recordKey returns the identity of a record: its host, channel and record
// id when the source numbers its records for real (a Windows EventRecordID,
// an EVTX record id; an audit serial with its time), else a hash of its
// normalized content. A line or object number is never part of it, so the
// same record read from another file (an overlapping recording) is the same
// record. The result is 16 bytes: the record id or time, then 8 bytes of
// the hash; buf is reused.
func recordKey(buf []byte, e *telemetry.Event, argsJSON, fieldsJSON string) (key, scratch []byte) {
	b := buf[:0]
	sep := func() { b = append(b, 0) }
	str := func(s string) { b = append(b, s...); sep() }
	num := func(n int64) { b = strconv.AppendInt(b, n, 10); sep() }
	_, hasRecordID := e.Fields.Get("EventRecordID")
	switch {
	case hasRecordID && e.Channel != "" && e.RecordID > 0:
		str("w")
		str(e.Host)
		str(e.Channel)
		num(e.RecordID)
	case e.Source == telemetry.SourceAuditd && e.RecordID > 0:
		str("a")
		str(e.Host)
		num(e.RecordID)
		num(unixNano(e.Time))
	default:
		str("c")
		num(unixNano(e.Time))
		num(int64(e.Kind))
		str(string(e.Source))
		str(e.Host)
		str(e.Category)
		num(int64(e.EventID))
		str(e.Channel)
		for _, n := range [...]int64{e.PID, e.PPID, e.UID, e.EUID, e.GID, e.EGID, e.AUID, unixNano(e.StartTime),
			e.ExitCode, int64(e.ExitSignal), int64(e.CgroupID), boolInt(e.Partial), boolInt(e.Truncated)} {
			num(n)
		}
		for _, s := range [...]string{e.Path, e.Cmdline, argsJSON, e.Cwd, e.Comm, e.Username, e.LogonID,
			e.ParentPath, e.ParentCmdline, e.ProcessGUID, e.ParentGUID, e.IntegrityLevel, e.OriginalFileName,
			e.Hashes, fieldsJSON} {
			str(s)
		}
		// Two runs of one sample may record alike events: the run keeps
		// them apart. Events outside any run keep the keys older versions
		// gave them.
		if e.RunID != "" {
			str("r")
			str(e.RunID)
		}
	}
	// The key leads with the record id or the time, so keys of a recording
	// or a live stream mostly follow one another and their index grows at
	// its end rather than everywhere (fewer pages written per batch).
	lead := unixNano(e.Time)
	if hasRecordID && e.Channel != "" && e.RecordID > 0 {
		lead = e.RecordID
	}
	sum := sha256.Sum256(b)
	key = binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(lead))
	return append(key, sum[:8]...), b
}

// NormGUID normalizes a process GUID: lower case, without braces.
func NormGUID(g string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(g), "{}"))
}

// GUIDKey is the process_key of the process whose GUID (Sysmon's
// ProcessGuid) on host is guid, whether or not its start is stored.
func GUIDKey(host, guid string) string { return "g:" + host + "/" + NormGUID(guid) }

// Process keys: "g:<host>/<guid>" (GUIDKey); "s:<host>/<pid>/<start ns>"
// for a start whose source records the kernel's start time (eBPF, the
// process connector); "e:<host>/<pid>/<time ns>" for other starts (Security
// 4688, auditd); "u:<host>/<pid>/<time ns>" for a process seen only through
// its other events, keyed by the first of them. A start record of another
// source merging into a process keeps the key it already has.
func execKey(e *telemetry.Event) string {
	switch {
	case e.ProcessGUID != "":
		return GUIDKey(e.Host, e.ProcessGUID)
	case !e.StartTime.IsZero():
		return fmt.Sprintf("s:%s/%d/%d", e.Host, e.PID, e.StartTime.UnixNano())
	}
	return fmt.Sprintf("e:%s/%d/%d", e.Host, e.PID, unixNano(e.Time))
}

func startNS(e *telemetry.Event) int64 {
	if !e.StartTime.IsZero() {
		return e.StartTime.UnixNano()
	}
	return unixNano(e.Time)
}

// proc is one row of processes, cached.
type proc struct {
	key     string
	host    string
	pid     int64
	start   int64
	guid    string
	eid     int64
	sources string
	// path and cmdline of its start row, for its children's parent fields.
	path, cmdline string
	dirty         bool
}

func (p *proc) hasSource(src telemetry.Source) bool {
	for _, s := range strings.Split(p.sources, ",") {
		if s == string(src) {
			return true
		}
	}
	return false
}

// addSource returns the sorted source list with src.
func addSource(list string, src telemetry.Source) string {
	if list == "" {
		return string(src)
	}
	parts := strings.Split(list, ",")
	for _, s := range parts {
		if s == string(src) {
			return list
		}
	}
	parts = append(parts, string(src))
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// procCache is a read-through cache of the processes table, owned by the
// writer (under Store.wmu). It is dropped whole when a batch fails, as its
// changes were not committed.
type procCache struct {
	byKey  map[string]*proc
	byGUID map[string]*proc   // host \x00 guid; a nil value: none stored
	byPID  map[string][]*proc // host \x00 pid → every process of that pid, by start
}

// procCacheMax bounds the cached processes; past it the cache starts over.
const procCacheMax = 1 << 18

func newProcCache() *procCache {
	return &procCache{byKey: map[string]*proc{}, byGUID: map[string]*proc{}, byPID: map[string][]*proc{}}
}

func pidIndex(host string, pid int64) string { return host + "\x00" + strconv.FormatInt(pid, 10) }

// resolver resolves one batch's identities in its transaction.
type resolver struct {
	ctx   context.Context
	tx    *sql.Tx
	c     *procCache
	dirty []*proc
	byPID *sql.Stmt
	byGID *sql.Stmt
}

func (s *Store) newResolver(ctx context.Context, tx *sql.Tx) (*resolver, error) {
	r := &resolver{ctx: ctx, tx: tx, c: s.procs}
	var err error
	if r.byPID, err = tx.PrepareContext(ctx, procColumns+`WHERE p.host = ? AND p.pid = ? ORDER BY p.start`); err != nil {
		return nil, err
	}
	if r.byGID, err = tx.PrepareContext(ctx, procColumns+`WHERE p.host = ? AND p.guid = ? LIMIT 1`); err != nil {
		return nil, err
	}
	return r, nil
}

// procColumns reads processes rows with their start row's path and command
// line.
const procColumns = `SELECT p.process_key, p.host, p.pid, p.start, p.guid, p.eid, p.sources,
	coalesce(e.path, ''), coalesce(e.cmdline, '') FROM processes p LEFT JOIN events e ON e.eid = p.eid AND p.eid != 0 `

func (r *resolver) close() {
	for _, st := range []*sql.Stmt{r.byPID, r.byGID} {
		if st != nil {
			st.Close()
		}
	}
}

// scanProcs reads process rows, reusing cached ones.
func (r *resolver) scanProcs(rows *sql.Rows) ([]*proc, error) {
	defer rows.Close()
	var out []*proc
	for rows.Next() {
		var p proc
		if err := rows.Scan(&p.key, &p.host, &p.pid, &p.start, &p.guid, &p.eid, &p.sources, &p.path, &p.cmdline); err != nil {
			return nil, err
		}
		if c, ok := r.c.byKey[p.key]; ok {
			out = append(out, c)
			continue
		}
		np := p
		r.c.byKey[p.key] = &np
		out = append(out, &np)
	}
	return out, rows.Err()
}

// prefetch loads, in a few queries, the processes of the pids and GUIDs a
// batch names that the cache does not hold yet.
func (r *resolver) prefetch(events []telemetry.Event) error {
	pids := map[string]map[int64]bool{}
	guids := map[string]map[string]bool{}
	addPID := func(host string, pid int64) {
		if pid <= 0 {
			return
		}
		if _, ok := r.c.byPID[pidIndex(host, pid)]; ok {
			return
		}
		if pids[host] == nil {
			pids[host] = map[int64]bool{}
		}
		pids[host][pid] = true
	}
	for i := range events {
		e := &events[i]
		addPID(e.Host, e.PID)
		if e.Kind == telemetry.KindExec && e.ParentPath == "" {
			addPID(e.Host, e.PPID)
		}
		g := e.ProcessGUID
		if g == "" && e.Kind != telemetry.KindExec {
			g = e.Field("ProcessGuid")
		}
		if g = NormGUID(g); g != "" {
			if _, ok := r.c.byGUID[e.Host+"\x00"+g]; !ok {
				if guids[e.Host] == nil {
					guids[e.Host] = map[string]bool{}
				}
				guids[e.Host][g] = true
			}
		}
	}
	for host, set := range pids {
		list := make([]any, 0, len(set))
		for pid := range set {
			list = append(list, pid)
		}
		err := r.readProcs(host, "pid", " ORDER BY p.start", list, func(chunk []any, procs []*proc) {
			for _, pid := range chunk {
				r.c.byPID[pidIndex(host, pid.(int64))] = []*proc{}
			}
			for _, p := range procs {
				k := pidIndex(host, p.pid)
				r.c.byPID[k] = append(r.c.byPID[k], p)
			}
		})
		if err != nil {
			return err
		}
	}
	for host, set := range guids {
		list := make([]any, 0, len(set))
		for g := range set {
			list = append(list, g)
		}
		err := r.readProcs(host, "guid", "", list, func(chunk []any, procs []*proc) {
			for _, g := range chunk {
				r.c.byGUID[host+"\x00"+g.(string)] = nil
			}
			for _, p := range procs {
				r.c.byGUID[host+"\x00"+p.guid] = p
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// readProcs reads the processes of host whose column is one of values, 500
// values a query, and hands each chunk with its processes to use.
func (r *resolver) readProcs(host, column, order string, values []any, use func(chunk []any, procs []*proc)) error {
	for start := 0; start < len(values); start += 500 {
		chunk := values[start:min(start+500, len(values))]
		rows, err := r.tx.QueryContext(r.ctx, procColumns+"WHERE p.host = ? AND p."+column+" IN ("+placeholders(len(chunk))+")"+order,
			append([]any{host}, chunk...)...)
		if err != nil {
			return fmt.Errorf("read processes on %s: %w", host, err)
		}
		procs, err := r.scanProcs(rows)
		if err != nil {
			return fmt.Errorf("read processes on %s: %w", host, err)
		}
		use(chunk, procs)
	}
	return nil
}

func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	return "?" + repeatComma(n-1)
}

// pidList returns every known process of pid on host, by start.
func (r *resolver) pidList(host string, pid int64) ([]*proc, error) {
	k := pidIndex(host, pid)
	if l, ok := r.c.byPID[k]; ok {
		return l, nil
	}
	rows, err := r.byPID.QueryContext(r.ctx, host, pid)
	if err != nil {
		return nil, fmt.Errorf("read processes of %d on %s: %w", pid, host, err)
	}
	l, err := r.scanProcs(rows)
	if err != nil {
		return nil, fmt.Errorf("read processes of %d on %s: %w", pid, host, err)
	}
	if l == nil {
		l = []*proc{}
	}
	r.c.byPID[k] = l
	return l, nil
}

// byGUID returns the process of guid on host, nil when none is known.
func (r *resolver) byGUID(host, guid string) (*proc, error) {
	k := host + "\x00" + guid
	if p, ok := r.c.byGUID[k]; ok {
		return p, nil
	}
	rows, err := r.byGID.QueryContext(r.ctx, host, guid)
	if err != nil {
		return nil, fmt.Errorf("read process %s on %s: %w", guid, host, err)
	}
	l, err := r.scanProcs(rows)
	if err != nil {
		return nil, fmt.Errorf("read process %s on %s: %w", guid, host, err)
	}
	var p *proc
	if len(l) > 0 {
		p = l[0]
	}
	r.c.byGUID[k] = p
	return p, nil
}

func (r *resolver) touch(p *proc) {
	if !p.dirty {
		p.dirty = true
		r.dirty = append(r.dirty, p)
	}
}

// add registers a new process.
func (r *resolver) add(p *proc) error {
	if p.pid > 0 {
		l, err := r.pidList(p.host, p.pid)
		if err != nil {
			return err
		}
		r.c.byPID[pidIndex(p.host, p.pid)] = insertByStart(l, p)
	}
	if p.guid != "" {
		r.c.byGUID[p.host+"\x00"+p.guid] = p
	}
	r.c.byKey[p.key] = p
	r.touch(p)
	return nil
}

func insertByStart(l []*proc, p *proc) []*proc {
	i := sort.Search(len(l), func(i int) bool { return l[i].start > p.start })
	l = append(l, nil)
	copy(l[i+1:], l[i:])
	l[i] = p
	return l
}

func (r *resolver) resort(p *proc) {
	if p.pid <= 0 {
		return
	}
	k := pidIndex(p.host, p.pid)
	l := r.c.byPID[k]
	sort.SliceStable(l, func(i, j int) bool { return l[i].start < l[j].start })
}

// latest returns the process of pid on host that started last at or before
// t (a process known only by its events counts from the first of them).
func (r *resolver) latest(host string, pid int64, t int64) (*proc, error) {
	l, err := r.pidList(host, pid)
	if err != nil {
		return nil, err
	}
	for i := len(l) - 1; i >= 0; i-- {
		if l[i].start <= t {
			return l[i], nil
		}
	}
	return nil, nil
}

// execOutcome is what resolving a start record decided.
type execOutcome struct {
	p     *proc
	merge bool // into p.eid, an existing row of another source
}

// exec resolves a start record that is not already stored; newEID is the eid
// it gets if it becomes a row of its own.
func (r *resolver) exec(e *telemetry.Event, newEID int64) (execOutcome, error) {
	guid := NormGUID(e.ProcessGUID)
	start := startNS(e)
	var byGUID *proc
	if guid != "" {
		var err error
		if byGUID, err = r.byGUID(e.Host, guid); err != nil {
			return execOutcome{}, err
		}
	}
	var list []*proc
	if e.PID > 0 {
		var err error
		if list, err = r.pidList(e.Host, e.PID); err != nil {
			return execOutcome{}, err
		}
	}
	// The same process recorded by another source: by GUID, else by pid and
	// a start within MergeWindow.
	cand := byGUID
	if cand == nil || cand.eid == 0 {
		var best *proc
		bestD := int64(MergeWindow) + 1
		for _, p := range list {
			if p.eid == 0 || p.hasSource(e.Source) || (p.guid != "" && guid != "" && p.guid != guid) {
				continue
			}
			d := p.start - start
			if d < 0 {
				d = -d
			}
			if d < bestD {
				best, bestD = p, d
			}
		}
		if best != nil {
			cand = best
		}
	}
	if cand != nil && cand.eid != 0 && !cand.hasSource(e.Source) {
		cand.sources = addSource(cand.sources, e.Source)
		if cand.guid == "" && guid != "" {
			cand.guid = guid
			r.c.byGUID[e.Host+"\x00"+guid] = cand
		}
		if cand.path == "" {
			cand.path = e.Path
		}
		if cand.cmdline == "" {
			cand.cmdline = e.Cmdline
		}
		r.touch(cand)
		return execOutcome{p: cand, merge: true}, nil
	}
	key := execKey(e)
	// A process known so far only through its events (its GUID, or its pid
	// after this start) becomes this start's.
	adopt := byGUID
	if adopt == nil {
		for _, p := range list {
			if p.key == key {
				adopt = p // the same process starting again (an exec replacing its image)
				break
			}
		}
	}
	if adopt == nil {
		for _, p := range list {
			if p.start < start {
				continue
			}
			if p.eid != 0 {
				break // a later start of that pid comes first
			}
			if p.guid == "" || p.guid == guid {
				adopt = p
			}
			break
		}
	}
	if adopt != nil {
		if adopt.eid == 0 {
			adopt.start = start
			r.resort(adopt)
		}
		if adopt.pid <= 0 && e.PID > 0 {
			adopt.pid = e.PID
			l, err := r.pidList(e.Host, e.PID)
			if err != nil {
				return execOutcome{}, err
			}
			r.c.byPID[pidIndex(e.Host, e.PID)] = insertByStart(l, adopt)
		}
		adopt.eid = newEID
		adopt.sources = addSource(adopt.sources, e.Source)
		adopt.path, adopt.cmdline = e.Path, e.Cmdline
		if adopt.guid == "" && guid != "" {
			adopt.guid = guid
			r.c.byGUID[e.Host+"\x00"+guid] = adopt
		}
		r.touch(adopt)
		return execOutcome{p: adopt}, nil
	}
	p := &proc{key: key, host: e.Host, pid: e.PID, start: start, guid: guid, eid: newEID,
		sources: string(e.Source), path: e.Path, cmdline: e.Cmdline}
	return execOutcome{p: p}, r.add(p)
}

// actor returns the process_key of the process acting in a record that is
// not a start: by its GUID when it names one, else the latest process of
// its pid on its host started at or before it; a process not seen yet gets
// a key of its own. "" when the record names no process.
func (r *resolver) actor(e *telemetry.Event) (string, error) {
	guid := e.ProcessGUID
	if guid == "" {
		guid = e.Field("ProcessGuid")
	}
	if guid == "" {
		guid = e.Field("SourceProcessGuid")
	}
	guid = NormGUID(guid)
	pid := e.PID
	if pid <= 0 {
		if s := e.Field("SourceProcessId"); s != "" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				pid = n
			}
		}
	}
	t := unixNano(e.Time)
	if guid != "" {
		p, err := r.byGUID(e.Host, guid)
		if err != nil || p != nil {
			if p == nil {
				return "", err
			}
			return p.key, err
		}
		if pid > 0 {
			// The start of the process may be stored from a source that
			// records no GUID (Security 4688): the process of that pid then
			// is taken for it, and its GUID learnt.
			p, err := r.actorOf(e, pid, t)
			if err != nil {
				return "", err
			}
			if p != nil && p.guid == "" && p.eid != 0 {
				p.guid = guid
				r.c.byGUID[e.Host+"\x00"+guid] = p
				r.touch(p)
				return p.key, nil
			}
		}
		p = &proc{key: GUIDKey(e.Host, guid), host: e.Host, pid: pid, start: t, guid: guid}
		return p.key, r.add(p)
	}
	if pid <= 0 {
		return "", nil
	}
	p, err := r.actorOf(e, pid, t)
	if err != nil {
		return "", err
	}
	if p != nil {
		return p.key, nil
	}
	p = &proc{key: fmt.Sprintf("u:%s/%d/%d", e.Host, pid, t), host: e.Host, pid: pid, start: t}
	return p.key, r.add(p)
}

// actorOf returns the process of pid on e's host that acted in e at time t:
// the latest started at or before t; or, when the record's clock may lag the
// start's (recordSlack), a start within the slack after t when no older
// process of the pid is known, or when that start's image is the one the
// record names and the older process's is not (a Linux exec keeps the pid,
// so a record just before an exec stays with the image that made it).
func (r *resolver) actorOf(e *telemetry.Event, pid, t int64) (*proc, error) {
	p, err := r.latest(e.Host, pid, t)
	if err != nil {
		return nil, err
	}
	slack := recordSlack(e, t)
	if slack == 0 {
		return p, nil
	}
	q, err := r.latest(e.Host, pid, t+slack)
	if err != nil || q == nil || q == p {
		return p, err
	}
	if p == nil || (e.Path != "" && q.path == e.Path && p.path != e.Path) {
		return q, nil
	}
	return p, nil
}

// recordSlack is how long after a record's time t its process may have
// started by the clock of the process's start record. auditd stamps a
// record with the kernel's coarse clock at the syscall's entry (it lags the
// precise clock by up to a jiffy: 10 ms at HZ=100) and keeps milliseconds,
// while cn_proc and eBPF stamp a start in nanoseconds; other times on a
// whole millisecond may be truncated ones (Windows keeps milliseconds).
// Pids wrap far slower than that; an exec within it keeps the pid, which
// actorOf tells apart by the image.
func recordSlack(e *telemetry.Event, t int64) int64 {
	switch {
	case e.Source == telemetry.SourceAuditd:
		return int64(10 * time.Millisecond)
	case t%int64(time.Millisecond) == 0:
		return int64(time.Millisecond) - 1
	}
	return 0
}

// parent fills a start record's parent path and command line when its
// source leaves them out (Security 4688 before Windows 10, auditd): from the
// process that had its parent pid on its host when it started.
func (r *resolver) parent(e *telemetry.Event) error {
	if e.ParentPath != "" || e.PPID <= 0 || e.PPID == e.PID {
		return nil
	}
	p, err := r.latest(e.Host, e.PPID, startNS(e))
	if err != nil || p == nil || p.eid == 0 {
		return err
	}
	e.ParentPath = p.path
	if e.ParentCmdline == "" {
		e.ParentCmdline = p.cmdline
	}
	return nil
}

// save writes the processes the batch changed.
func (r *resolver) save() error {
	if len(r.dirty) == 0 {
		return nil
	}
	st, err := r.tx.PrepareContext(r.ctx, `INSERT OR REPLACE INTO processes (process_key, host, pid, start, guid, eid, sources) VALUES (?,?,?,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("store processes: %w", err)
	}
	defer st.Close()
	for _, p := range r.dirty {
		if _, err := st.ExecContext(r.ctx, p.key, p.host, p.pid, p.start, p.guid, p.eid, p.sources); err != nil {
			return fmt.Errorf("store process %s: %w", p.key, err)
		}
	}
	return nil
}

// committed clears the dirty marks once the batch is stored.
func (r *resolver) committed() {
	for _, p := range r.dirty {
		p.dirty = false
	}
	r.dirty = nil
}
