package server

import (
	"context"
	"sync"
)

// byteBudget bounds the bytes of request bodies held at once: a reader
// acquires what it buffers and releases it when its request is done.
type byteBudget struct {
	limit int64
	mu    sync.Mutex
	used  int64
	peak  int64         // most used at once (tests)
	freed chan struct{} // closed, and replaced, when bytes are released
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, freed: make(chan struct{})}
}

// acquire takes n bytes, waiting for others to release them until ctx
// ends. A request for more than the whole budget waits until nothing
// else is held, so it cannot starve.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used+n <= b.limit || (b.used == 0 && n > b.limit) {
			b.used += n
			b.peak = max(b.peak, b.used)
			b.mu.Unlock()
			return nil
		}
		ch := b.freed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release returns n bytes.
func (b *byteBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
