//go:build linux

package sandbox

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/collect"
)

// Detonate runs sample in the sandbox with Quarry's eBPF collectors
// filtered to the run's cgroup, stores its events (Source sandbox, RunID)
// through the detection pipeline's detector, as quarry import does, and
// returns the stored run and its report.
func Detonate(ctx context.Context, sample string, o DetonateOptions) (telemetry.SandboxRun, *Report, error) {
	if o.Store == nil || o.KB == nil {
		return telemetry.SandboxRun{}, nil, errors.New("detonate: no store or ATT&CK knowledge base")
	}
	if o.Settle <= 0 {
		o.Settle = 500 * time.Millisecond
	}
	run := telemetry.SandboxRun{ID: uuid.NewString(), Origin: OriginDetonate, Host: o.Host, Sample: filepath.Base(sample)}
	if err := hashSample(sample, &run); err != nil {
		return run, nil, fmt.Errorf("detonate: %w", err)
	}
	r, err := Prepare(run.ID, sample, o.Options)
	if err != nil {
		return run, nil, err
	}
	defer r.Close()

	var (
		mu     sync.Mutex
		events []telemetry.Event
	)
	cgid := r.CgroupID()
	cctx, stop := context.WithCancel(context.Background())
	defer stop()
	c, err := collect.Start(cctx, collect.Options{Source: collect.SourceEBPF, Host: o.Host}, func(ev telemetry.Event) {
		if ev.CgroupID != cgid {
			return
		}
		ev.Source, ev.RunID = telemetry.SourceSandbox, run.ID
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	if err != nil {
		return run, nil, fmt.Errorf("detonate: the eBPF collectors are needed to watch the sample: %w", err)
	}
	res, runErr := r.Start(ctx)
	run.Started, run.Duration = res.Started, res.Duration
	time.Sleep(o.Settle)
	stop()
	werr := c.Wait()
	notCaptured := c.Stats().NotCaptured
	if runErr != nil {
		return run, nil, runErr
	}
	if werr != nil && !errors.Is(werr, context.Canceled) {
		return run, nil, fmt.Errorf("detonate: collectors: %w", werr)
	}
	mu.Lock()
	evs := events
	mu.Unlock()
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })

	// The same detector quarry import uses: events stored with their
	// technique tags, medium and higher hits as ioa_hits, correlation and
	// incidents as for any other events.
	if len(evs) > 0 {
		if len(o.Rules) > 0 {
			d, _ := pipeline.NewDetector(o.Rules, o.KB)
			if _, _, err := d.StoreBatch(ctx, o.Store, evs); err != nil {
				return run, nil, fmt.Errorf("detonate: store events: %w", err)
			}
			if _, err := d.Finish(ctx, o.Store); err != nil {
				return run, nil, fmt.Errorf("detonate: %w", err)
			}
			if _, err := incidents.RefreshPending(ctx, o.Store, incidents.Options{}); err != nil {
				return run, nil, fmt.Errorf("detonate: incidents: %w", err)
			}
		} else if _, err := o.Store.Append(ctx, evs); err != nil {
			return run, nil, fmt.Errorf("detonate: store events: %w", err)
		}
	}
	rep, err := BuildReport(ctx, o.Store, o.KB, run, res)
	if err != nil {
		return run, nil, err
	}
	rep.Sandbox.NotCaptured = notCaptured
	run.Verdict, run.Score, run.Techniques, run.Tactics = rep.Verdict, rep.Score, rep.techniqueIDs(), rep.tacticIDs()
	if run.Report, err = json.Marshal(rep); err != nil {
		return run, nil, fmt.Errorf("detonate: report: %w", err)
	}
	if err := o.Store.PutSandboxRun(ctx, run); err != nil {
		return run, nil, err
	}
	return run, rep, nil
}

// hashSample fills the sample's size and hashes.
func hashSample(p string, run *telemetry.SandboxRun) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h256, h1, h5 := sha256.New(), sha1.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(h256, h1, h5), f)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	run.Size = n
	run.SHA256, run.SHA1, run.MD5 = hex.EncodeToString(h256.Sum(nil)), hex.EncodeToString(h1.Sum(nil)), hex.EncodeToString(h5.Sum(nil))
	return nil
}

// Supported returns nil: this is Linux. Whether bubblewrap, cgroups and
// the eBPF collectors are there is found when a run starts.
func Supported() error { return nil }
