//go:build !linux

package sandbox

import (
	"context"
	"fmt"
	"runtime"

	"github.com/quarry-sec/quarry/telemetry"
)

// Supported reports why a sample cannot run here: ErrUnsupported, as this
// is not Linux.
func Supported() error { return fmt.Errorf("%w (this is %s)", ErrUnsupported, runtime.GOOS) }

// Detonate fails with ErrUnsupported: the sandbox is Linux-only.
func Detonate(ctx context.Context, sample string, o DetonateOptions) (telemetry.SandboxRun, *Report, error) {
	return telemetry.SandboxRun{}, nil, Supported()
}
