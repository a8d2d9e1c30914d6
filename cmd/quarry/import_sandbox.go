package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/host"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// sandboxImport gathers, while a sandbox report's events are stored, what
// its run needs: the stored process starts (where the report's signatures
// become hits) and what detection found on its events.
type sandboxImport struct {
	starts     map[string]*telemetry.Event // by ProcessGUID, as stored
	eids       map[string]int64
	techniques []string
	tactics    []string
	rules      telemetry.SandboxRules // Quarry's rules that matched the run's events
	hits       map[string]int         // Quarry's rules' hits by severity
	hitIDs     map[string]bool
}

func newSandboxImport() *sandboxImport {
	return &sandboxImport{starts: map[string]*telemetry.Event{}, eids: map[string]int64{}, hits: map[string]int{}, hitIDs: map[string]bool{}}
}

// note records a stored batch: its process starts and its hit rows.
func (s *sandboxImport) note(batch []telemetry.Event, res eventstore.BatchResult, recs []telemetry.Hit) {
	for i := range batch {
		e := &batch[i]
		if e.Kind != telemetry.KindExec || e.ProcessGUID == "" || i >= len(res.Stored) {
			continue
		}
		s.starts[e.ProcessGUID] = e.Clone()
		s.eids[e.ProcessGUID] = res.Stored[i].EID
	}
	for _, r := range recs {
		if r.TechniqueID != "" {
			s.techniques = append(s.techniques, r.TechniqueID)
		}
		if r.Tactic != "" {
			s.tactics = append(s.tactics, strings.Split(r.Tactic, ",")...)
		}
		s.rules.Add(&r)
		if !s.hitIDs[r.HitID] {
			s.hitIDs[r.HitID] = true
			s.hits[r.Severity]++
		}
	}
}

// sandboxRunLine is what the import summary says of one run.
type sandboxRunLine struct {
	file string
	run  telemetry.SandboxRun
	sigs int // signature hits stored (rows and tags)
	left int // signatures without a process to put them on
}

// finishSandbox stores a sandbox report's signatures as hits of the run's
// processes and the run itself (sandbox_runs), once its events are in.
func (a *app) finishSandbox(ctx context.Context, st *eventstore.Store, path string, r telemetry.Reader, s *sandboxImport, sum *importSummary) error {
	rep := importers.SandboxReportOf(r)
	if rep == nil {
		return fmt.Errorf("%s: the sandbox report was not read to its end; its run is not stored", path)
	}
	kb, err := a.knowledgeBase()
	if err != nil {
		return err
	}
	hits, missing := pipeline.SignatureHits(rep, s.starts, kb)
	eids := make([]int64, len(hits))
	for i, h := range hits {
		eids[i] = s.eids[h.Event.ProcessGUID]
	}
	recs, err := pipeline.StoreReported(ctx, st, hits, eids, kb)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if sum.det != nil {
		sum.det.count(recs)
	}
	for _, r := range recs {
		if r.Tactic != "" {
			s.tactics = append(s.tactics, strings.Split(r.Tactic, ",")...)
		}
	}
	techs, tactics := pipeline.RunAttack(kb, append(append([]string(nil), rep.Run.Techniques...), s.techniques...), s.tactics)
	run := rep.Finish(techs, tactics, s.rules.List(), s.hits)
	run.Host = host.Identifier()
	if err := st.PutSandboxRun(ctx, run); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	sum.runs = append(sum.runs, sandboxRunLine{file: path, run: run, sigs: len(hits), left: missing})
	return nil
}

// printRuns says which sandbox runs an import stored.
func printRuns(w io.Writer, runs []sandboxRunLine) {
	for _, l := range runs {
		r := l.run
		techs := strings.Join(r.Techniques, ", ")
		if techs == "" {
			techs = "none"
		}
		fmt.Fprintf(w, "sandbox run %s (%s, sample %s): verdict %s, score %.1f; %d signature hit(s)", r.ID, r.Origin, orNone(r.Sample), r.Verdict, r.Score, l.sigs)
		if l.left > 0 {
			fmt.Fprintf(w, " (%d on no process)", l.left)
		}
		fmt.Fprintf(w, "\n  techniques: %s\n", techs)
		if len(r.Tactics) > 0 {
			fmt.Fprintf(w, "  tactics: %s\n", strings.Join(r.Tactics, ", "))
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "unnamed"
	}
	return s
}
