// Package interrupt is how Quarry's commands stop: on SIGINT (Ctrl-C) and
// SIGTERM (a service manager, kill, a container runtime) alike, by ending a
// context, so that every long-running command shuts down the same way —
// flushing what it holds — whichever of the two it gets.
package interrupt

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Signals are the signals that end a Context.
var Signals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// Context returns a copy of parent that is cancelled on the first SIGINT
// or SIGTERM; stop releases the signals (a second one then has its
// default effect, ending the process).
func Context(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(parent, Signals...)
}
