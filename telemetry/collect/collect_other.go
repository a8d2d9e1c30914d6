//go:build !linux

package collect

import (
	"context"
	"fmt"
	"runtime"

	"github.com/quarry-sec/quarry/telemetry"
)

// Collector is a running source; none runs on this system.
type Collector struct{}

// Start fails with ErrUnsupported: live collection is Linux-only.
func Start(ctx context.Context, opts Options, fn func(telemetry.Event)) (*Collector, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w (this is %s)", ErrUnsupported, runtime.GOOS)
}

// Source returns the source in use: none here.
func (c *Collector) Source() telemetry.Source { return "" }

// Fallback returns nil: no source runs here.
func (c *Collector) Fallback() error { return nil }

// AuditError returns nil: no audit fallback runs here.
func (c *Collector) AuditError() error { return nil }

// Wait returns ErrUnsupported.
func (c *Collector) Wait() error { return ErrUnsupported }

// Stats returns zero counts.
func (c *Collector) Stats() Stats { return Stats{} }
