// Package ioc serves threat intelligence as tables: ioc_hits (indicators
// found in events, live or by a hunt: the event store's IoC sightings) and
// intel_indicators (the loaded indicators, in the intel database of
// detections/intel).
package ioc

import (
	"context"
	"strings"

	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var hitColumns = []tables.Column{
	{Name: "hit_id", Type: tables.Text, Description: "Hit id (UUID)", Index: true},
	{Name: "time", Type: tables.BigInt, Description: "When the event happened, UNIX seconds", Additional: true},
	{Name: "detected_at", Type: tables.BigInt, Description: "When the indicator was found in it (live, or by a later hunt), UNIX seconds"},
	{Name: "host_identifier", Type: tables.Text, Description: "Host of the event", Additional: true},
	{Name: "indicator", Type: tables.Text, Description: "The indicator (normalized: lower-case hash, address, network, domain, URL)", Additional: true},
	{Name: "type", Type: tables.Text, Description: "sha256, sha1, md5, ipv4, ipv6, cidr, domain or url"},
	{Name: "source", Type: tables.Text, Description: "The intel feed (quarry intel add --source)"},
	{Name: "confidence", Type: tables.Integer, Description: "The feed's confidence in the indicator, 0-100"},
	{Name: "matched_field", Type: tables.Text, Description: "Where it was found: Hashes, DestinationIp, SourceIp, QueryName, QueryResults, DestinationHostname, cmdline, ScriptBlockText…"},
	{Name: "matched_value", Type: tables.Text, Description: "The value found, as the event holds it (a subdomain of a listed domain, an address in a listed network…)"},
	{Name: "eid", Type: tables.BigInt, Description: "The event's eid in process_events (0 when not stored)"},
	{Name: "pid", Type: tables.BigInt, Description: "Process id of the event"},
	{Name: "process_key", Type: tables.Text, Description: "Identity of the event's process (process_events.process_key)"},
	{Name: "path", Type: tables.Text, Description: "Executable of the process"},
	{Name: "techniques", Type: tables.Text, Description: "ATT&CK techniques the intel links the indicator to, comma-separated"},
	{Name: "groups", Type: tables.Text, Description: "ATT&CK groups the intel links it to (G0016 APT29, or the feed's name when ATT&CK does not know it), comma-separated"},
	{Name: "malware", Type: tables.Text, Description: "ATT&CK software the intel links it to (S0154 Cobalt Strike…), comma-separated"},
	{Name: "context", Type: tables.Text, Description: "The linked groups and software with the techniques ATT&CK says they use"},
}

// Hits returns the ioc_hits table over the IoC sightings in st; l names
// groups and software (nil: their IDs only).
func Hits(st *eventstore.Store, l *intel.Linker) tables.Table {
	return tables.Table{
		Name: "ioc_hits",
		Description: "Indicator-of-Compromise hits: an indicator of a loaded intel feed (hash, address, network, domain, " +
			"URL) found in an event, live or by 'quarry intel hunt', with the ATT&CK techniques, groups and software " +
			"the intel links it to. Join eid to process_events; techniques to attack_techniques.",
		Columns: hitColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			var f eventstore.SightingFilter
			var none bool
			if f.Since, f.Until, none = q.TimeRange("time"); none {
				return nil
			}
			if f.Hosts, none = eq(q, "host_identifier"); none {
				return nil
			}
			if f.Indicators, none = eq(q, "indicator"); none {
				return nil
			}
			if f.HitIDs, none = eq(q, "hit_id"); none {
				return nil
			}
			row := make(tables.Row, len(hitColumns))
			err := st.ScanSightings(ctx, f, func(h *telemetry.IOCSighting) bool {
				row[0] = h.HitID
				row[1] = h.Time.Unix()
				row[2] = h.DetectedAt.Unix()
				row[3] = h.Host
				row[4] = h.Indicator
				row[5] = h.Type
				row[6] = h.Source
				row[7] = int64(h.Confidence)
				row[8] = h.Field
				row[9] = h.Value
				row[10] = h.EID
				row[11] = h.PID
				row[12] = h.ProcessKey
				row[13] = h.Path
				row[14] = strings.Join(h.Techniques, ",")
				row[15] = names(l, h.Groups)
				row[16] = names(l, h.Malware)
				row[17] = h.Context
				return ctx.Err() == nil && emit(row)
			})
			if err != nil {
				return err
			}
			return ctx.Err()
		},
	}
}

var indicatorColumns = []tables.Column{
	{Name: "indicator", Type: tables.Text, Description: "The indicator, normalized", Index: true},
	{Name: "type", Type: tables.Text, Description: "sha256, sha1, md5, ipv4, ipv6, cidr, domain or url", Additional: true},
	{Name: "source", Type: tables.Text, Description: "The intel feed it came from", Additional: true},
	{Name: "confidence", Type: tables.Integer, Description: "The feed's confidence, 0-100"},
	{Name: "first_seen", Type: tables.BigInt, Description: "When Quarry first loaded it, UNIX seconds"},
	{Name: "updated", Type: tables.BigInt, Description: "When a load last carried it, UNIX seconds"},
	{Name: "valid_until", Type: tables.BigInt, Description: "When it stops matching, UNIX seconds (0: never)"},
	{Name: "expired", Type: tables.Integer, Description: "1 when valid_until has passed: the indicator no longer matches"},
	{Name: "techniques", Type: tables.Text, Description: "ATT&CK techniques the intel links it to, comma-separated"},
	{Name: "groups", Type: tables.Text, Description: "ATT&CK groups the intel links it to, comma-separated"},
	{Name: "malware", Type: tables.Text, Description: "ATT&CK software the intel links it to, comma-separated"},
	{Name: "ref", Type: tables.Text, Description: "Its id in the feed: STIX indicator id, MISP attribute uuid, file:line"},
}

// Indicators returns the intel_indicators table over the indicators in db.
func Indicators(db *intel.DB, l *intel.Linker) tables.Table {
	return tables.Table{
		Name: "intel_indicators",
		Description: "Threat intelligence indicators loaded with 'quarry intel add|update': one row per indicator " +
			"and feed, with its confidence, dates, expiry and ATT&CK links.",
		Columns: indicatorColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			var f intel.IndicatorFilter
			var none bool
			if f.Values, none = eq(q, "indicator"); none {
				return nil
			}
			if f.Sources, none = eq(q, "source"); none {
				return nil
			}
			types, none := eq(q, "type")
			if none {
				return nil
			}
			for _, t := range types {
				f.Types = append(f.Types, intel.Type(t))
			}
			now := db.Now()
			row := make(tables.Row, len(indicatorColumns))
			err := db.ScanIndicators(ctx, f, func(in *intel.Indicator) bool {
				row[0] = in.Value
				row[1] = string(in.Type)
				row[2] = in.Source
				row[3] = int64(in.Confidence)
				row[4] = in.FirstSeen.Unix()
				row[5] = in.Updated.Unix()
				row[6] = int64(0)
				if !in.ValidUntil.IsZero() {
					row[6] = in.ValidUntil.Unix()
				}
				row[7] = int64(0)
				if in.Expired(now) {
					row[7] = int64(1)
				}
				row[8] = strings.Join(in.Techniques, ",")
				row[9] = names(l, in.Groups)
				row[10] = names(l, in.Malware)
				row[11] = in.Ref
				return ctx.Err() == nil && emit(row)
			})
			if err != nil {
				return err
			}
			return ctx.Err()
		},
	}
}

// eq returns a column's = / IN values; none reports a constraint nothing
// satisfies.
func eq(q tables.QueryContext, col string) (vals []string, none bool) {
	vals, ok := q.EqualStrings(col)
	if ok && len(vals) == 0 {
		return nil, true
	}
	return vals, false
}

func names(l *intel.Linker, ids []string) string {
	if l != nil {
		ids = l.Names(ids)
	}
	return strings.Join(ids, ",")
}
