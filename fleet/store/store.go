// Package store is the fleet server's storage: enrolled hosts, osquery
// result and status logs, detections (IoA hits reported by hosts), live
// hunts, analyst tokens, analyst-added query packs and the threat
// intelligence sets distributed to hosts.
//
// Store is the interface; fleet/store/sqlitestore (the default, one file under the
// data directory) and fleet/store/pgstore (several server replicas on one
// database) implement it, and fleet/store/storetest is the one test suite
// both run. Every write is one transaction: when a method returns nil, what
// it wrote is committed.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// HashNodeKey is how a node key is stored: its hex SHA-256 (keys are 256
// random bits, so a fast hash is enough). A copy of the database then
// holds no key a host could be impersonated with.
func HashNodeKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// TokenIDLength is how many hex digits of a token's hash make its ID.
const TokenIDLength = 12

// Token is an analyst API token as listed: an ID (the first TokenIDLength
// hex digits of its hash, enough to name it, useless to sign in), its
// name and when it was made.
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// ErrNotFound is returned (wrapped) when a host, hunt or pack does not exist.
var ErrNotFound = errors.New("not found")

// Store is the fleet's storage. Implementations are safe for concurrent use,
// and several processes may share one database (PostgreSQL; SQLite on one
// machine).
type Store interface {
	// EnrollHost records h under h.NodeKey. A host already enrolled with the
	// same HostIdentifier keeps its ID and gets the new node key (its old key
	// stops working); otherwise a new host is created. h.ID and
	// h.EnrolledAt are set. The key is stored hashed (HashNodeKey), never
	// in clear.
	EnrollHost(ctx context.Context, h *Host) error
	// HostByNodeKey returns the host enrolled under nodeKey (looked up by
	// its hash), or ErrNotFound. The host's NodeKey is the stored hash.
	HostByNodeKey(ctx context.Context, nodeKey string) (*Host, error)
	// Hosts returns every enrolled host, ordered by host identifier.
	Hosts(ctx context.Context) ([]Host, error)
	// TouchHost sets a host's last-seen time.
	TouchHost(ctx context.Context, hostID string, seen time.Time) error
	// TouchHosts sets several hosts' last-seen times in one transaction.
	TouchHosts(ctx context.Context, seen map[string]time.Time) error

	// AppendLogs stores one log request of a host in one transaction:
	// result rows, status lines and the detections and incidents found in
	// the results. Detections are de-duplicated on (host, hit ID,
	// technique): a repeat fills fields the first report left empty.
	// Incidents are de-duplicated on (host, incident ID) and their tree
	// nodes on (host, incident ID, process key): a report replaces the
	// stored one (an incident's hits included) unless it is older
	// (Reported) than the one stored, so an incident follows the host's
	// as it grows and a resent or late old report changes nothing.
	//
	// GoneIncidents are applied after the batch's incidents and nodes: each
	// deletes the host's incident of that ID (only that host's), its hits
	// and its tree nodes, unless the stored incident is newer than the
	// removal (LastSeen or Reported later than the GoneIncident's), so a
	// changed incident's added row that came in an earlier request than
	// its removed row survives. Detections are never deleted. A deleted
	// incident reported again is stored again (under a new ID): a later
	// report re-inserts it.
	//
	// Result rows are de-duplicated on osquery's natural key: host, Name,
	// Epoch, Counter and, for the row itself, Action, Time and a hash of
	// Columns. Rows identical in all of these within one batch are all
	// stored (a query may return the same row twice; a snapshot or a diff
	// may hold it twice): the n-th copy in a batch is a different row from
	// the (n+1)-th. A batch repeating rows an earlier batch stored — a host
	// sending a log again because the answer to the first request was
	// lost — stores none of them again. Status logs are not de-duplicated.
	//
	// Concurrent calls are group-committed by the store: the requests
	// that wait for the same commit are written together, as one
	// AppendHostLogs, and each call returns once its request is committed
	// (or with its own error). Callers need no batching of their own.
	AppendLogs(ctx context.Context, hostID string, b *LogBatch) error
	// AppendHostLogs stores the log requests of several hosts in one
	// transaction: all of them, or none.
	AppendHostLogs(ctx context.Context, logs []HostLogs) error
	// Results returns a page of stored result rows and the total matching.
	Results(ctx context.Context, f ResultFilter) ([]Result, int, error)
	// StatusLogs returns a host's status logs, newest first.
	StatusLogs(ctx context.Context, hostID string, limit int) ([]StatusLog, error)
	// Detections returns a page of detections, newest first, and the total
	// matching.
	Detections(ctx context.Context, f DetectionFilter) ([]Detection, int, error)
	// CountDetections counts the detections matching f grouped by keys,
	// largest count first.
	CountDetections(ctx context.Context, f DetectionFilter, keys ...GroupKey) ([]Count, error)

	// Incidents returns a page of incidents, highest score first (then
	// latest last seen), and the total matching.
	Incidents(ctx context.Context, f IncidentFilter) ([]Incident, int, error)
	// IncidentByID returns an incident by the fleet's ID, or ErrNotFound.
	IncidentByID(ctx context.Context, id int64) (*Incident, error)
	// IncidentHits returns an incident's hits, in hit ID order, each with
	// its host's detections of that hit.
	IncidentHits(ctx context.Context, id int64) ([]IncidentHit, error)
	// IncidentTree returns the process-tree nodes of an incident, by depth
	// then start.
	IncidentTree(ctx context.Context, id int64) ([]IncidentNode, error)

	// SandboxRuns returns a page of sandbox runs, newest start first, and
	// the total matching; their trees are left out.
	SandboxRuns(ctx context.Context, f SandboxRunFilter) ([]SandboxRun, int, error)
	// SandboxRun returns a host's run with its tree, files, network and
	// rules, or ErrNotFound.
	SandboxRun(ctx context.Context, hostID, runID string) (*SandboxRun, error)

	// CreateHunt stores a hunt and its target hosts (all pending).
	CreateHunt(ctx context.Context, h *Hunt, hostIDs []string) error
	// Hunt returns a hunt, or ErrNotFound.
	Hunt(ctx context.Context, id string) (*Hunt, error)
	// HuntHosts returns the per-host state of a hunt, by host identifier.
	HuntHosts(ctx context.Context, huntID string) ([]HuntHost, error)
	// HuntCounts counts a hunt's target hosts per stored status (pending,
	// answered, error) and sums their rows: HuntHosts' totals without
	// listing every host.
	HuntCounts(ctx context.Context, huntID string) (map[string]int, int, error)
	// HuntRows returns a page of a hunt's result rows.
	HuntRows(ctx context.Context, huntID string, limit, offset int) ([]HuntRow, error)
	// ActiveHunts counts the hunts whose deadline is after now (any host's):
	// a server answers distributed reads without asking TakeHunts while
	// there are none.
	ActiveHunts(ctx context.Context, now time.Time) (int, error)
	// TakeHunts returns the hunts a host should run now: those targeting it,
	// unanswered, before their deadline, and not handed to it since
	// resendBefore. They are marked sent at now. next is the earliest time
	// the host may have a hunt to take again, unless a hunt is created
	// meanwhile: when a hunt handed out earlier becomes due to be sent
	// again; the zero time when the host has no unanswered hunt before its
	// deadline left (only a new hunt gives it one). next may be earlier
	// than that time (at most now), never later.
	TakeHunts(ctx context.Context, hostID string, now, resendBefore time.Time) (hunts []Hunt, next time.Time, err error)
	// AnswerHunt records a host's answer (rows or error) to a hunt. It
	// reports false, storing nothing, when the host was not a target, has
	// answered already or the deadline has passed.
	AnswerHunt(ctx context.Context, huntID, hostID string, a Answer) (bool, error)

	// PutHostSchema replaces what a host reported of its tables (or the
	// error it answered the schema probe with).
	PutHostSchema(ctx context.Context, s *HostSchema) error
	// HostSchemaStatus returns when and at which version a host last
	// answered the schema probe, and its error if it failed, without the
	// tables; ErrNotFound if it never answered.
	HostSchemaStatus(ctx context.Context, hostID string) (*HostSchema, error)
	// FleetTables returns the union of the tables the enrolled hosts
	// reported, by name.
	FleetTables(ctx context.Context) ([]FleetTable, error)

	// CreateToken stores an analyst API token by its hash.
	CreateToken(ctx context.Context, name, hash string) error
	// TokenExists reports whether a token with the hash exists.
	TokenExists(ctx context.Context, hash string) (bool, error)
	// Tokens lists the analyst tokens (never their hashes), oldest first.
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken deletes the token of an ID (Token.ID), or returns
	// ErrNotFound.
	RevokeToken(ctx context.Context, id string) error

	// PutPack creates or replaces an analyst pack (osquery pack JSON).
	PutPack(ctx context.Context, name string, pack []byte) error
	// DeletePack removes an analyst pack, or returns ErrNotFound.
	DeletePack(ctx context.Context, name string) error
	// Packs returns the analyst packs by name.
	Packs(ctx context.Context) (map[string][]byte, error)

	// PutIntelSet creates or replaces the threat intelligence set of
	// set.Source (its Data as uploaded); set.Updated is set.
	PutIntelSet(ctx context.Context, set *IntelSet) error
	// DeleteIntelSet removes a source's set, or returns ErrNotFound.
	DeleteIntelSet(ctx context.Context, source string) error
	// IntelSets lists the sets by source, their Data left out.
	IntelSets(ctx context.Context) ([]IntelSet, error)
	// IntelSetData returns one set with its Data, or ErrNotFound.
	IntelSetData(ctx context.Context, source string) (*IntelSet, error)

	// Close releases the store.
	Close() error
}
