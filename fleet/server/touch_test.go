package server

import (
	"context"
	"testing"
	"time"
)

// An enrollment writes the host's last-seen time: the config request that
// follows it writes none (10,000 hosts enrolling must not mean 10,000 more
// row updates), the first request due after touchEvery does.
func TestEnrollmentCountsAsSeen(t *testing.T) {
	st := openSQLite(t)
	f := newFixture(t, st)
	enrolled := f.clock.Now()
	key := f.enroll("host-a", "ubuntu")
	lastSeen := func() time.Time {
		t.Helper()
		h, err := st.HostByNodeKey(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		return h.LastSeen
	}
	f.clock.Add(time.Second)
	if code, out := f.osquery("config", map[string]any{"node_key": key}); code != 200 {
		t.Fatalf("config: %d %v", code, out)
	}
	if got := lastSeen(); !got.Equal(enrolled) {
		t.Errorf("last seen %v after the config request 1 s after enrolling, want the enrollment's %v (no write)", got, enrolled)
	}
	f.clock.Add(f.srv.touchEvery())
	due := f.clock.Now()
	if code, out := f.osquery("config", map[string]any{"node_key": key}); code != 200 {
		t.Fatalf("config: %d %v", code, out)
	}
	if got := lastSeen(); !got.Equal(due) {
		t.Errorf("last seen %v, want %v (written once due)", got, due)
	}
}
