package main

import (
	"context"

	"github.com/rs/zerolog"
)

// service is background work the extension runs beside serving tables: the
// live collector, the detection engine. Services start only once osqueryd
// has accepted the extension, so nothing they do at start-up can make the
// registration miss osquery's extension timeout; they stop, in reverse
// order, when the extension stops.
type service interface {
	// Name names the service in logs.
	Name() string
	// Start starts the service's goroutines and returns promptly; ctx ends
	// when the extension stops. An error means the service does not run
	// (say, the host does not support it); the others still do.
	Start(ctx context.Context) error
	// Stop stops the service and flushes what it holds.
	Stop() error
}

// services are the background services of one extension run.
type services struct {
	all     []service
	started []service
	log     zerolog.Logger
}

// start starts every service, logging (not failing on) those that cannot
// run here.
func (s *services) start(ctx context.Context) {
	for _, svc := range s.all {
		if err := svc.Start(ctx); err != nil {
			s.log.Warn().Err(err).Str("service", svc.Name()).Msg("service not started")
			continue
		}
		s.log.Debug().Str("service", svc.Name()).Msg("service started")
		s.started = append(s.started, svc)
	}
}

// stop stops the started services, last started first.
func (s *services) stop() {
	for i := len(s.started) - 1; i >= 0; i-- {
		svc := s.started[i]
		if err := svc.Stop(); err != nil {
			s.log.Warn().Err(err).Str("service", svc.Name()).Msg("service stopped with an error")
		}
	}
	s.started = nil
}
