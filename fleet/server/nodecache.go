package server

import (
	"sync"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// Defaults of the node key cache (Config.NodeCacheTTL, NodeCacheSize).
const (
	DefaultNodeCacheTTL  = 5 * time.Second
	DefaultNodeCacheSize = 32768
)

// nodeCache remembers, for a short time, which host a node key belongs to:
// every osquery request authenticates by node key, and a host makes several
// requests a few milliseconds apart (distributed read, write, log), so most
// lookups need no query of the store.
//
// Entries live for a TTL. That bounds how long a node key the store no
// longer knows keeps working on this server: when a host enrolls again
// (through another replica on the same PostgreSQL database, or after its
// data was lost) and gets a new key, its old key stops working on every
// replica within the TTL; on the replica that took the enrollment, at once.
// Unknown keys are not cached: a host told node_invalid enrolls, and its
// new key must work at once. The cache holds at most size entries: when
// full, it drops the expired ones, then arbitrary ones.
type nodeCache struct {
	ttl  time.Duration
	size int

	mu     sync.Mutex
	byKey  map[string]nodeEntry
	byHost map[string]string // host ID → its cached key
}

type nodeEntry struct {
	host    *store.Host
	expires time.Time
}

// newNodeCache returns a cache; ttl <= 0 disables it.
func newNodeCache(ttl time.Duration, size int) *nodeCache {
	return &nodeCache{ttl: ttl, size: max(size, 1), byKey: map[string]nodeEntry{}, byHost: map[string]string{}}
}

// get returns the host cached for key, if its entry has not expired at now.
// The host is shared: callers must not modify it.
func (c *nodeCache) get(key string, now time.Time) (*store.Host, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	if !now.Before(e.expires) || now.Before(e.expires.Add(-c.ttl)) { // expired, or the clock went back
		c.removeLocked(key, e.host.ID)
		return nil, false
	}
	return e.host, true
}

// put caches h under key from now.
func (c *nodeCache) put(key string, h *store.Host, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byHost[h.ID]; ok && old != key {
		delete(c.byKey, old) // the host's previous key
	}
	if _, ok := c.byKey[key]; !ok && len(c.byKey) >= c.size {
		c.evictLocked(now)
	}
	c.byKey[key] = nodeEntry{host: h, expires: now.Add(c.ttl)}
	c.byHost[h.ID] = key
}

// forgetHost drops the entry of a host (it enrolled again here: its old
// key must stop working at once).
func (c *nodeCache) forgetHost(hostID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if key, ok := c.byHost[hostID]; ok {
		c.removeLocked(key, hostID)
	}
}

// len is the number of entries (tests).
func (c *nodeCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}

func (c *nodeCache) removeLocked(key, hostID string) {
	delete(c.byKey, key)
	if c.byHost[hostID] == key {
		delete(c.byHost, hostID)
	}
}

// evictLocked makes room: expired entries first, then arbitrary ones (Go's
// map order) down to seven eighths of the size, so a full cache does not
// sweep on every insert.
func (c *nodeCache) evictLocked(now time.Time) {
	for k, e := range c.byKey {
		if !now.Before(e.expires) {
			c.removeLocked(k, e.host.ID)
		}
	}
	target := c.size - c.size/8
	for k, e := range c.byKey {
		if len(c.byKey) < target {
			break
		}
		c.removeLocked(k, e.host.ID)
	}
}
