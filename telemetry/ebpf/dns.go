//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/quarry-sec/quarry/telemetry"
)

// dnsMessage is what Quarry keeps of a DNS message: its first question and,
// for a response, the status and the answers.
type dnsMessage struct {
	id       uint16
	response bool
	rcode    dnsmessage.RCode
	name     string // the first question's name, without the final dot
	qtype    dnsmessage.Type
	// results are the answers as "TYPE: value", in order.
	results []string
	// partial is set when the message ended (or was cut) before its
	// answers did; results holds those read.
	partial bool
}

// parseDNS parses a DNS message, possibly cut short at the capture bound: a
// message whose header and first question are whole parses, with what
// answers fit.
func parseDNS(b []byte) (dnsMessage, error) {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil {
		return dnsMessage{}, fmt.Errorf("dns header: %w", err)
	}
	m := dnsMessage{id: h.ID, response: h.Response, rcode: h.RCode}
	q, err := p.Question()
	if err != nil {
		return dnsMessage{}, fmt.Errorf("dns question: %w", err)
	}
	m.name = strings.TrimSuffix(q.Name.String(), ".")
	if m.name == "" {
		m.name = "."
	}
	m.qtype = q.Type
	if !m.response {
		return m, nil
	}
	if err := p.SkipAllQuestions(); err != nil {
		m.partial = true
		return m, nil
	}
	for {
		ah, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return m, nil
		}
		if err != nil {
			m.partial = true
			return m, nil
		}
		var v string
		switch ah.Type {
		case dnsmessage.TypeA:
			r, err := p.AResource()
			if err == nil {
				v = netip.AddrFrom4(r.A).String()
			}
		case dnsmessage.TypeAAAA:
			r, err := p.AAAAResource()
			if err == nil {
				v = netip.AddrFrom16(r.AAAA).String()
			}
		case dnsmessage.TypeCNAME:
			r, err := p.CNAMEResource()
			if err == nil {
				v = r.CNAME.String()
			}
		case dnsmessage.TypePTR:
			r, err := p.PTRResource()
			if err == nil {
				v = r.PTR.String()
			}
		case dnsmessage.TypeMX:
			r, err := p.MXResource()
			if err == nil {
				v = r.MX.String()
			}
		case dnsmessage.TypeNS:
			r, err := p.NSResource()
			if err == nil {
				v = r.NS.String()
			}
		case dnsmessage.TypeTXT:
			r, err := p.TXTResource()
			if err == nil {
				v = strings.Join(r.TXT, " ")
			}
		default:
			err = p.SkipAnswer()
			v = "?"
			if err != nil {
				v = ""
			}
		}
		if v == "" {
			m.partial = true
			return m, nil
		}
		m.results = append(m.results, typeName(ah.Type)+": "+v)
	}
}

// typeName is a record type's mnemonic (A, AAAA…), or its number.
func typeName(t dnsmessage.Type) string {
	s := t.String()
	if n, ok := strings.CutPrefix(s, "Type"); ok {
		return n
	}
	return s
}

// rcodeName is a response code's mnemonic (NOERROR, NXDOMAIN…).
func rcodeName(r dnsmessage.RCode) string {
	switch r {
	case dnsmessage.RCodeSuccess:
		return "NOERROR"
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return strconv.Itoa(int(r))
}

// Query statuses beyond response codes.
const (
	// StatusTimeout is the QueryStatus of a query no answer was seen for
	// within the pairing window (or before the collector stopped).
	StatusTimeout = "TIMEOUT"
	// StatusUnparsed is the QueryStatus of a DNS message that could not be
	// parsed; QueryName is empty and the event keeps what was captured.
	StatusUnparsed = "UNPARSED"
)

// dnsTracker pairs each process's queries with their answers into one
// dns_query event per lookup, as Sysmon does.
type dnsTracker struct {
	pending map[dnsKey]telemetry.Event
	window  time.Duration
	max     int
}

type dnsKey struct {
	pid   int64
	id    uint16
	name  string
	qtype dnsmessage.Type
}

func newDNSTracker(window time.Duration) *dnsTracker {
	return &dnsTracker{pending: map[dnsKey]telemetry.Event{}, window: window, max: 4096}
}

// add takes one captured DNS message and returns the events it completes.
func (t *dnsTracker) add(a activity) []telemetry.Event {
	if a.dnsLengthOnly {
		return nil
	}
	m, err := parseDNS(a.dns)
	if err != nil {
		ev := a.ev
		ev.Fields.Set("QueryStatus", StatusUnparsed)
		return []telemetry.Event{ev}
	}
	key := dnsKey{pid: a.ev.PID, id: m.id, name: m.name, qtype: m.qtype}
	if a.dnsSent && !m.response {
		if _, dup := t.pending[key]; dup {
			return nil // a retry
		}
		ev := a.ev
		ev.Fields.Set("QueryName", m.name)
		ev.Fields.Set("QueryType", typeName(m.qtype))
		if len(t.pending) >= t.max {
			// No room to wait for the answer: report the query now.
			ev.Fields.Set("QueryStatus", StatusTimeout)
			return []telemetry.Event{ev}
		}
		t.pending[key] = ev
		return nil
	}
	ev, ok := t.pending[key]
	if ok {
		delete(t.pending, key)
	} else {
		// An answer without its query (sent before the collector started,
		// or a response sent rather than received): reported alone, with
		// the sides as seen by the query.
		ev = a.ev
		ev.Fields.Set("QueryName", m.name)
		ev.Fields.Set("QueryType", typeName(m.qtype))
	}
	ev.Fields.Set("QueryStatus", rcodeName(m.rcode))
	ev.Fields.Set("QueryResults", strings.Join(m.results, ";"))
	if m.partial || a.ev.Truncated {
		ev.Truncated = true
	}
	return []telemetry.Event{ev}
}

// expire returns the queries older than the window (all of them when all
// is set) as unanswered.
func (t *dnsTracker) expire(now time.Time, all bool) []telemetry.Event {
	var out []telemetry.Event
	for k, ev := range t.pending {
		if all || now.Sub(ev.Time) > t.window {
			ev.Fields.Set("QueryStatus", StatusTimeout)
			out = append(out, ev)
			delete(t.pending, k)
		}
	}
	return out
}
