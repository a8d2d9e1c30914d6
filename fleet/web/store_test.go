package web_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
	"github.com/quarry-sec/quarry/internal/pgtest"
	"github.com/quarry-sec/quarry/telemetry"
)

// TestWebQueries checks the UI's store queries on SQLite and PostgreSQL.
func TestWebQueries(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			var st store.Store
			var err error
			if backend == "sqlite" {
				st, err = sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "fleet.db"))
			} else {
				st, err = pgstore.Open(ctx, pgtest.FreshSchema(t))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			wq, ok := st.(store.WebQueries)
			if !ok {
				t.Fatalf("%T does not implement store.WebQueries", st)
			}
			now := time.Now().Truncate(time.Millisecond)
			var ids []string
			for i, seen := range []time.Duration{time.Second, 30 * time.Second, time.Hour} {
				h := &store.Host{NodeKey: fmt.Sprint("k", i), HostIdentifier: fmt.Sprint("h", i), Hostname: fmt.Sprint("name", i),
					EnrolledAt: now.Add(-48 * time.Hour), LastSeen: now.Add(-seen)}
				if err := st.EnrollHost(ctx, h); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, h.ID)
			}
			total, online, err := wq.CountHosts(ctx, now.Add(-time.Minute))
			if err != nil || total != 3 || online != 2 {
				t.Fatalf("CountHosts: %d total, %d online, %v; want 3, 2", total, online, err)
			}
			h, err := wq.HostByID(ctx, ids[1])
			if err != nil || h.HostIdentifier != "h1" || !h.LastSeen.Equal(now.Add(-30*time.Second)) {
				t.Fatalf("HostByID: %+v, %v", h, err)
			}
			if _, err := wq.HostByID(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("HostByID of an unknown host: %v", err)
			}
			var ds []store.Detection
			for i, sev := range []string{"high", "high", "critical", "medium"} {
				ds = append(ds, store.Detection{Hit: telemetry.Hit{HitID: fmt.Sprint("hit", i), Time: now.Add(-time.Duration(i) * time.Hour),
					RuleTitle: "rule", TechniqueID: "T1059.004", Tactic: "execution", Severity: sev, EID: int64(10 + i),
					PID: int64(100 + i), Cmdline: "sh -c id"}})
			}
			if err := st.AppendLogs(ctx, ids[0], &store.LogBatch{Detections: ds}); err != nil {
				t.Fatal(err)
			}
			sev, err := wq.CountBySeverity(ctx, store.DetectionFilter{Since: now.Add(-150 * time.Minute)})
			if err != nil || sev["high"] != 2 || sev["critical"] != 1 || sev["medium"] != 0 {
				t.Fatalf("CountBySeverity: %v, %v", sev, err)
			}
			list, _, err := st.Detections(ctx, store.DetectionFilter{Limit: 10})
			if err != nil || len(list) != 4 {
				t.Fatalf("Detections: %d, %v", len(list), err)
			}
			d, err := wq.DetectionByID(ctx, list[1].ID)
			if err != nil || d.HitID != "hit1" || d.HostIdentifier != "h0" || d.Hostname != "name0" || d.PID != 101 || !d.Time.Equal(ds[1].Time) {
				t.Fatalf("DetectionByID: %+v, %v", d, err)
			}
			if _, err := wq.DetectionByID(ctx, -1); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("DetectionByID of an unknown detection: %v", err)
			}
			for i, targets := range []store.Targets{{All: true}, {Hosts: []string{"h1"}}, {Platform: "linux"}} {
				hu := &store.Hunt{ID: fmt.Sprint("hunt", i), SQL: fmt.Sprint("SELECT ", i), Targets: targets,
					Created: now.Add(time.Duration(i) * time.Second), Deadline: now.Add(time.Hour)}
				if err := st.CreateHunt(ctx, hu, ids[:1]); err != nil {
					t.Fatal(err)
				}
			}
			hunts, err := wq.RecentHunts(ctx, 2)
			if err != nil || len(hunts) != 2 || hunts[0].ID != "hunt2" || hunts[0].Targets.Platform != "linux" ||
				hunts[1].Targets.Hosts[0] != "h1" || !hunts[1].Created.Equal(now.Add(time.Second)) {
				t.Fatalf("RecentHunts: %+v, %v", hunts, err)
			}
		})
	}
}
