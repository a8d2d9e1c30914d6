package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/telemetry/collect"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// retentionEvery is how often the store is trimmed to its retention while
// collecting (as `quarry collect` does).
const retentionEvery = 10 * time.Minute

// collectorService runs the live process collector (telemetry/collect) into
// the shared detection pipeline (detections/pipeline): events into the
// store in batches, detection on each event as it arrives, hits of medium
// and higher rules into ioa_hits, lower rules as technique tags.
type collectorService struct {
	opts   collect.Options
	st     *eventstore.Store
	engine *detections.Engine     // nil: store only
	corr   *detections.Correlator // nil: no correlation rules
	kb     *attack.KB
	log    zerolog.Logger

	cancel context.CancelFunc
	c      *collect.Collector
	p      *pipeline.Pipeline
	wg     sync.WaitGroup
}

func (s *collectorService) Name() string { return "collector" }

// Start starts the collector; it fails where neither eBPF nor the process
// connector can run (not root, not Linux).
func (s *collectorService) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	p := pipeline.New(s.st, s.engine, pipeline.Options{KB: s.kb, Correlation: s.corr, OnError: func(err error) {
		s.log.Error().Err(err).Msg("storing events")
	}})
	c, err := collect.Start(ctx, s.opts, p.Add)
	if err != nil {
		cancel()
		_ = p.Close()
		return fmt.Errorf("live collection: %w", err)
	}
	s.cancel, s.c, s.p = cancel, c, p
	ev := s.log.Info().Str("source", string(c.Source())).Bool("detect", s.engine != nil)
	if fb := c.Fallback(); fb != nil {
		ev = ev.AnErr("ebpf", fb)
	}
	ev.Msg("collecting process events")
	s.wg.Add(1)
	go s.retention(ctx)
	return nil
}

func (s *collectorService) retention(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.st.EnforceRetention(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Msg("retention")
			}
		}
	}
}

// Stop stops the collector, waits for what it had pending and flushes it
// all, with its detections, to the store.
func (s *collectorService) Stop() error {
	s.cancel()
	werr := s.c.Wait()
	s.wg.Wait()
	perr := s.p.Close()
	ps, cs := s.p.Stats(), s.c.Stats()
	s.log.Info().Uint64("events", cs.Events).Uint64("stored", ps.Stored).Uint64("hits", ps.Hits).
		Uint64("tagged", ps.Tagged).Uint64("drops", cs.Drops).Uint64("lost", cs.Lost).Msg("collector stopped")
	if werr != nil && !errors.Is(werr, context.Canceled) {
		return fmt.Errorf("live collection: %w", werr)
	}
	if perr != nil {
		return fmt.Errorf("flush events: %w", perr)
	}
	return nil
}
