package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/tables"
)

func (a *app) tablesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tables [TABLE...]",
		Short: "Show the schema of every table (or of the named ones)",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.openEngine()
			if err != nil {
				return err
			}
			reg := e.Registry()
			var list []*tables.Table
			if len(args) == 0 {
				list = reg.Tables()
			}
			for _, name := range args {
				t, ok := reg.Table(name)
				if !ok {
					msg := fmt.Sprintf("no such table: %s", name)
					if close := reg.Closest(name, 3); len(close) > 0 {
						msg += " (did you mean " + strings.Join(close, ", ") + "?)"
					}
					return fmt.Errorf("%s", msg)
				}
				list = append(list, t)
			}
			if asJSON {
				return writeSchemasJSON(cmd.OutOrStdout(), list)
			}
			writeSchemas(cmd.OutOrStdout(), list)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the schemas as JSON")
	return cmd
}

func columnFlags(c tables.Column) string {
	var f []string
	if c.Index {
		f = append(f, "index")
	}
	if c.Additional {
		f = append(f, "additional")
	}
	if c.Required {
		f = append(f, "required")
	}
	if c.Hidden {
		f = append(f, "hidden")
	}
	return strings.Join(f, ",")
}

func writeSchemas(w io.Writer, list []*tables.Table) {
	for i, t := range list {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s — %s\n", t.Name, t.Description)
		width := 0
		for _, c := range t.Columns {
			width = max(width, len(c.Name))
		}
		for _, c := range t.Columns {
			flags := columnFlags(c)
			if flags != "" {
				flags = " [" + flags + "]"
			}
			fmt.Fprintf(w, "  %-*s  %-7s %s%s\n", width, c.Name, c.Type, c.Description, flags)
		}
	}
}

type columnJSON struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description"`
	Index       bool   `json:"index,omitempty"`
	Additional  bool   `json:"additional,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Hidden      bool   `json:"hidden,omitempty"`
}

type tableJSON struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Columns     []columnJSON `json:"columns"`
}

func writeSchemasJSON(w io.Writer, list []*tables.Table) error {
	out := make([]tableJSON, 0, len(list))
	for _, t := range list {
		tj := tableJSON{Name: t.Name, Description: t.Description}
		for _, c := range t.Columns {
			tj.Columns = append(tj.Columns, columnJSON{c.Name, c.Type.String(), c.Description, c.Index, c.Additional, c.Required, c.Hidden})
		}
		out = append(out, tj)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
