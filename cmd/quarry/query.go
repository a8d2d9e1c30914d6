package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/internal/interrupt"
)

func (a *app) queryCommand() *cobra.Command {
	var format string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "query [--format table|json|csv|line] SQL",
		Short: "Run one SQL query on the embedded engine",
		Long: `Run one read-only SQL query over Quarry's tables and print the result.
SQL may be given as several words, or '-' to read it from standard input.

  quarry query "SELECT id, name FROM attack_techniques WHERE tactics LIKE '%persistence%'"
  quarry query --format json "SELECT * FROM attack_tactics ORDER BY matrix_order"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("query: give the SQL to run")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			// Ctrl-C is caught from the start, so one pressed while the
			// engine opens still stops the command.
			ctx, stop := interrupt.Context(context.Background())
			defer stop()
			if err := checkFormat(format); err != nil {
				return usageError{err}
			}
			sql := strings.Join(args, " ")
			if sql == "-" {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("read SQL from stdin: %w", err)
				}
				sql = string(b)
			}
			if strings.TrimSpace(sql) == "" {
				return usageError{errors.New("query: the SQL is empty")}
			}
			e, err := a.openEngine()
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("query: interrupted: %w", err)
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			_, err = runQuery(ctx, e, cmd.OutOrStdout(), sql, format)
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("query: stopped after --timeout %s: %w", timeout, err)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", formatTable, "output format: table, json, csv or line")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "stop the query after this long (e.g. 30s; 0: no limit)")
	return cmd
}

// runQuery runs sql and writes its rows in format; it returns the row count.
func runQuery(ctx context.Context, e *sqlengine.Engine, w io.Writer, sql, format string) (int, error) {
	rows, err := e.Query(ctx, sql)
	if err != nil {
		return 0, describeQueryError(sql, err)
	}
	defer rows.Close()
	n, err := writeRows(w, rows, format)
	if err != nil {
		return n, describeQueryError(sql, err)
	}
	return n, nil
}

// describeQueryError adds where in the SQL a syntax error is, with a caret.
func describeQueryError(sql string, err error) error {
	var se *sqlengine.SyntaxError
	if errors.As(err, &se) && se.Line > 0 {
		lines := strings.Split(sql, "\n")
		if se.Line <= len(lines) {
			text := strings.TrimRight(lines[se.Line-1], "\r")
			caret := strings.Repeat(" ", max(0, se.Column-1)) + "^"
			return fmt.Errorf("%w\n  %s\n  %s", err, text, caret)
		}
	}
	return err
}
