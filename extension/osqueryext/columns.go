package osqueryext

import (
	"strconv"

	"github.com/osquery/osquery-go/gen/osquery"
	"github.com/osquery/osquery-go/plugin/table"

	"github.com/quarry-sec/quarry/tables"
)

// ColumnDefinitions returns the osquery column definitions of t: each
// column's osquery type (TEXT, INTEGER, BIGINT, DOUBLE) and its index,
// required, additional and hidden options. osqueryd forwards WHERE
// constraints to an extension only for index, required and additional
// columns, so these flags decide what a table's Generate gets to see.
func ColumnDefinitions(t *tables.Table) []table.ColumnDefinition {
	defs := make([]table.ColumnDefinition, len(t.Columns))
	for i, c := range t.Columns {
		defs[i] = table.ColumnDefinition{
			Name:        c.Name,
			Type:        columnType(c.Type),
			Description: c.Description,
			Index:       c.Index,
			Required:    c.Required,
			Additional:  c.Additional,
			Hidden:      c.Hidden,
		}
	}
	return defs
}

// columnType maps a Quarry column type to osquery's name for it.
func columnType(t tables.ColumnType) table.ColumnType {
	switch t {
	case tables.Text:
		return table.ColumnTypeText
	case tables.Integer:
		return table.ColumnTypeInteger
	case tables.BigInt:
		return table.ColumnTypeBigInt
	case tables.Double:
		return table.ColumnTypeDouble
	}
	return table.ColumnTypeUnknown
}

// routes renders column definitions as the route information osquery reads
// at registration and on the "columns" action: one map per column with its
// name, type and option bitmask ("op").
func routes(defs []table.ColumnDefinition) osquery.ExtensionPluginResponse {
	out := make(osquery.ExtensionPluginResponse, len(defs))
	for i := range defs {
		out[i] = map[string]string{
			"id":   "column",
			"name": defs[i].Name,
			"type": string(defs[i].Type),
			"op":   strconv.FormatUint(uint64(defs[i].Options()), 10),
		}
	}
	return out
}
