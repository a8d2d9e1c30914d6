package sqldb

import (
	"context"
	"database/sql"

	"github.com/quarry-sec/quarry/fleet/store"
)

// migrations are the schema's steps, oldest first; {{ID}} stands for the
// dialect's auto-numbered primary key. Times are UNIX milliseconds.
// Append new steps; never edit a released one.
var migrations = []string{`
CREATE TABLE hosts (
  id TEXT PRIMARY KEY,
  node_key TEXT NOT NULL UNIQUE,
  host_identifier TEXT NOT NULL UNIQUE,
  hostname TEXT NOT NULL DEFAULT '',
  platform TEXT NOT NULL DEFAULT '',
  family TEXT NOT NULL DEFAULT '',
  os_version TEXT NOT NULL DEFAULT '',
  osquery_version TEXT NOT NULL DEFAULT '',
  quarry_version TEXT NOT NULL DEFAULT '',
  enrolled_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL
);
CREATE TABLE results (
  id {{ID}},
  host_id TEXT NOT NULL,
  name TEXT NOT NULL,
  query TEXT NOT NULL,
  action TEXT NOT NULL,
  time BIGINT NOT NULL,
  columns_json TEXT NOT NULL,
  decorations TEXT NOT NULL DEFAULT ''
);
CREATE INDEX results_query ON results (query, time);
CREATE INDEX results_name ON results (name, time);
CREATE TABLE status_logs (
  id {{ID}},
  host_id TEXT NOT NULL,
  time BIGINT NOT NULL,
  severity INTEGER NOT NULL,
  filename TEXT NOT NULL,
  line INTEGER NOT NULL,
  message TEXT NOT NULL,
  version TEXT NOT NULL
);
CREATE INDEX status_logs_host ON status_logs (host_id, time);
CREATE TABLE detections (
  id {{ID}},
  host_id TEXT NOT NULL,
  hit_id TEXT NOT NULL,
  time BIGINT NOT NULL,
  query TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  rule_title TEXT NOT NULL,
  rule_author TEXT NOT NULL,
  rule_source TEXT NOT NULL,
  technique_id TEXT NOT NULL,
  technique_name TEXT NOT NULL,
  tactic TEXT NOT NULL,
  severity TEXT NOT NULL,
  confidence TEXT NOT NULL,
  description TEXT NOT NULL,
  recommendations TEXT NOT NULL,
  eid BIGINT NOT NULL,
  pid BIGINT NOT NULL,
  path TEXT NOT NULL,
  cmdline TEXT NOT NULL,
  parent_path TEXT NOT NULL,
  username TEXT NOT NULL,
  source TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  UNIQUE (host_id, hit_id, technique_id)
);
CREATE INDEX detections_time ON detections (time);
CREATE INDEX detections_technique ON detections (technique_id, time);
CREATE TABLE hunts (
  id TEXT PRIMARY KEY,
  query_sql TEXT NOT NULL,
  targets TEXT NOT NULL,
  created BIGINT NOT NULL,
  deadline BIGINT NOT NULL
);
CREATE TABLE hunt_hosts (
  hunt_id TEXT NOT NULL,
  host_id TEXT NOT NULL,
  status TEXT NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  row_count INTEGER NOT NULL DEFAULT 0,
  deadline BIGINT NOT NULL,
  sent_at BIGINT NOT NULL DEFAULT 0,
  answered_at BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (hunt_id, host_id)
);
CREATE INDEX hunt_hosts_host ON hunt_hosts (host_id, status);
CREATE TABLE hunt_rows (
  id {{ID}},
  hunt_id TEXT NOT NULL,
  host_id TEXT NOT NULL,
  columns_json TEXT NOT NULL
);
CREATE INDEX hunt_rows_hunt ON hunt_rows (hunt_id, id);
CREATE TABLE tokens (
  hash TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created BIGINT NOT NULL
);
CREATE TABLE packs (
  name TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  updated BIGINT NOT NULL
);
`,
	// 2: result rows get osquery's natural key (host, name, epoch, counter
	// and row_key: action, time and a hash of the row, plus its copy
	// number in its batch), unique, so a log sent again is stored once.
	// Rows stored before have no such key: each gets 'legacy:' and its id,
	// which no computed key (hex) can equal, so the unique index builds
	// over duplicates a retry may have left and nothing stored is dropped.
	`
ALTER TABLE results ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN counter BIGINT NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN row_key TEXT NOT NULL DEFAULT '';
UPDATE results SET row_key = 'legacy:' || CAST(id AS TEXT);
CREATE UNIQUE INDEX results_natural_key ON results (host_id, name, epoch, counter, row_key);
`,
	// 3: incidents the hosts report (the detection pack's incident
	// queries): one row per (host, incident_id), replaced by a report that
	// is not older (reported, the log's time); its hits, replaced with it;
	// and the process-tree nodes of its graph, one per (host, incident_id,
	// process_key), replaced the same way.
	`
CREATE TABLE incidents (
  id {{ID}},
  host_id TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  first_seen BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  score DOUBLE PRECISION NOT NULL,
  severity TEXT NOT NULL,
  tactics TEXT NOT NULL,
  techniques TEXT NOT NULL,
  hit_count BIGINT NOT NULL,
  root_pid BIGINT NOT NULL,
  root_path TEXT NOT NULL,
  summary TEXT NOT NULL,
  reported BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  UNIQUE (host_id, incident_id)
);
CREATE INDEX incidents_score ON incidents (score, last_seen);
CREATE INDEX incidents_last_seen ON incidents (last_seen);
CREATE INDEX incidents_incident_id ON incidents (incident_id);
CREATE TABLE incident_hits (
  incident_ref BIGINT NOT NULL,
  hit_id TEXT NOT NULL,
  PRIMARY KEY (incident_ref, hit_id)
);
CREATE TABLE incident_nodes (
  host_id TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  process_key TEXT NOT NULL,
  parent_key TEXT NOT NULL,
  depth INTEGER NOT NULL,
  relation TEXT NOT NULL,
  pid BIGINT NOT NULL,
  ppid BIGINT NOT NULL,
  path TEXT NOT NULL,
  cmdline TEXT NOT NULL,
  username TEXT NOT NULL,
  start_time BIGINT NOT NULL,
  exit_time BIGINT NOT NULL,
  exited INTEGER NOT NULL,
  eid BIGINT NOT NULL,
  hit_count BIGINT NOT NULL,
  techniques TEXT NOT NULL,
  tactics TEXT NOT NULL,
  severity TEXT NOT NULL,
  reported BIGINT NOT NULL,
  PRIMARY KEY (host_id, incident_id, process_key)
);
`,
	// 4: the tables each host reported to the schema probe. A table's
	// definition (name and columns) is stored once in table_defs, keyed by
	// a hash of both; a host's set of definitions once in schema_sets,
	// keyed by a hash of its members, however many hosts report it (hosts
	// of one osquery version share one); host_schemas says which set each
	// host has ('' for none), when and at which version it answered, or
	// the error it answered with. Listing the fleet's tables then reads
	// one row per host and one per table of each distinct set.
	`
CREATE TABLE host_schemas (
  host_id TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  reported_at BIGINT NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  set_hash TEXT NOT NULL DEFAULT ''
);
CREATE TABLE table_defs (
  def_hash TEXT PRIMARY KEY,
  table_name TEXT NOT NULL,
  columns_json TEXT NOT NULL
);
CREATE TABLE schema_sets (
  set_hash TEXT NOT NULL,
  def_hash TEXT NOT NULL,
  PRIMARY KEY (set_hash, def_hash)
);
`,
	// 5: when the host's Quarry found each detection and incident
	// (detected_at), beside when its events happened: an imported
	// recording's detections are old by event time and new by detection.
	// Rows stored before get the time the fleet received them.
	`
ALTER TABLE detections ADD COLUMN detected_at BIGINT NOT NULL DEFAULT 0;
UPDATE detections SET detected_at = received_at;
CREATE INDEX detections_detected ON detections (detected_at);
ALTER TABLE incidents ADD COLUMN detected_at BIGINT NOT NULL DEFAULT 0;
UPDATE incidents SET detected_at = reported;
CREATE INDEX incidents_detected ON incidents (detected_at);
`,
	// 6: node keys are stored hashed (store.HashNodeKey), never in clear;
	// the keys stored before are hashed in place by hashNodeKeys (Go: SQLite
	// has no SHA-256), so enrolled hosts keep working.
	"",
	// 7: what each process of an incident tree did (process_tree's
	// activity: JSON by kind), '' for none and for nodes stored before.
	`
ALTER TABLE incident_nodes ADD COLUMN activity TEXT NOT NULL DEFAULT '';
`,
	// 8: threat intelligence sets, one per source, as uploaded, which
	// agents fetch (by version) and load into their intel database.
	`
CREATE TABLE intel_sets (
  source TEXT PRIMARY KEY,
  format TEXT NOT NULL,
  confidence INTEGER NOT NULL,
  ttl_seconds BIGINT NOT NULL,
  indicators INTEGER NOT NULL,
  version TEXT NOT NULL,
  updated BIGINT NOT NULL,
  data TEXT NOT NULL
);
`,
	// 9: sandbox runs the hosts reported (quarry_sandbox_runs), one per
	// host and run: the run's fields, and its tree (store.IncidentNode),
	// files, network destinations and rules as JSON. Times are UNIX ms.
	`
CREATE TABLE sandbox_runs (
  host_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  origin TEXT NOT NULL,
  host TEXT NOT NULL,
  sample TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  sha1 TEXT NOT NULL,
  md5 TEXT NOT NULL,
  size BIGINT NOT NULL,
  started BIGINT NOT NULL,
  duration_ms BIGINT NOT NULL,
  verdict TEXT NOT NULL,
  score DOUBLE PRECISION NOT NULL,
  techniques TEXT NOT NULL,
  tactics TEXT NOT NULL,
  tree TEXT NOT NULL,
  files TEXT NOT NULL,
  network TEXT NOT NULL,
  rules TEXT NOT NULL,
  reported BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  PRIMARY KEY (host_id, run_id)
);
CREATE INDEX sandbox_runs_started ON sandbox_runs (started);
`,
}

// goMigrations are steps in Go, run after the SQL of the same version.
var goMigrations = map[int]func(ctx context.Context, tx *sql.Tx, db *DB) error{
	6: hashNodeKeys,
}

// hashNodeKeys replaces every stored node key by its hash.
func hashNodeKeys(ctx context.Context, tx *sql.Tx, db *DB) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, node_key FROM hosts`)
	if err != nil {
		return err
	}
	keys := map[string]string{}
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			rows.Close()
			return err
		}
		keys[id] = key
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for id, key := range keys {
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE hosts SET node_key = ? WHERE id = ?`), store.HashNodeKey(key), id); err != nil {
			return err
		}
	}
	return nil
}
