package sqlengine

import (
	"context"
	"errors"
	"sync"
)

// connState is what a connection's virtual tables know of the statement the
// connection runs: its context. Engine.Query binds it before running a
// statement on the connection, which it holds alone until the rows close.
type connState struct {
	mu  sync.Mutex
	ctx context.Context
}

// context returns the bound statement's context, or Background when none is
// bound (a statement run outside Engine.Query).
func (s *connState) context() context.Context {
	if s == nil {
		return context.Background()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// connStates maps the engine's connections, by the id their virtual tables
// were created with and by driver connection, to their state.
type connStates struct {
	mu     sync.Mutex
	next   uint64
	byID   map[uint64]*connState
	byConn map[any]uint64
}

func (c *connStates) add(conn any) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID, c.byConn = map[uint64]*connState{}, map[any]uint64{}
	}
	c.next++
	c.byID[c.next] = &connState{}
	c.byConn[conn] = c.next
	return c.next
}

func (c *connStates) remove(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byID, id)
	for conn, i := range c.byConn {
		if i == id {
			delete(c.byConn, conn)
		}
	}
}

func (c *connStates) get(id uint64) *connState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

// bind makes ctx the context of the statement conn runs next.
func (c *connStates) bind(conn any, ctx context.Context) error {
	c.mu.Lock()
	id, ok := c.byConn[conn]
	st := c.byID[id]
	c.mu.Unlock()
	if !ok || st == nil {
		return errors.New("connection not opened by this engine")
	}
	st.mu.Lock()
	st.ctx = ctx
	st.mu.Unlock()
	return nil
}
