package web_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/fleet/agent"
	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
	"github.com/quarry-sec/quarry/fleet/web"
	"github.com/quarry-sec/quarry/tables/catalog"
	"github.com/quarry-sec/quarry/tables/ioa"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

var (
	kbOnce sync.Once
	kb     *attack.KB
	kbErr  error
	rules  []*detections.Rule
)

func knowledge(t testing.TB) (*attack.KB, []*detections.Rule) {
	t.Helper()
	kbOnce.Do(func() {
		kb, kbErr = attack.Load("")
		if kbErr != nil {
			return
		}
		var res *detections.LoadResult
		res, kbErr = ruleset.Load(ruleset.Config{Builtin: true, KB: kb})
		if kbErr == nil {
			rules = res.Rules
		}
	})
	if kbErr != nil {
		t.Fatal(kbErr)
	}
	return kb, rules
}

// fleet is a fleet server with the web UI over SQLite, as cmd/quarry
// composes them.
type fleet struct {
	st     store.Store
	srv    *httptest.Server
	token  string
	secret string
}

func newFleet(t testing.TB) *fleet {
	t.Helper()
	_, rules := knowledge(t)
	return newFleetWithRules(t, rules)
}

// newFleetWithRules is newFleet with the UI's rules given (the coverage
// layer's).
func newFleetWithRules(t testing.TB, rules []*detections.Rule) *fleet {
	t.Helper()
	kb, _ := knowledge(t)
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	token, err := server.CreateToken(ctx, st, "test")
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{st: st, token: token, secret: "test-secret"}
	srv, err := server.New(server.Config{Store: st, KB: kb, EnrollSecret: f.secret, Version: "test",
		FilePacks: map[string]server.Pack{web.ProcessPackName: web.ProcessPack()}, DistributedInterval: time.Second,
		OnError: func(r *http.Request, err error) { t.Logf("fleet server: %s: %v", r.URL.Path, err) }})
	if err != nil {
		t.Fatal(err)
	}
	ui, err := web.New(web.Config{Store: st, KB: kb, Rules: rules, API: srv.Handler(),
		OnError: func(r *http.Request, err error) { t.Errorf("web UI: %s: %v", r.URL.Path, err) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", srv.Handler())
	mux.Handle("/", ui)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// recording is a recorded dataset replayed as one host.
type recording struct {
	host  string
	files []string
}

// testdataRecordings are committed to the repository: they run anywhere.
var testdataRecordings = []recording{
	{host: "workstation5", files: []string{"../../telemetry/importers/testdata/security-datasets/bitsadmin-excerpt.json"}},
	{host: "lab-linux-01", files: []string{"../../telemetry/importers/testdata/security-datasets/arp-cache.auditd.jsonl"}},
	{host: "wec-win10", files: []string{"../../telemetry/importers/testdata/sigma/wmic-terminate.json"}},
}

// sharedRecordings are ../shared/datasets recordings (richer trees); a test
// skips them with a message when they are absent.
var sharedRecordings = []recording{
	{host: "mshta-lab", files: []string{"../../../shared/datasets/sd-T1218.005-mshta-vbscript-powershell/cmd_mshta_vbscript_execute_psh_2020-10-2202580804.json"}},
	{host: "psexec-lab", files: []string{"../../../shared/datasets/sd-T1003.004-psexec-lsa-secrets/cmd_psexec_lsa_secrets_dump_2020-10-1903305471.json"}},
	{host: "lsass-lab", files: []string{"../../../shared/datasets/sd-T1003.001-comsvcs-lsass-dump/psh_lsass_memory_dump_comsvcs_2020-10-18T19500924.json"}},
	{host: "schtask-lab", files: []string{"../../../shared/datasets/sd-T1053.005-remote-schtask-create/schtask_create_2020-12-1907003032.json"}},
}

func available(rs []recording) []recording {
	var out []recording
	for _, r := range rs {
		ok := true
		for _, f := range r.files {
			if _, err := os.Stat(f); err != nil {
				ok = false
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// replay imports a recording into a fresh event store as live collection
// would (detection on, hits stored with their events), its times moved so
// that it ends a few minutes ago, and returns the store's directory.
func replay(t testing.TB, rec recording, rules []*detections.Rule, kb *attack.KB) (dir string, hits uint64) {
	t.Helper()
	dir = t.TempDir()
	st, err := eventstore.Open(eventstore.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var evs []telemetry.Event
	for _, f := range rec.files {
		r, _, err := importers.Open(f, importers.WithHost(rec.host))
		if err != nil {
			t.Fatal(err)
		}
		for {
			ev, err := r.Next() // fresh events: they are all kept
			if errors.Is(err, io.EOF) {
				break
			}
			var re *telemetry.RecordError
			if errors.As(err, &re) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		r.Close()
	}
	if len(evs) == 0 {
		t.Fatalf("%s: no events", rec.host)
	}
	last := evs[0].Time
	for _, ev := range evs {
		if ev.Time.After(last) {
			last = ev.Time
		}
	}
	shift := time.Now().Add(-5 * time.Minute).Sub(last).Truncate(time.Second)
	p := pipeline.New(st, detections.NewEngine(rules), pipeline.Options{KB: kb, OnError: func(err error) { t.Error(err) }})
	for _, ev := range evs {
		ev.Time = ev.Time.Add(shift)
		if !ev.StartTime.IsZero() {
			ev.StartTime = ev.StartTime.Add(shift)
		}
		p.Add(ev)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, p.Stats().Hits
}

// runAgent runs Quarry's agent for a replayed host against the fleet until
// ctx ends: it enrolls, runs the detection and process-context packs on
// the embedded engine and answers hunts.
func runAgent(ctx context.Context, t testing.TB, f *fleet, host, dir string, rules []*detections.Rule, kb *attack.KB) <-chan error {
	t.Helper()
	st, err := eventstore.Open(eventstore.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := catalog.New(catalog.Sources{ATTACK: kb, Events: st, Rules: ioa.StaticRules(rules), OsqueryAlias: true})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Config{FleetURL: f.srv.URL, EnrollSecret: f.secret, HostIdentifier: host,
		Platform: "linux", Version: "test", DataDir: dir, Engine: eng,
		DistributedInterval: 300 * time.Millisecond, LogInterval: 200 * time.Millisecond, ConfigInterval: time.Hour,
		OnError: func(err error) { t.Logf("agent %s: %v", host, err) }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := ag.Run(ctx)
		eng.Close()
		st.Close()
		done <- err
	}()
	return done
}

// seedAgents replays the recordings and runs an agent for each, waiting
// until every host's detections and process context have arrived. The
// agents keep running (for hunts) until the test ends.
func seedAgents(t testing.TB, f *fleet, recs []recording) {
	t.Helper()
	kb, rules := knowledge(t)
	ctx, cancel := context.WithCancel(context.Background())
	var dones []<-chan error
	t.Cleanup(func() {
		cancel()
		for _, d := range dones {
			<-d
		}
	})
	var hits uint64
	for _, rec := range recs {
		dir, n := replay(t, rec, rules, kb)
		hits += n
		dones = append(dones, runAgent(ctx, t, f, rec.host, dir, rules, kb))
	}
	if hits == 0 {
		t.Fatalf("the detection engine found no hit in the %d recordings: nothing to show", len(recs))
	}
	deadline := time.Now().Add(60 * time.Second)
	var lastN, lastPC, lastInc, stable int
	for {
		_, n, err := f.st.Detections(ctx, store.DetectionFilter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, pc, err := f.st.Results(ctx, store.ResultFilter{Query: web.ProcessQuery, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, inc, err := f.st.Incidents(ctx, store.IncidentFilter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		hosts, err := f.st.Hosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Done when every host enrolled and the counts held for a second
		// (each host's first runs are in).
		if n > 0 && pc > 0 && inc > 0 && len(hosts) == len(recs) && n == lastN && pc == lastPC && inc == lastInc {
			if stable++; stable >= 5 {
				t.Logf("seeded: %d hosts, %d detections, %d process-context rows, %d incidents", len(hosts), n, pc, inc)
				return
			}
		} else {
			stable = 0
		}
		lastN, lastPC, lastInc = n, pc, inc
		if time.Now().After(deadline) {
			t.Fatalf("agents did not report within 60 s: %d hosts, %d detections, %d process-context rows, %d incidents", len(hosts), n, pc, inc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
