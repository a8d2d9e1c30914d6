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
	// WatchedNodeCacheTTL is the node cache's TTL while the server
	// watches its store (Server.Watch): replaced keys are then dropped
	// when the store reports them, and the TTL only bounds memory.
	WatchedNodeCacheTTL = 10 * time.Minute
)

// nodeCache remembers which host a node key belongs to: every osquery
// request authenticates by node key, and a host makes several requests a
// few milliseconds apart (distributed read, write, log), so most lookups
// need no query of the store.
//
// Entries live for a TTL. Without a watch on the store (SQLite, or the
// PostgreSQL watch's connection lost) it is short, and bounds how long a
// node key the store no longer knows keeps working on this server: when a
// host enrolls again (through another replica on the same PostgreSQL
// database, or after its data was lost) and gets a new key, its old key
// stops working on every replica within the TTL; on the replica that took
// the enrollment, at once. While the server watches the store (see
// Server.Watch), entries live long (a host's every check-in is then a hit):
// the replaced key's notification drops the host's entries under any other
// key (invalidate), and a lookup that raced with it cannot put back what
// it read before (see put). Unknown keys are not cached: a host told
// node_invalid enrolls, and its new key must work at once. The cache holds
// at most size entries: when full, it drops the expired ones, then
// arbitrary ones.
type nodeCache struct {
	ttl  time.Duration // the default (short) TTL; <= 0: no cache
	size int

	mu     sync.Mutex
	byKey  map[string]nodeEntry
	byHost map[string]string // host ID → its cached key
	// replaced holds, per host whose key was replaced recently (within
	// replacedKeep), the hash of its newest key: a lookup that read the
	// older key's row before the replacement must not cache it after.
	replaced map[string]replacedKey
	// replacedOrder lists the replacements in the order they came (one
	// host may appear more than once: its map entry tells the current), so
	// that the old ones leave in O(1) each rather than by a scan.
	replacedOrder []replacedHost
}

type replacedHost struct {
	id string
	at time.Time
}

type nodeEntry struct {
	host *store.Host
	put  time.Time
	ttl  time.Duration
}

type replacedKey struct {
	hash string
	at   time.Time
}

// replacedKeep is how long a replaced key is remembered; a lookup that took
// longer is not cached.
const replacedKeep = 10 * time.Minute

// newNodeCache returns a cache; ttl <= 0 disables it.
func newNodeCache(ttl time.Duration, size int) *nodeCache {
	return &nodeCache{ttl: ttl, size: max(size, 1), byKey: map[string]nodeEntry{}, byHost: map[string]string{},
		replaced: map[string]replacedKey{}}
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
	if !now.Before(e.put.Add(e.ttl)) || now.Before(e.put) { // expired, or the clock went back
		c.removeLocked(key, e.host.ID)
		return nil, false
	}
	return e.host, true
}

// put caches h under key from now for the default TTL.
func (c *nodeCache) put(key string, h *store.Host, now time.Time) {
	c.putFor(key, h, now, c.ttl)
}

// putFor caches h under key from now for ttl, unless h's key (h.NodeKey,
// the stored hash) was replaced since it was read (invalidate).
func (c *nodeCache) putFor(key string, h *store.Host, now time.Time, ttl time.Duration) {
	if c.ttl <= 0 || ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.replaced[h.ID]; ok && r.hash != h.NodeKey {
		return
	}
	if old, ok := c.byHost[h.ID]; ok && old != key {
		delete(c.byKey, old) // the host's previous key
	}
	if _, ok := c.byKey[key]; !ok && len(c.byKey) >= c.size {
		c.evictLocked(now)
	}
	c.byKey[key] = nodeEntry{host: h, put: now, ttl: ttl}
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

// invalidate drops a host's entry unless it is under the key of hash (the
// host's new key, HashNodeKey), and keeps any lookup begun before from
// caching an older key of the host.
func (c *nodeCache) invalidate(hostID, hash string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if key, ok := c.byHost[hostID]; ok && c.byKey[key].host.NodeKey != hash {
		c.removeLocked(key, hostID)
	}
	// The oldest leave once past replacedKeep, or when size are kept.
	for len(c.replacedOrder) > 0 {
		old := c.replacedOrder[0]
		if now.Sub(old.at) <= replacedKeep && len(c.replaced) < c.size {
			break
		}
		if r, ok := c.replaced[old.id]; ok && r.at.Equal(old.at) {
			delete(c.replaced, old.id)
		}
		c.replacedOrder = c.replacedOrder[1:]
	}
	c.replaced[hostID] = replacedKey{hash: hash, at: now}
	c.replacedOrder = append(c.replacedOrder, replacedHost{id: hostID, at: now})
}

// clear drops every entry.
func (c *nodeCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byKey = map[string]nodeEntry{}
	c.byHost = map[string]string{}
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
		if !now.Before(e.put.Add(e.ttl)) {
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
