package eventstore

// schemaVersion is kept in PRAGMA user_version; a store written by a newer
// Quarry is refused rather than misread.
const schemaVersion = 6

// schema creates the events table and its indexes. time is Unix nanoseconds
// (UTC); eid is the row id, increasing with insertion.
const schema = `
CREATE TABLE IF NOT EXISTS events (
	eid INTEGER PRIMARY KEY,
	time INTEGER NOT NULL,
	kind INTEGER NOT NULL,
	source TEXT NOT NULL,
	host TEXT NOT NULL,
	category TEXT NOT NULL DEFAULT '',
	event_id INTEGER NOT NULL DEFAULT 0,
	channel TEXT NOT NULL DEFAULT '',
	record_id INTEGER NOT NULL DEFAULT 0,
	pid INTEGER NOT NULL,
	ppid INTEGER NOT NULL,
	path TEXT NOT NULL DEFAULT '',
	cmdline TEXT NOT NULL DEFAULT '',
	args TEXT,
	cwd TEXT NOT NULL DEFAULT '',
	comm TEXT NOT NULL DEFAULT '',
	uid INTEGER NOT NULL,
	euid INTEGER NOT NULL,
	gid INTEGER NOT NULL,
	egid INTEGER NOT NULL,
	auid INTEGER NOT NULL,
	username TEXT NOT NULL DEFAULT '',
	logon_id TEXT NOT NULL DEFAULT '',
	parent_path TEXT NOT NULL DEFAULT '',
	parent_cmdline TEXT NOT NULL DEFAULT '',
	start_time INTEGER NOT NULL DEFAULT 0,
	exit_code INTEGER NOT NULL,
	exit_signal INTEGER NOT NULL DEFAULT 0,
	cgroup_id INTEGER NOT NULL DEFAULT 0,
	process_guid TEXT NOT NULL DEFAULT '',
	parent_guid TEXT NOT NULL DEFAULT '',
	integrity_level TEXT NOT NULL DEFAULT '',
	original_file_name TEXT NOT NULL DEFAULT '',
	hashes TEXT NOT NULL DEFAULT '',
	partial INTEGER NOT NULL DEFAULT 0,
	fields TEXT,
	techniques TEXT NOT NULL DEFAULT '',
	process_key TEXT NOT NULL DEFAULT '',
	truncated INTEGER NOT NULL DEFAULT 0,
	rkey BLOB,
	run_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_pid ON events(pid, time);
CREATE INDEX IF NOT EXISTS events_host ON events(host, time);
CREATE INDEX IF NOT EXISTS events_process_key ON events(process_key);
CREATE INDEX IF NOT EXISTS events_run_id ON events(run_id) WHERE run_id != '';
-- events_type serves the activity tables (socket_events, file_events…),
-- which read the events of a few event IDs or categories each.
CREATE INDEX IF NOT EXISTS events_type ON events(event_id, category, time);
-- batches records when each run of eids was stored: retention is by when
-- events were stored, not when they happened, so an imported recording of
-- last year is kept as long as live events are.
CREATE TABLE IF NOT EXISTS batches (
	last_eid INTEGER PRIMARY KEY,
	stored_at INTEGER NOT NULL
);
`

// identitySchema (version 3) holds what makes a store idempotent and gives
// each real process one identity:
//   - events.rkey is the stored record's identity (see recordKey); a record
//     merged into another event's row (a Security 4688 into its Sysmon EID 1
//     row) keeps its identity in merged_records, pointing at that row.
//   - processes has one row per process_key: its host, pid, start (Unix ns;
//     for a process seen only through its other events, the first of them),
//     normalized GUID, the eid of its merged start row (0 when no start is
//     stored) and the sources that recorded its start.
//   - incident_pending lists where hits landed whose incidents are not yet
//     regrouped: written in the hits' transaction, cleared once regrouped, so
//     a crash in between is caught up later.
const identitySchema = `
CREATE UNIQUE INDEX IF NOT EXISTS events_rkey ON events(rkey) WHERE rkey IS NOT NULL;
CREATE TABLE IF NOT EXISTS merged_records (
	rkey BLOB PRIMARY KEY,
	eid INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS merged_records_eid ON merged_records(eid);
CREATE TABLE IF NOT EXISTS processes (
	process_key TEXT PRIMARY KEY,
	host TEXT NOT NULL,
	pid INTEGER NOT NULL,
	start INTEGER NOT NULL,
	guid TEXT NOT NULL DEFAULT '',
	eid INTEGER NOT NULL DEFAULT 0,
	sources TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS processes_pid ON processes(host, pid, start);
CREATE INDEX IF NOT EXISTS processes_guid ON processes(host, guid) WHERE guid != '';
CREATE TABLE IF NOT EXISTS incident_pending (
	id INTEGER PRIMARY KEY,
	host TEXT NOT NULL,
	lo INTEGER NOT NULL,
	hi INTEGER NOT NULL
);
`

// columns lists the events columns an insert fills, in order.
const insertColumns = `time, kind, source, host, category, event_id, channel, record_id,
	pid, ppid, path, cmdline, args, cwd, comm, uid, euid, gid, egid, auid, username, logon_id,
	parent_path, parent_cmdline, start_time, exit_code, exit_signal, cgroup_id, process_guid,
	parent_guid, integrity_level, original_file_name, hashes, partial, fields, techniques, process_key, truncated, run_id`

const insertParams = 39

// selectColumns is what a read returns, in StoredEvent order.
const selectColumns = `eid, ` + insertColumns

// insertKeyedColumns is what a batch insert fills: insertColumns, the
// record's identity and its eid (assigned by the batch).
const insertKeyedColumns = insertColumns + `, rkey, eid`
