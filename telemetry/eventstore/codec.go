package eventstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// StoredEvent is an event read back from the store.
type StoredEvent struct {
	telemetry.Event
	EID int64
	// Techniques are the technique IDs informational detections tagged the
	// event with, comma-separated.
	Techniques string
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// encodeArgs is the args column of e: JSON, or nil.
func encodeArgs(e *telemetry.Event) any {
	if len(e.Args) == 0 {
		return nil
	}
	b, _ := json.Marshal(e.Args)
	return string(b)
}

// encodeFields is the fields column of e: JSON, or nil.
func encodeFields(e *telemetry.Event) any {
	if e.Fields.Len() == 0 {
		return nil
	}
	b, _ := json.Marshal(e.Fields)
	return string(b)
}

// bindEvent fills args with e's insertColumns, but for args (12) and fields
// (34), which the caller encodes once (encodeArgs, encodeFields).
func bindEvent(args []any, e *telemetry.Event, tags string) {
	partial := 0
	if e.Partial {
		partial = 1
	}
	args[0] = unixNano(e.Time)
	args[1] = int64(e.Kind)
	args[2] = string(e.Source)
	args[3] = e.Host
	args[4] = e.Category
	args[5] = int64(e.EventID)
	args[6] = e.Channel
	args[7] = e.RecordID
	args[8] = e.PID
	args[9] = e.PPID
	args[10] = e.Path
	args[11] = e.Cmdline
	args[12] = nil
	args[13] = e.Cwd
	args[14] = e.Comm
	args[15] = e.UID
	args[16] = e.EUID
	args[17] = e.GID
	args[18] = e.EGID
	args[19] = e.AUID
	args[20] = e.Username
	args[21] = e.LogonID
	args[22] = e.ParentPath
	args[23] = e.ParentCmdline
	args[24] = unixNano(e.StartTime)
	args[25] = e.ExitCode
	args[26] = int64(e.ExitSignal)
	args[27] = int64(e.CgroupID)
	args[28] = e.ProcessGUID
	args[29] = e.ParentGUID
	args[30] = e.IntegrityLevel
	args[31] = e.OriginalFileName
	args[32] = e.Hashes
	args[33] = partial
	args[34] = nil
	args[35] = tags
	args[36] = e.ProcessKey
	args[37] = boolInt(e.Truncated)
	args[38] = e.RunID
}

// scanner reads rows of selectColumns into a StoredEvent.
type scanner struct {
	timeNS, kind, eventID, startNS, exitSignal, cgroup, partial, truncated int64
	source                                                                 string
	args, fields                                                           sql.NullString
	dest                                                                   []any
}

func newScanner(ev *StoredEvent) *scanner {
	sc := &scanner{}
	e := &ev.Event
	sc.dest = []any{
		&ev.EID, &sc.timeNS, &sc.kind, &sc.source, &e.Host, &e.Category, &sc.eventID, &e.Channel, &e.RecordID,
		&e.PID, &e.PPID, &e.Path, &e.Cmdline, &sc.args, &e.Cwd, &e.Comm, &e.UID, &e.EUID, &e.GID, &e.EGID,
		&e.AUID, &e.Username, &e.LogonID, &e.ParentPath, &e.ParentCmdline, &sc.startNS, &e.ExitCode,
		&sc.exitSignal, &sc.cgroup, &e.ProcessGUID, &e.ParentGUID, &e.IntegrityLevel, &e.OriginalFileName,
		&e.Hashes, &sc.partial, &sc.fields, &ev.Techniques, &e.ProcessKey, &sc.truncated, &e.RunID,
	}
	return sc
}

// finish converts what the scan left in sc into ev.
func (sc *scanner) finish(ev *StoredEvent) error {
	e := &ev.Event
	e.Time = fromUnixNano(sc.timeNS)
	e.Kind = telemetry.Kind(sc.kind)
	e.Source = telemetry.Source(sc.source)
	e.EventID = int(sc.eventID)
	e.StartTime = fromUnixNano(sc.startNS)
	e.ExitSignal = int(sc.exitSignal)
	e.CgroupID = uint64(sc.cgroup)
	e.Partial = sc.partial != 0
	e.Truncated = sc.truncated != 0
	e.Args = nil
	if sc.args.Valid {
		if err := json.Unmarshal([]byte(sc.args.String), &e.Args); err != nil {
			return fmt.Errorf("event %d: args: %w", ev.EID, err)
		}
	}
	e.Fields = telemetry.Fields{}
	if sc.fields.Valid {
		if err := json.Unmarshal([]byte(sc.fields.String), &e.Fields); err != nil {
			return fmt.Errorf("event %d: fields: %w", ev.EID, err)
		}
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
