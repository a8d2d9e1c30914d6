// Package catalog assembles every Quarry table family into one registry, the
// one both engines serve (the embedded SQLite engine and the osquery
// extension), so a table added to a family appears in both.
package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/tables/attacktables"
	"github.com/quarry-sec/quarry/tables/incidenttables"
	"github.com/quarry-sec/quarry/tables/ioa"
	"github.com/quarry-sec/quarry/tables/ioc"
	"github.com/quarry-sec/quarry/tables/process"
	"github.com/quarry-sec/quarry/tables/sandboxtables"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// Sources are the data the table families read.
type Sources struct {
	// ATTACK is the ATT&CK knowledge base behind the attack_* tables.
	ATTACK *attack.KB
	// Events is the event store behind process_events; nil leaves the table
	// out.
	Events *eventstore.Store
	// EventsErr, when Events is nil, is why the store could not be opened:
	// the tables that read it are then served, and a query of one fails
	// with this error, while the others (attack_*) answer.
	EventsErr error
	// Process tunes process_events.
	Process process.Options
	// Rules gives the detection rules behind ioa_rules, on first use; nil
	// serves an empty ioa_rules.
	Rules ioa.RuleSource
	// Intel is the threat intelligence database behind intel_indicators;
	// nil leaves it out (ioc_hits reads the event store's IoC sightings).
	Intel *intel.DB
	// OsqueryAlias also serves process_events as quarry_process_events, its
	// name inside osquery (and the other tables of OsqueryNames likewise), so one query (a pack's) runs on both engines. The
	// embedded engine sets it; the osquery extension, which renames the
	// table itself, does not.
	OsqueryAlias bool
}

// OsqueryProcessEvents is process_events' name inside osquery, whose own
// table of that name an extension may not replace.
const OsqueryProcessEvents = "quarry_process_events"

// OsqueryNames maps the Quarry tables osquery has a table of the same name
// as (process_events, socket_events, file_events, dns_lookup_events) to
// their names inside osquery, where an extension may not replace osquery's
// own: quarry_process_events, quarry_socket_events…
func OsqueryNames() map[string]string {
	m := activity.OsqueryNames()
	m["process_events"] = OsqueryProcessEvents
	return m
}

// New returns a registry of every table whose source is given, each wrapped
// with opts (timeout, logger).
func New(src Sources, opts ...tables.WrapOption) (*tables.Registry, error) {
	if src.ATTACK == nil {
		return nil, errors.New("catalog: no ATT&CK knowledge base")
	}
	reg := tables.NewRegistry(opts...)
	all := list(src, src.Events != nil)
	if src.Events == nil && src.EventsErr != nil {
		all = unavailable(src)
	}
	if err := reg.Register(all...); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return reg, nil
}

// Schemas returns every table of the catalog, process_events under both its
// names included, with no data behind them: their names, descriptions and
// columns, for listing (the hunt page's schema browser).
func Schemas(kb *attack.KB) []tables.Table {
	return append(list(Sources{ATTACK: kb, OsqueryAlias: true}, true), ioc.Indicators(nil, nil))
}

// list returns the tables of src; withEvents adds the families that read the
// event store (src.Events, which may be nil when only schemas are wanted).
func list(src Sources, withEvents bool) []tables.Table {
	all := attacktables.Tables(src.ATTACK)
	linker := intel.NewLinker(src.ATTACK) // names the intel's groups and software; indexed on first use
	if withEvents {
		pe := process.Events(src.Events, src.Process)
		all = append(all, pe, ioa.Hits(src.Events, src.ATTACK), incidenttables.Incidents(src.Events, src.ATTACK),
			incidenttables.IncidentHits(src.Events), incidenttables.ProcessTree(src.Events), incidenttables.RelatedIncidents(src.Events),
			sandboxtables.Runs(src.Events), ioc.Hits(src.Events, linker))
		all = append(all, activity.Tables(src.Events)...)
		if src.OsqueryAlias {
			names := OsqueryNames()
			for _, t := range all {
				if n, ok := names[t.Name]; ok {
					alias := t
					alias.Name = n
					alias.Description = t.Name + " under its name inside osquery (the same rows)."
					all = append(all, alias)
				}
			}
		}
	}
	if src.Intel != nil {
		all = append(all, ioc.Indicators(src.Intel, linker))
	}
	rules := src.Rules
	if rules == nil {
		rules = ioa.StaticRules(nil)
	}
	return append(all, ioa.Rules(rules))
}

// unavailable is list(src, true) with the tables that read the event store
// failing with src.EventsErr.
func unavailable(src Sources) []tables.Table {
	without := map[string]bool{}
	for _, t := range list(src, false) {
		without[t.Name] = true
	}
	all := list(src, true)
	for i := range all {
		if without[all[i].Name] {
			continue
		}
		name, err := all[i].Name, src.EventsErr
		all[i].Generate = func(context.Context, tables.QueryContext, tables.EmitFunc) error {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return all
}
