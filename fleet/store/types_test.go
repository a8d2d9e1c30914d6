package store

import (
	"slices"
	"testing"
)

// TestMatchHosts resolves names by ID and host identifier (any case),
// each host once, unknown names apart; hostnames only through
// MatchHostnames.
func TestMatchHosts(t *testing.T) {
	hosts := []Host{
		{ID: "h1", HostIdentifier: "WS-01", Hostname: "ws-01.corp"},
		{ID: "h2", HostIdentifier: "srv-db", Hostname: "db"},
	}
	ids, unknown := MatchHosts(hosts, []string{"ws-01", "h1", "SRV-db", "nowhere", "WS-01.CORP", "db"})
	if !slices.Equal(ids, []string{"h1", "h2"}) || !slices.Equal(unknown, []string{"nowhere", "WS-01.CORP", "db"}) {
		t.Errorf("MatchHosts = %v, %v; want [h1 h2], [nowhere WS-01.CORP db]", ids, unknown)
	}
	ids, unknown = MatchHostnames(hosts, []string{"WS-01.CORP", "db", "srv-db"})
	if !slices.Equal(ids, []string{"h1", "h2"}) || !slices.Equal(unknown, []string{"srv-db"}) {
		t.Errorf("MatchHostnames = %v, %v; want [h1 h2], [srv-db]", ids, unknown)
	}
	if ids, unknown := MatchHosts(hosts, nil); ids != nil || unknown != nil {
		t.Errorf("no names: %v, %v", ids, unknown)
	}
}
