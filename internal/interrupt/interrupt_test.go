//go:build unix

package interrupt

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// Each signal ends the context (waited for, not slept on: a failing test
// ends at the test binary's timeout).
func TestContextEndsOnEachSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		ctx, stop := Context(context.Background())
		if err := syscall.Kill(syscall.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
			t.Fatalf("%v did not end the context", sig)
		}
		stop()
	}
}

func TestContextFollowsParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx, stop := Context(parent)
	defer stop()
	if ctx.Err() != nil {
		t.Fatal("cancelled before the parent")
	}
	cancel()
	<-ctx.Done()
}
