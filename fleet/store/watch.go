package store

import "context"

// ChangeKind is what a Change reports.
type ChangeKind int

// Kinds of Change.
const (
	// ChangeHostKey: a host enrolled again and has a new node key
	// (Change.HostID, Change.NodeKeyHash): its earlier keys no longer work.
	ChangeHostKey ChangeKind = iota + 1
	// ChangeHunt: a hunt was created; hosts may have a hunt to take.
	ChangeHunt
	// ChangesLive: the watch is (again) listening; changes made before
	// may have been missed, so every cache must be dropped, and from now
	// on every change is reported.
	ChangesLive
	// ChangesLost: the watch stopped listening (its connection was lost,
	// or the watch ended): changes may be missed until the next
	// ChangesLive, so nothing cached may be trusted for long.
	ChangesLost
)

// Change is a change to the store, made by any of the servers sharing it,
// that servers keeping caches must hear of.
type Change struct {
	Kind ChangeKind
	// HostID and NodeKeyHash (HashNodeKey of the new key) of ChangeHostKey.
	HostID, NodeKeyHash string
}

// Watcher is implemented by stores that several servers share (PostgreSQL,
// through LISTEN/NOTIFY): it reports the changes that invalidate what a
// server caches, committed by any server, this one included.
type Watcher interface {
	// Watch calls fn with each change, one at a time, from its own
	// goroutine, until ctx ends; it then returns, after a final
	// ChangesLost. It reconnects by itself after a failure, calling fn
	// with ChangesLost when listening stops and ChangesLive when it
	// resumes.
	Watch(ctx context.Context, fn func(Change))
}
