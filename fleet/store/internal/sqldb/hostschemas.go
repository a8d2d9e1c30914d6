package sqldb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/quarry-sec/quarry/fleet/store"
)

// defsPerStatement bounds the rows of one multi-row INSERT of table
// definitions (3 parameters each: well under either database's limit).
const defsPerStatement = 500

// tableDef is a table definition as stored in table_defs.
type tableDef struct {
	hash, name, columns string
}

// tableDefOf encodes a reported table and hashes its name and columns:
// hosts reporting the same definition share one table_defs row.
func tableDefOf(t store.HostTable) (tableDef, error) {
	cols := t.Columns
	if cols == nil {
		cols = []store.TableColumn{}
	}
	b, err := json.Marshal(cols)
	if err != nil {
		return tableDef{}, err
	}
	h := sha256.New()
	h.Write([]byte(t.Name))
	h.Write([]byte{0})
	h.Write(b)
	return tableDef{hash: hex.EncodeToString(h.Sum(nil)), name: t.Name, columns: string(b)}, nil
}

// PutHostSchema implements store.Store. A host's definitions are stored
// as a set shared with every host reporting the same (the definitions and
// the set are written the first time only); the host then refers to it.
// Definitions and sets no host refers to any more are kept: hosts of an
// older osquery version may still report them, and they are few (one set
// per osquery version and platform).
func (db *DB) PutHostSchema(ctx context.Context, s *store.HostSchema) error {
	var defs []tableDef
	names := map[string]bool{}
	for _, t := range s.Tables {
		if names[t.Name] { // one definition of a table per host
			continue
		}
		names[t.Name] = true
		d, err := tableDefOf(t)
		if err != nil {
			return fmt.Errorf("host %s schema: table %s: %w", s.HostID, t.Name, err)
		}
		defs = append(defs, d)
	}
	set := ""
	if len(defs) > 0 {
		sort.Slice(defs, func(i, j int) bool { return defs[i].hash < defs[j].hash })
		h := sha256.New()
		for _, d := range defs {
			h.Write([]byte(d.hash))
		}
		set = hex.EncodeToString(h.Sum(nil))
	}
	if set == "" || db.setKnown(set) {
		// The common case: one row, written with the other hosts' reports
		// of the group commit (see putSchemas).
		r := &schemaReport{s: s, set: set}
		err := db.txMerged(ctx, &merge{kind: "host schema", arg: r, run: db.putSchemas}, func(tx *sql.Tx) error {
			return db.putSchemas(ctx, tx, []any{r})
		})
		if err != nil {
			return fmt.Errorf("host %s schema: %w", s.HostID, err)
		}
		return nil
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		known := set == "" || db.setKnown(set)
		if !known {
			err := tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM schema_sets WHERE set_hash = ? LIMIT 1`), set).Scan(new(int))
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			known = err == nil
		}
		for start := 0; !known && start < len(defs); start += defsPerStatement {
			chunk := defs[start:min(start+defsPerStatement, len(defs))]
			defArgs := make([]any, 0, 3*len(chunk))
			setArgs := make([]any, 0, 2*len(chunk))
			for _, d := range chunk {
				defArgs = append(defArgs, d.hash, d.name, d.columns)
				setArgs = append(setArgs, set, d.hash)
			}
			if _, err := tx.ExecContext(ctx, db.q(valuesSQL(`INSERT INTO table_defs (def_hash, table_name, columns_json)`,
				3, len(chunk), `ON CONFLICT (def_hash) DO NOTHING`)), defArgs...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.q(valuesSQL(`INSERT INTO schema_sets (set_hash, def_hash)`,
				2, len(chunk), `ON CONFLICT (set_hash, def_hash) DO NOTHING`)), setArgs...); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO host_schemas (host_id, version, reported_at, error, set_hash)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (host_id) DO UPDATE SET version = excluded.version, reported_at = excluded.reported_at,
  error = excluded.error, set_hash = excluded.set_hash`), s.HostID, s.Version, ms(s.ReportedAt), s.Error, set)
		return err
	})
	if err != nil {
		return fmt.Errorf("host %s schema: %w", s.HostID, err)
	}
	if set != "" {
		db.knownSets.Store(set, true)
	}
	return nil
}

// schemaReport is a host's schema report whose set is stored.
type schemaReport struct {
	s   *store.HostSchema
	set string
}

// schemaTypes are the column types of a host_schemas row.
var schemaTypes = []string{colText, colText, colBigint, colText, colText}

// putSchemas writes schema reports (args: *schemaReport) of sets already
// stored, in multi-row upserts (a host reporting twice in the group goes
// in a later statement).
func (db *DB) putSchemas(ctx context.Context, tx *sql.Tx, args []any) error {
	rest := make([]*schemaReport, len(args))
	for i, a := range args {
		rest[i] = a.(*schemaReport)
	}
	for len(rest) > 0 {
		seen := map[string]bool{}
		var round, later []*schemaReport
		for _, r := range rest {
			if seen[r.s.HostID] || len(round) == db.perStatement(schemasPerStatement) {
				later = append(later, r)
				continue
			}
			seen[r.s.HostID] = true
			round = append(round, r)
		}
		vals := make([]any, 0, 5*len(round))
		for _, r := range round {
			vals = append(vals, r.s.HostID, r.s.Version, ms(r.s.ReportedAt), r.s.Error, r.set)
		}
		query, vals, err := db.insertSQL(`INSERT INTO host_schemas (host_id, version, reported_at, error, set_hash)`,
			schemaTypes, vals, `ON CONFLICT (host_id) DO UPDATE SET version = excluded.version, reported_at = excluded.reported_at,
  error = excluded.error, set_hash = excluded.set_hash`)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(query), vals...); err != nil {
			return err
		}
		rest = later
	}
	return nil
}

// schemasPerStatement bounds the reports of one statement.
const schemasPerStatement = 500

// setKnown reports whether this store committed schema set (or found it
// stored) before: sets are named by the hash of their content and never
// change or go, so a host reporting a known set writes one row, with no
// query first (every host of a fleet reports one of a few sets).
func (db *DB) setKnown(set string) bool {
	_, ok := db.knownSets.Load(set)
	return ok
}

// HostSchemaStatus implements store.Store.
func (db *DB) HostSchemaStatus(ctx context.Context, hostID string) (*store.HostSchema, error) {
	s := store.HostSchema{HostID: hostID}
	var at int64
	err := db.r.QueryRowContext(ctx, db.q(`SELECT version, reported_at, error FROM host_schemas WHERE host_id = ?`),
		hostID).Scan(&s.Version, &at, &s.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("host %s schema: %w", hostID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("host %s schema: %w", hostID, err)
	}
	s.ReportedAt = fromMS(at)
	return &s, nil
}

// FleetTables implements store.Store. Hosts are counted per definition set
// and platform family in the database; the definitions of one table
// (hosts of different osquery versions) are merged here.
func (db *DB) FleetTables(ctx context.Context) ([]store.FleetTable, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT d.def_hash, d.table_name, d.columns_json, g.family, g.n
FROM (SELECT s.set_hash, h.family, count(*) AS n
  FROM host_schemas s JOIN hosts h ON h.id = s.host_id
  WHERE s.set_hash <> ''
  GROUP BY s.set_hash, h.family) g
JOIN schema_sets m ON m.set_hash = g.set_hash
JOIN table_defs d ON d.def_hash = m.def_hash`)
	if err != nil {
		return nil, fmt.Errorf("fleet tables: %w", err)
	}
	defer rows.Close()
	type def struct {
		hash, name string
		cols       []store.TableColumn
		hosts      int
		families   map[string]bool
	}
	defs := map[string]*def{}
	for rows.Next() {
		var hash, name, cols, family string
		var n int
		if err := rows.Scan(&hash, &name, &cols, &family, &n); err != nil {
			return nil, fmt.Errorf("fleet tables: %w", err)
		}
		d := defs[hash]
		if d == nil {
			d = &def{hash: hash, name: name, families: map[string]bool{}}
			if err := json.Unmarshal([]byte(cols), &d.cols); err != nil {
				return nil, fmt.Errorf("fleet tables: table %s: columns: %w", name, err)
			}
			defs[hash] = d
		}
		d.hosts += n
		if family != "" {
			d.families[family] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fleet tables: %w", err)
	}
	sorted := make([]*def, 0, len(defs))
	for _, d := range defs {
		sorted = append(sorted, d)
	}
	// By table, the definition most hosts reported first.
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.name != b.name {
			return a.name < b.name
		}
		if a.hosts != b.hosts {
			return a.hosts > b.hosts
		}
		return a.hash < b.hash
	})
	var out []store.FleetTable
	var families map[string]bool
	var colSeen map[string]bool
	for _, d := range sorted {
		if len(out) == 0 || out[len(out)-1].Name != d.name {
			out = append(out, store.FleetTable{Name: d.name, Columns: []store.TableColumn{}})
			families, colSeen = map[string]bool{}, map[string]bool{}
		}
		t := &out[len(out)-1]
		t.Hosts += d.hosts
		for _, c := range d.cols {
			if !colSeen[c.Name] {
				colSeen[c.Name] = true
				t.Columns = append(t.Columns, c)
			}
		}
		for f := range d.families {
			if !families[f] {
				families[f] = true
				t.Platforms = append(t.Platforms, f)
				sort.Strings(t.Platforms)
			}
		}
	}
	for i := range out {
		if out[i].Platforms == nil {
			out[i].Platforms = []string{}
		}
	}
	return out, nil
}
