package store

import (
	"slices"
	"testing"
)

// TestMatchHosts resolves names by ID, host identifier and hostname (any
// case), each host once, unknown names apart.
func TestMatchHosts(t *testing.T) {
	hosts := []Host{
		{ID: "h1", HostIdentifier: "WS-01", Hostname: "ws-01.corp"},
		{ID: "h2", HostIdentifier: "srv-db", Hostname: "db"},
	}
	ids, unknown := MatchHosts(hosts, []string{"ws-01", "h1", "DB", "nowhere", "WS-01.CORP"})
	if !slices.Equal(ids, []string{"h1", "h2"}) || !slices.Equal(unknown, []string{"nowhere"}) {
		t.Errorf("MatchHosts = %v, %v; want [h1 h2], [nowhere]", ids, unknown)
	}
	if ids, unknown := MatchHosts(hosts, nil); ids != nil || unknown != nil {
		t.Errorf("no names: %v, %v", ids, unknown)
	}
}
