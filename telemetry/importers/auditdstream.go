package importers

import (
	"fmt"

	"github.com/quarry-sec/quarry/telemetry"
)

// Audit record types (linux/audit.h) that the record→event code reads, by
// the number a netlink message carries as its type.
var auditTypeNames = map[uint16]string{
	1300: "SYSCALL", 1302: "PATH", 1306: "SOCKADDR", 1307: "CWD", 1309: "EXECVE",
	1320: "EOE", 1327: "PROCTITLE", 1330: "KERN_MODULE",
}

// AuditTypeEOE is the type of the record that ends a syscall event.
const AuditTypeEOE = 1320

// maxOpenAuditEvents bounds the events an AuditStream holds open at once:
// the kernel interleaves the records of events that end together on
// several CPUs, so more than one may be open.
const maxOpenAuditEvents = 256

// AuditStream turns raw audit records, as the kernel's audit netlink socket
// sends them (one record a message, the records of an event sharing a
// serial and ending with an EOE record, events of several CPUs
// interleaved), into the Events the auditd log importer makes of the same
// records: the same grouping by serial and the same record→event code
// (execs; network_connection, file_event, file_delete, file_rename,
// process_access and driver_load activity). Not safe for concurrent use.
type AuditStream struct {
	cfg  config
	open map[int64]*streamGroup
	free []*streamGroup
}

type streamGroup struct {
	g      execGroup
	broken bool
}

// NewAuditStream returns an empty stream; WithHost names the host of every
// event (a live record names none).
func NewAuditStream(opts ...Option) *AuditStream {
	s := &AuditStream{open: make(map[int64]*streamGroup)}
	for _, o := range opts {
		o(&s.cfg)
	}
	return s
}

// Record folds one record: typ is its netlink message type (1300 SYSCALL,
// 1302 PATH…) and msg its text, "audit(SECONDS.MILLIS:SERIAL): FIELDS".
// emit is called with the event of each group the record completes (its
// EOE) or pushes out (more than 256 events open: the oldest is finished
// with what it has). A record that cannot be read returns an error and
// spoils its group, which then yields no event.
func (s *AuditStream) Record(typ uint16, msg string, emit func(telemetry.Event)) error {
	t, serial, body, err := parseAuditMsg(msg)
	if err != nil {
		return fmt.Errorf("audit record type %d: %w", typ, err)
	}
	sg, ok := s.open[serial]
	if typ == AuditTypeEOE {
		if ok {
			s.finish(serial, sg, emit)
		}
		return nil
	}
	name, known := auditTypeNames[typ]
	if !known {
		// Not a record of an event Quarry reads (USER_*, CONFIG_CHANGE…):
		// no group, which would wait for an EOE such records never get.
		return nil
	}
	if !ok {
		if len(s.open) >= maxOpenAuditEvents {
			s.evictOldest(emit)
		}
		if n := len(s.free); n > 0 {
			sg, s.free = s.free[n-1], s.free[:n-1]
		} else {
			sg = &streamGroup{}
		}
		sg.g.reset(serial, t, "", 0)
		sg.broken = false
		s.open[serial] = sg
	}
	if err := sg.g.add(name, body); err != nil {
		sg.broken = true
		return fmt.Errorf("audit record %s of event %d: %w", name, serial, err)
	}
	return nil
}

// Flush finishes every open group, oldest first, as if its EOE had come.
func (s *AuditStream) Flush(emit func(telemetry.Event)) {
	for len(s.open) > 0 {
		s.evictOldest(emit)
	}
}

// Open returns how many events are waiting for their EOE record.
func (s *AuditStream) Open() int { return len(s.open) }

func (s *AuditStream) evictOldest(emit func(telemetry.Event)) {
	first := true
	var oldest int64
	for serial := range s.open {
		if first || serial < oldest {
			oldest, first = serial, false
		}
	}
	if !first {
		s.finish(oldest, s.open[oldest], emit)
	}
}

func (s *AuditStream) finish(serial int64, sg *streamGroup, emit func(telemetry.Event)) {
	delete(s.open, serial)
	if !sg.broken {
		if e, ok := sg.g.finish(&s.cfg); ok {
			emit(e)
		}
	}
	s.free = append(s.free, sg)
}
