//go:build linux

package sandbox

import (
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func query(t testing.TB, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET})
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every A query is answered with the sink address; other types get no
// records; garbage gets no answer.
func TestAnswerDNS(t *testing.T) {
	reply, name, err := answerDNS(query(t, "c2.evil.example.", dnsmessage.TypeA))
	if err != nil || name != "c2.evil.example" {
		t.Fatal(name, err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(reply); err != nil {
		t.Fatal(err)
	}
	if m.ID != 7 || !m.Response || len(m.Answers) != 1 {
		t.Fatalf("%+v", m)
	}
	if a, ok := m.Answers[0].Body.(*dnsmessage.AResource); !ok || netip.AddrFrom4(a.A) != SinkAddr {
		t.Fatalf("%+v", m.Answers[0])
	}
	reply, _, err = answerDNS(query(t, "c2.evil.example.", dnsmessage.TypeAAAA))
	if err != nil || m.Unpack(reply) != nil || len(m.Answers) != 0 {
		t.Fatalf("AAAA: %v %+v", err, m)
	}
	if _, _, err := answerDNS([]byte{1, 2, 3}); err == nil {
		t.Fatal("garbage answered")
	}
}

// The DNS server reads what the sample sends: it never panics, and what it
// answers parses.
func FuzzAnswerDNS(f *testing.F) {
	f.Add(query(f, "a.example.", dnsmessage.TypeA))
	f.Add(query(f, "b.example.", dnsmessage.TypeTXT))
	f.Add([]byte{0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, q []byte) {
		reply, _, err := answerDNS(q)
		if err != nil {
			return
		}
		var m dnsmessage.Message
		if err := m.Unpack(reply); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
	})
}

// TestSinkRecordsBounded: a sample that queries or connects in a loop is
// recorded up to MaxSinkRecords; the rest is counted.
func TestSinkRecordsBounded(t *testing.T) {
	s := &sink{}
	for range MaxSinkRecords + 25 {
		s.add(SinkRecord{})
	}
	recs, dropped := s.close()
	if len(recs) != MaxSinkRecords || dropped != 25 {
		t.Fatalf("kept %d, dropped %d", len(recs), dropped)
	}
}
