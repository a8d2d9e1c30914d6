package incidents_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// Incidents on two hosts whose hits share a user are related; a system
// account relates nothing, and neither does a hit beyond the window.
func TestRelatedAcrossHosts(t *testing.T) {
	st := openStore(t)
	on := func(host, user string, ev telemetry.Event) telemetry.Event {
		ev.Host, ev.Username = host, user
		return ev
	}
	storeEvents(t, st, []telemetry.Event{
		on("web1", "mallory", execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh")),
		on("web1", "mallory", execAt(time.Second, 200, 100, "/usr/bin/sh", decodeCmd)),
		on("web2", "mallory", execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/other.sh")),
		on("web2", "mallory", execAt(10*time.Minute, 300, 100, "/usr/bin/crontab", "/usr/bin/crontab /tmp/x")),
		on("web3", "root", execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/x.sh")),
		on("web3", "root", execAt(2*time.Minute, 300, 100, "/usr/bin/crontab", "/usr/bin/crontab /tmp/x")),
		on("web4", "mallory", execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/late.sh")),
		on("web4", "mallory", execAt(2*time.Hour, 300, 1, "/usr/bin/crontab", "/usr/bin/crontab /tmp/z")),
	})
	byHost := map[string]string{}
	for _, in := range all(t, st) {
		byHost[in.Host] = in.IncidentID
	}
	if len(byHost) != 4 {
		t.Fatalf("want one incident per host: %v", byHost)
	}
	links, err := incidents.Related(context.Background(), st, byHost["web1"], incidents.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []incidents.Link{{IncidentID: byHost["web1"], RelatedID: byHost["web2"], Host: "web2", Share: eventstore.ShareUser, Value: "mallory"}}
	if !reflect.DeepEqual(links, want) {
		t.Fatalf("related to web1's incident:\n got %+v\nwant %+v", links, want)
	}
	// web3 runs as root (relates nothing) the command line web2 ran.
	links, _ = incidents.Related(context.Background(), st, byHost["web3"], incidents.Options{})
	want = []incidents.Link{{IncidentID: byHost["web3"], RelatedID: byHost["web2"], Host: "web2", Share: eventstore.ShareCmdline, Value: "/usr/bin/crontab /tmp/x"}}
	if !reflect.DeepEqual(links, want) {
		t.Errorf("related to web3's incident:\n got %+v\nwant %+v", links, want)
	}
	links, _ = incidents.Related(context.Background(), st, byHost["web4"], incidents.Options{})
	if len(links) != 0 {
		t.Errorf("web4's hit is two hours later: %+v", links)
	}
	links, _ = incidents.Related(context.Background(), st, byHost["web4"], incidents.Options{Window: 3 * time.Hour})
	if len(links) != 2 {
		t.Errorf("within 3 h, web4 relates to web1 and web2 by user: %+v", links)
	}
}
