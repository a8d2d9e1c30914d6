// Package osqueryext serves Quarry's tables to osquery as an extension: each
// tables.Table becomes an osquery table plugin (github.com/osquery/osquery-go)
// whose columns carry osquery's types and index/required/additional/hidden
// flags, whose generate requests are turned into the table interface's
// QueryContext, and whose streamed rows are collected into the text maps
// osquery's Thrift API returns. Extension runs the whole thing against an
// osqueryd socket: registration, a buffered transport, health pings and
// shutdown. The package holds no table logic.
package osqueryext

import (
	"context"

	"github.com/osquery/osquery-go/gen/osquery"
	"github.com/osquery/osquery-go/plugin/table"

	"github.com/quarry-sec/quarry/tables"
)

// TablePlugin is one Quarry table as an osquery table plugin. It implements
// osquery-go's OsqueryPlugin interface.
type TablePlugin struct {
	name    string
	table   *tables.Table
	defs    []table.ColumnDefinition
	routes  osquery.ExtensionPluginResponse
	maxRows int
}

// NewTablePlugin adapts t, named name in osquery (t.Name when name is
// empty). maxRows bounds one generate response (zero or less: no bound; see
// ErrTooManyRows).
func NewTablePlugin(t *tables.Table, name string, maxRows int) *TablePlugin {
	if name == "" {
		name = t.Name
	}
	defs := ColumnDefinitions(t)
	return &TablePlugin{name: name, table: t, defs: defs, routes: routes(defs), maxRows: maxRows}
}

// Name returns the table's name in osquery.
func (p *TablePlugin) Name() string { return p.name }

// RegistryName returns "table": the plugin lives in osquery's table registry.
func (p *TablePlugin) RegistryName() string { return "table" }

// Routes returns the column definitions osquery attaches the table with.
func (p *TablePlugin) Routes() osquery.ExtensionPluginResponse { return p.routes }

// Ping reports the plugin healthy.
func (p *TablePlugin) Ping() osquery.ExtensionStatus {
	return osquery.ExtensionStatus{Code: 0, Message: "OK"}
}

// Shutdown does nothing: a table holds nothing to release.
func (p *TablePlugin) Shutdown() {}

// Call answers osquery's "generate" and "columns" actions. A failure is a
// response with status code 1 and the error's text, which osquery shows as
// the query's error. The tables are read-only: insert, update and delete are
// refused.
func (p *TablePlugin) Call(ctx context.Context, req osquery.ExtensionPluginRequest) osquery.ExtensionResponse {
	switch action := req["action"]; action {
	case "generate":
		q, err := ParseContext(p.table, req["context"])
		if err != nil {
			return failure(err.Error())
		}
		rows, err := Collect(ctx, p.table, q, p.maxRows)
		if err != nil {
			return failure(err.Error())
		}
		return osquery.ExtensionResponse{Status: ok(), Response: rows}
	case "columns":
		return osquery.ExtensionResponse{Status: ok(), Response: p.routes}
	case "insert", "update", "delete":
		return failure("table " + p.name + " is read-only")
	default:
		return failure("table " + p.name + ": unknown action " + action)
	}
}

func ok() *osquery.ExtensionStatus { return &osquery.ExtensionStatus{Code: 0, Message: "OK"} }

func failure(msg string) osquery.ExtensionResponse {
	return osquery.ExtensionResponse{Status: &osquery.ExtensionStatus{Code: 1, Message: msg}}
}
