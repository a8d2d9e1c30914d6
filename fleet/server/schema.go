package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/catalog"
)

// SchemaProbeID is the distributed query ID of the schema probe: the
// server adds it to a host's distributed read when it does not know the
// host's tables yet. Hunt IDs are UUIDs, so it names no hunt.
const SchemaProbeID = "quarry_schema"

// SchemaProbeSQL lists a host's tables with their CREATE statements.
// osquery attaches each of its tables as a temporary virtual table whose
// statement carries the columns (CREATE VIRTUAL TABLE temp.processes USING
// processes(`pid` BIGINT, …)), and its SQL authorizer lets a distributed
// query read sqlite_temp_master. Quarry's agent attaches its tables in the
// main schema, without columns: it answers no rows, and its tables are
// Quarry's catalog, which the schema browser lists anyway.
const SchemaProbeSQL = "SELECT name, sql FROM sqlite_temp_master WHERE type = 'table';"

// DefaultSchemaRetry is how long a host that answered the schema probe
// with an error, or did not answer it, waits before it is probed again.
const DefaultSchemaRetry = time.Hour

// Bounds of a schema probe's answer.
const (
	maxSchemaTables    = 5000
	maxTableDefinition = 64 << 10
)

// schemaState is what this server knows of a host's schema report.
type schemaState struct {
	version string    // the host's versions it holds for
	known   bool      // the store has the host's tables at version
	next    time.Time // otherwise, when to ask the store (and maybe probe) again
	// fresh: the host was enrolled here for the first time, so the store
	// has no report of it: probe without asking the store (a fleet
	// coming up would otherwise ask once per host).
	fresh bool
}

// schemaVersion is what a host's tables depend on: osquery's version (and
// so its tables) and Quarry's (its extension or agent).
func schemaVersion(h *store.Host) string {
	return "osquery " + h.OsqueryVersion + "; quarry " + h.QuarryVersion
}

// schemaProbeDue reports whether to send a host the schema probe with this
// distributed read. A host whose tables this server knows costs a map
// lookup; otherwise the store is asked (once per host and retry period),
// as another replica may have probed it.
func (s *Server) schemaProbeDue(ctx context.Context, h *store.Host, now time.Time) bool {
	ver := schemaVersion(h)
	s.schemaMu.Lock()
	st, ok := s.schemas[h.ID]
	s.schemaMu.Unlock()
	if ok && st.version == ver && (st.known || now.Before(st.next)) {
		return false
	}
	if ok && st.version == ver && st.fresh {
		s.setSchemaState(h.ID, schemaState{version: ver, next: now.Add(s.cfg.SchemaRetry)})
		return true
	}
	next := schemaState{version: ver, next: now.Add(s.cfg.SchemaRetry)}
	due := true
	rep, err := s.cfg.Store.HostSchemaStatus(ctx, h.ID)
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		// The probe is optional: with the store failing, no probe and no
		// failed read; ask again in a minute.
		next.next, due = now.Add(time.Minute), false
	case err == nil && rep.Version == ver && rep.Error == "":
		next.known, due = true, false
	case err == nil && rep.Version == ver && now.Before(rep.ReportedAt.Add(s.cfg.SchemaRetry)):
		next.next, due = rep.ReportedAt.Add(s.cfg.SchemaRetry), false
	}
	s.setSchemaState(h.ID, next)
	return due
}

func (s *Server) setSchemaState(hostID string, st schemaState) {
	s.schemaMu.Lock()
	s.schemas[hostID] = st
	s.schemaMu.Unlock()
}

// recordSchema stores a host's answer to the schema probe: its tables, or
// its error ("schema unavailable", probed again after Config.SchemaRetry).
func (s *Server) recordSchema(ctx context.Context, h *store.Host, status int, message string, raw json.RawMessage, now time.Time) error {
	rep := &store.HostSchema{HostID: h.ID, Version: schemaVersion(h), ReportedAt: now}
	if status != 0 {
		rep.Error = message
		if rep.Error == "" {
			rep.Error = "query failed"
		}
	} else {
		rep.Tables = tablesOf(rowsOf(raw))
	}
	cleanStrings(rep)
	if err := s.cfg.Store.PutHostSchema(ctx, rep); err != nil {
		return err
	}
	st := schemaState{version: rep.Version, known: true}
	if status != 0 {
		st = schemaState{version: rep.Version, next: now.Add(s.cfg.SchemaRetry)}
	}
	s.setSchemaState(h.ID, st)
	return nil
}

// tablesOf reads the schema probe's rows ({"name": …, "sql": …}): the
// tables whose definitions name columns. Rows of another shape, and
// definitions it cannot read, are skipped.
func tablesOf(rows []json.RawMessage) []store.HostTable {
	var out []store.HostTable
	seen := map[string]bool{}
	for _, raw := range rows {
		if len(out) >= maxSchemaTables {
			break
		}
		var row struct {
			Name any `json:"name"`
			SQL  any `json:"sql"`
		}
		if json.Unmarshal(raw, &row) != nil {
			continue
		}
		def, _ := row.SQL.(string)
		if def == "" || len(def) > maxTableDefinition {
			continue
		}
		parsed, cols, ok := ParseTableDefinition(def)
		if !ok || len(cols) == 0 {
			continue
		}
		name, _ := row.Name.(string)
		if name == "" {
			name = parsed
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, store.HostTable{Name: limitString(name, 256), Columns: cols})
	}
	return out
}

// TableView is a table as GET /api/v1/tables lists it.
type TableView struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Source is "quarry" for the tables of Quarry's catalog (its agent,
	// its osquery extension) and "hosts" for those only hosts reported.
	Source  string              `json:"source"`
	Columns []store.TableColumn `json:"columns"`
	// Hosts and Platforms: how many hosts reported the table, and their
	// platform families.
	Hosts     int      `json:"hosts"`
	Platforms []string `json:"platforms"`
}

// HostOnlyTables returns the tables hosts reported that are not among
// quarry (Quarry's own tables, listed from the catalog).
func HostOnlyTables(quarry []tables.Table, reported []store.FleetTable) []store.FleetTable {
	own := make(map[string]bool, len(quarry))
	for _, t := range quarry {
		own[t.Name] = true
	}
	var out []store.FleetTable
	for _, t := range reported {
		if !own[t.Name] {
			out = append(out, t)
		}
	}
	return out
}

var columnTypeNames = map[tables.ColumnType]string{tables.Text: "TEXT", tables.Integer: "INTEGER",
	tables.BigInt: "BIGINT", tables.Double: "DOUBLE"}

// handleTables lists what the hunt page's schema browser lists: Quarry's
// tables, then those only hosts reported, each by name.
func (s *Server) handleTables(w http.ResponseWriter, r *http.Request) {
	reported, err := s.cfg.Store.FleetTables(r.Context())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	counts := make(map[string]store.FleetTable, len(reported))
	for _, t := range reported {
		counts[t.Name] = t
	}
	quarry := catalog.Schemas(s.cfg.KB)
	sort.Slice(quarry, func(i, j int) bool { return quarry[i].Name < quarry[j].Name })
	out := make([]TableView, 0, len(quarry)+len(reported))
	for _, t := range quarry {
		v := TableView{Name: t.Name, Description: t.Description, Source: "quarry", Columns: []store.TableColumn{},
			Hosts: counts[t.Name].Hosts, Platforms: counts[t.Name].Platforms}
		if v.Platforms == nil {
			v.Platforms = []string{}
		}
		for _, c := range t.Columns {
			v.Columns = append(v.Columns, store.TableColumn{Name: c.Name, Type: columnTypeNames[c.Type], Hidden: c.Hidden})
		}
		out = append(out, v)
	}
	for _, t := range HostOnlyTables(quarry, reported) {
		out = append(out, TableView{Name: t.Name, Source: "hosts", Columns: t.Columns, Hosts: t.Hosts, Platforms: t.Platforms})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tables": out})
}
