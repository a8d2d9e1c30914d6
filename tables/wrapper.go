package tables

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
)

// DefaultTimeout bounds one Generate call when no WithTimeout is given. It
// covers the whole stream, consumer included, so it is generous: a scan of
// millions of stored events must finish within it.
const DefaultTimeout = 10 * time.Minute

// ctxCheckEvery is how many rows pass between two looks at the context.
const ctxCheckEvery = 256

type wrapConfig struct {
	timeout time.Duration
	logger  zerolog.Logger
}

// WrapOption configures Wrap.
type WrapOption func(*wrapConfig)

// WithTimeout bounds each Generate call; zero or less means DefaultTimeout.
func WithTimeout(d time.Duration) WrapOption {
	return func(c *wrapConfig) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithLogger sets where the wrapper writes its one line per failed Generate.
// The default discards it.
func WithLogger(l zerolog.Logger) WrapOption {
	return func(c *wrapConfig) { c.logger = l }
}

// ErrTimeout is wrapped in the error of a Generate call that ran out of time.
var ErrTimeout = errors.New("table generate timed out")

// Wrap returns t with a Generate that every table shares: it bounds the call
// with a timeout, turns a panic into an error, stops the stream when the
// context ends even if the table does not check it, and logs one line when
// the call fails. Every table in a Registry is wrapped.
func Wrap(t Table, opts ...WrapOption) Table {
	cfg := wrapConfig{timeout: DefaultTimeout, logger: zerolog.Nop()}
	for _, o := range opts {
		o(&cfg)
	}
	inner := t.Generate
	name := t.Name
	t.Generate = func(ctx context.Context, q QueryContext, emit EmitFunc) (err error) {
		start := time.Now()
		ctx, cancel := context.WithTimeoutCause(ctx, cfg.timeout,
			fmt.Errorf("table %s: %w after %s", name, ErrTimeout, cfg.timeout))
		defer cancel()
		rows := 0
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("table %s: panic in generate: %v", name, r)
				cfg.logger.Error().Str("table", name).Str("stack", string(debug.Stack())).
					Msgf("table generate panicked: %v", r)
				return
			}
			if err != nil {
				cfg.logger.Warn().Err(err).Str("table", name).Int("rows", rows).
					Dur("elapsed", time.Since(start)).Msg("table generate failed")
			}
		}()
		stopped := false
		err = inner(ctx, q, func(r Row) bool {
			if stopped {
				return false
			}
			rows++
			if rows%ctxCheckEvery == 0 && ctx.Err() != nil {
				stopped = true
				return false
			}
			if !emit(r) {
				stopped = true
				return false
			}
			return true
		})
		if ctxErr := ctx.Err(); ctxErr != nil && (err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			if cause := context.Cause(ctx); errors.Is(cause, ErrTimeout) {
				return cause
			}
			return fmt.Errorf("table %s: %w", name, ctxErr)
		}
		if err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		return nil
	}
	return t
}
