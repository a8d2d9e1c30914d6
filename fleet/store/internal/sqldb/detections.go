package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// detectionFields are the stored columns of a detection after host_id,
// hit_id and technique_id, in the order detectionArgs binds them.
var detectionFields = []string{"time", "query", "rule_id", "rule_title", "rule_author", "rule_source",
	"technique_name", "tactic", "severity", "confidence", "description", "recommendations",
	"eid", "pid", "path", "cmdline", "parent_path", "username", "source", "received_at", "detected_at"}

func detectionArgs(hostID string, d *store.Detection, received time.Time) []any {
	return []any{hostID, d.HitID, d.TechniqueID, ms(d.Time), d.Query, d.RuleID, d.RuleTitle, d.RuleAuthor,
		d.RuleSource, d.TechniqueName, d.Tactic, d.Severity, d.Confidence, d.Description, d.Recommendations,
		d.EID, d.PID, d.Path, d.Cmdline, d.ParentPath, d.Username, d.Source, ms(received), ms(firstNonZero(d.DetectedAt, received))}
}

// firstNonZero returns the first time that is not zero.
func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// detectionHead and detectionTail are the head and tail of a detection
// upsert (see detectionUpsert), built once: building them took 2 % of the
// server's CPU under load when every log request did.
var detectionHead, detectionTail = detectionUpsert()

// detectionTypes are the column types of a detection row, as detectionArgs
// binds them (see rowSource).
var detectionTypes = mustTypes("detection", detectionArgs("", &store.Detection{}, time.Time{}))

// detectionUpsert returns the head and tail of a detection upsert (see
// insertSQL): a repeat of (host, hit, technique) fills the fields the
// stored one lacks and changes nothing else. Its rows must not repeat a
// (host, hit, technique) (PostgreSQL refuses to update a row twice in one
// statement).
func detectionUpsert() (head, tail string) {
	cols := append([]string{"host_id", "hit_id", "technique_id"}, detectionFields...)
	var set []string
	for _, c := range detectionFields {
		switch c {
		case "time", "query", "received_at":
			continue
		case "eid", "pid", "detected_at":
			set = append(set, fmt.Sprintf("%s = CASE WHEN detections.%s = 0 THEN excluded.%s ELSE detections.%s END", c, c, c, c))
		default:
			set = append(set, fmt.Sprintf("%s = CASE WHEN detections.%s = '' THEN excluded.%s ELSE detections.%s END", c, c, c, c))
		}
	}
	return "INSERT INTO detections (" + strings.Join(cols, ", ") + ")",
		"ON CONFLICT (host_id, hit_id, technique_id) DO UPDATE SET " + strings.Join(set, ", ")
}

// detectionsPerStatement bounds the rows of one detection upsert.
const detectionsPerStatement = 50

// hostDetection is a detection to store with its host.
type hostDetection struct {
	host string
	d    *store.Detection
}

// upsertDetections stores detections, several to a statement (one round
// trip to the database for up to detectionsPerStatement).
func (db *DB) upsertDetections(ctx context.Context, tx *sql.Tx, ds []hostDetection, received time.Time) error {
	type key struct{ host, hit, tech string }
	return upsertBatched(ctx, db, tx, "detections", ds, detectionsPerStatement, detectionHead, detectionTypes, detectionTail,
		func(hd hostDetection) key { return key{hd.host, hd.d.HitID, hd.d.TechniqueID} },
		func(hd hostDetection) []any { return detectionArgs(hd.host, hd.d, received) })
}

// upsertBatched stores rows with the upsert head … tail of columns of types
// (see insertSQL), up to perStatement rows a statement (one round trip
// each). A row whose key is already in the statement being built starts
// the next one: an upsert may not touch one row twice.
func upsertBatched[R any, K comparable](ctx context.Context, db *DB, tx *sql.Tx, what string, rows []R, perStatement int,
	head string, types []string, tail string, keyOf func(R) K, argsOf func(R) []any) error {
	var args []any
	n := 0
	seen := map[K]bool{}
	flush := func() error {
		if n == 0 {
			return nil
		}
		query, qargs, err := db.insertSQL(head, types, args, tail)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		stmt, err := db.txStmt(ctx, tx, query)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer stmt.Close()
		if _, err := stmt.ExecContext(ctx, qargs...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		args, n = args[:0], 0
		clear(seen)
		return nil
	}
	for _, r := range rows {
		k := keyOf(r)
		if seen[k] || n == db.perStatement(perStatement) {
			if err := flush(); err != nil {
				return err
			}
		}
		seen[k] = true
		args = append(args, argsOf(r)...)
		n++
	}
	return flush()
}

// detectionWhere is f as a WHERE clause over detections d and its args.
func detectionWhere(f store.DetectionFilter) (string, []any) {
	var where []string
	var args []any
	or := func(vals []string, term func(v string) (string, []any)) {
		if len(vals) == 0 {
			return
		}
		var terms []string
		for _, v := range vals {
			t, a := term(v)
			terms = append(terms, t)
			args = append(args, a...)
		}
		where = append(where, "("+strings.Join(terms, " OR ")+")")
	}
	or(f.Techniques, func(v string) (string, []any) {
		if strings.EqualFold(strings.TrimSpace(v), telemetry.Untagged) {
			return "d.technique_id = ?", []any{telemetry.Untagged}
		}
		v = strings.ToUpper(strings.TrimSpace(v))
		if strings.Contains(v, ".") {
			return "d.technique_id = ?", []any{v}
		}
		return "(d.technique_id = ? OR d.technique_id LIKE ?)", []any{v, likeEscape(v) + ".%"}
	})
	or(f.Tactics, func(v string) (string, []any) {
		return "(',' || d.tactic || ',') LIKE ?", []any{"%," + likeEscape(strings.ToLower(strings.TrimSpace(v))) + ",%"}
	})
	or(f.Severities, func(v string) (string, []any) {
		return "d.severity = ?", []any{strings.ToLower(strings.TrimSpace(v))}
	})
	or(f.HostIDs, func(v string) (string, []any) { return "d.host_id = ?", []any{v} })
	switch f.Kind {
	case telemetry.KindIOC:
		where, args = append(where, "d.rule_source = ?"), append(args, telemetry.RuleSourceIntel)
	case telemetry.KindIOA:
		where, args = append(where, "d.rule_source <> ?"), append(args, telemetry.RuleSourceIntel)
	}
	col := timeColumn(f.By)
	if !f.Since.IsZero() {
		where = append(where, col+" >= ?")
		args = append(args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, col+" < ?")
		args = append(args, ms(f.Until))
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// timeColumn is the detections column of a time field.
func timeColumn(by store.TimeField) string {
	if by == store.TimeDetected {
		return "d.detected_at"
	}
	return "d.time"
}

// likeEscape drops LIKE's wildcards from a value (IDs and shortnames
// never hold them).
func likeEscape(s string) string {
	return strings.NewReplacer("%", "", "_", "").Replace(s)
}

// Detections implements store.Store.
func (db *DB) Detections(ctx context.Context, f store.DetectionFilter) ([]store.Detection, int, error) {
	cond, args := detectionWhere(f)
	return listPage(ctx, db, "detections", `detections d`+cond, `SELECT d.id, d.host_id, COALESCE(h.host_identifier, ''), COALESCE(h.hostname, ''),
  d.hit_id, d.technique_id, d.`+strings.Join(detectionFields, ", d.")+`
FROM detections d LEFT JOIN hosts h ON h.id = d.host_id`+cond+`
ORDER BY `+timeColumn(f.By)+` DESC, d.id DESC`, args, f.Limit, f.Offset, func(rows *sql.Rows) (store.Detection, error) {
		var d store.Detection
		var t, recv, det int64
		if err := rows.Scan(&d.ID, &d.HostID, &d.HostIdentifier, &d.Hostname, &d.HitID, &d.TechniqueID,
			&t, &d.Query, &d.RuleID, &d.RuleTitle, &d.RuleAuthor, &d.RuleSource, &d.TechniqueName, &d.Tactic,
			&d.Severity, &d.Confidence, &d.Description, &d.Recommendations, &d.EID, &d.PID, &d.Path, &d.Cmdline,
			&d.ParentPath, &d.Username, &d.Source, &recv, &det); err != nil {
			return d, err
		}
		d.Time, d.ReceivedAt, d.DetectedAt = fromMS(t), fromMS(recv), fromMS(det)
		d.Kind = telemetry.KindOf(d.RuleSource)
		return d, nil
	})
}

// groupExpr is the SQL of a group key.
func groupExpr(k store.GroupKey) (string, error) {
	switch k {
	case store.KeyTechnique:
		return "d.technique_id", nil
	case store.KeyTactic:
		return "d.tactic", nil
	case store.KeyHost:
		return "d.host_id", nil
	case store.KeyDay:
		return "(d.time / 86400000) * 86400", nil
	case store.KeyRule:
		return "d.rule_title", nil
	}
	return "", fmt.Errorf("unknown group key %d", k)
}

// CountDetections implements store.Store.
func (db *DB) CountDetections(ctx context.Context, f store.DetectionFilter, keys ...store.GroupKey) ([]store.Count, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("count detections: no group key")
	}
	exprs := make([]string, len(keys))
	nums := make([]string, len(keys))
	for i, k := range keys {
		e, err := groupExpr(k)
		if err != nil {
			return nil, fmt.Errorf("count detections: %w", err)
		}
		exprs[i] = e
		nums[i] = strconv.Itoa(i + 1)
	}
	cond, args := detectionWhere(f)
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT `+strings.Join(exprs, ", ")+`, count(*) FROM detections d`+cond+
		` GROUP BY `+strings.Join(nums, ", ")+` ORDER BY `+strconv.Itoa(len(keys)+1)+` DESC, `+strings.Join(nums, ", ")), args...)
	if err != nil {
		return nil, fmt.Errorf("count detections: %w", err)
	}
	defer rows.Close()
	var out []store.Count
	for rows.Next() {
		vals := make([]any, len(keys)+1)
		ptrs := make([]any, len(keys)+1)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("count detections: %w", err)
		}
		c := store.Count{Keys: make([]string, len(keys))}
		for i := range keys {
			c.Keys[i] = text(vals[i])
		}
		n, _ := strconv.ParseInt(text(vals[len(keys)]), 10, 64)
		c.N = n
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count detections: %w", err)
	}
	return out, nil
}

// text renders a scanned value as a string.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}
