package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterh/liner"
	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/internal/interrupt"
	"github.com/quarry-sec/quarry/tables"
)

const shellHelp = `Enter SQL ending with ';' (a statement may span lines), or a command:
  .tables [TEXT]     list tables (whose name contains TEXT)
  .schema [TABLE]    show the CREATE TABLE of one table, or of all
  .mode [MODE]       show or set the output mode: table, json, csv, line
  .timer on|off      print how long each query took
  .help              this text
  .quit / .exit      leave (or Ctrl-D)
Example: SELECT id, name FROM attack_techniques WHERE name LIKE '%credential%';`

// defaultShellTimeout bounds a shell statement unless --timeout says
// otherwise: a runaway query gives the prompt back.
const defaultShellTimeout = 5 * time.Minute

func (a *app) shellCommand() *cobra.Command {
	var format string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "shell",
		Short: "Interactive SQL shell over Quarry's tables (like osqueryi)",
		Long: "Interactive SQL shell over Quarry's tables (like osqueryi), with history in the data\n" +
			"directory and tab completion of tables and columns. When standard input is not a\n" +
			"terminal it runs it as a script (exit 1 when a statement failed):\n\n" +
			"  echo \"SELECT count(*) FROM attack_techniques;\" | quarry shell --format csv\n\n" + shellHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return usageError{err}
			}
			e, err := a.openEngine()
			if err != nil {
				return err
			}
			s := &shell{engine: e, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), mode: format, timeout: timeout}
			in := cmd.InOrStdin()
			if isTerminal(in) {
				return s.interactive(filepath.Join(a.dataDir, "shell_history"))
			}
			return s.script(in)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", formatTable, "initial output mode: table, json, csv or line")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultShellTimeout, "stop each statement after this long (0: no limit); Ctrl-C stops it at once")
	return cmd
}

// shell reads statements and dot-commands and prints their results.
type shell struct {
	engine  *sqlengine.Engine
	out     io.Writer
	errOut  io.Writer
	mode    string
	timer   bool
	failed  bool          // a statement of a script failed
	timeout time.Duration // per statement; 0: none
}

// isTerminal reports whether v (a reader or writer) is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// colourOn reports whether output to w may be coloured: w is a terminal and
// NO_COLOR is not set.
func colourOn(w io.Writer) bool { return isTerminal(w) && os.Getenv("NO_COLOR") == "" }

func (s *shell) interactive(historyPath string) error {
	ln := liner.NewLiner()
	defer ln.Close()
	ln.SetCtrlCAborts(true)
	ln.SetMultiLineMode(true)
	ln.SetCompleter(s.complete)
	if f, err := os.Open(historyPath); err == nil {
		ln.ReadHistory(f)
		f.Close()
	}
	defer func() {
		if err := os.MkdirAll(filepath.Dir(historyPath), 0o700); err == nil {
			if f, err := os.OpenFile(historyPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
				ln.WriteHistory(f)
				f.Close()
			}
		}
	}()
	fmt.Fprintf(s.out, "Quarry %s shell on the embedded engine. Type .help for help.\n", version)
	var buf strings.Builder
	for {
		prompt := "quarry> "
		if buf.Len() > 0 {
			prompt = "    ...> "
		}
		line, err := ln.Prompt(prompt)
		if errors.Is(err, liner.ErrPromptAborted) {
			buf.Reset() // Ctrl-C drops the statement being typed
			continue
		}
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(s.out)
			return nil
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		stmt, done, quit := s.feed(&buf, line)
		if quit {
			return nil
		}
		if done {
			ln.AppendHistory(strings.TrimSpace(stmt))
		}
	}
}

// script runs statements read from a non-terminal input; a failed statement
// is reported and the script goes on, and the exit code says it failed.
func (s *shell) script(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var buf strings.Builder
	for sc.Scan() {
		if _, _, quit := s.feed(&buf, sc.Text()); quit {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	if rest := strings.TrimSpace(buf.String()); rest != "" {
		s.exec(rest)
	}
	if s.failed {
		return errors.New("some statements failed")
	}
	return nil
}

// feed adds a line; it runs a dot-command or a statement once complete and
// returns the text run, whether something ran, and whether to quit.
func (s *shell) feed(buf *strings.Builder, line string) (string, bool, bool) {
	trimmed := strings.TrimSpace(line)
	if buf.Len() == 0 {
		if trimmed == "" {
			return "", false, false
		}
		if strings.HasPrefix(trimmed, ".") {
			return trimmed, true, s.dot(trimmed)
		}
	}
	buf.WriteString(line)
	buf.WriteByte('\n')
	if !statementComplete(buf.String()) {
		return "", false, false
	}
	stmt := buf.String()
	buf.Reset()
	s.exec(stmt)
	return stmt, true, false
}

// statementComplete reports whether sql ends with a ';' outside quotes and
// comments.
func statementComplete(sql string) bool {
	var quote byte
	last := byte(0)
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			continue
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '[':
			quote = ']'
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return false
			}
			i += end + 3
			continue
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			last = c
		}
	}
	return quote == 0 && last == ';'
}

func (s *shell) exec(sql string) {
	ctx, stop := interrupt.Context(context.Background())
	defer stop()
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	start := time.Now()
	n, err := runQuery(ctx, s.engine, s.out, sql, s.mode)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("statement stopped after --timeout %s: %w", s.timeout, err)
	}
	if err != nil {
		s.failed = true
		fmt.Fprintf(s.errOut, "Error: %v\n", err)
		return
	}
	if s.timer {
		fmt.Fprintf(s.errOut, "%d rows in %s\n", n, time.Since(start).Round(time.Microsecond))
	}
}

// dot runs a dot-command and reports whether to quit.
func (s *shell) dot(line string) bool {
	fields := strings.Fields(line)
	cmd, args := fields[0], fields[1:]
	reg := s.engine.Registry()
	switch cmd {
	case ".quit", ".exit", ".q":
		return true
	case ".help":
		io.WriteString(s.out, shellHelp+"\n")
	case ".tables":
		for _, name := range reg.Names() {
			if len(args) == 0 || strings.Contains(name, args[0]) {
				fmt.Fprintf(s.out, "  => %s\n", name)
			}
		}
	case ".schema":
		if len(args) == 0 {
			for _, t := range reg.Tables() {
				fmt.Fprintln(s.out, createStatement(t))
			}
			break
		}
		for _, name := range args {
			t, ok := reg.Table(name)
			if !ok {
				s.failed = true
				msg := fmt.Sprintf("Error: no such table: %s", name)
				if close := reg.Closest(name, 3); len(close) > 0 {
					msg += " (did you mean " + strings.Join(close, ", ") + "?)"
				}
				fmt.Fprintln(s.errOut, msg)
				continue
			}
			fmt.Fprintln(s.out, createStatement(t))
		}
	case ".mode":
		if len(args) == 0 {
			fmt.Fprintf(s.out, "mode: %s\n", s.mode)
			break
		}
		if err := checkFormat(args[0]); err != nil {
			s.failed = true
			fmt.Fprintf(s.errOut, "Error: %v\n", err)
			break
		}
		s.mode = args[0]
	case ".timer":
		s.timer = len(args) > 0 && (args[0] == "on" || args[0] == "1")
	default:
		s.failed = true
		fmt.Fprintf(s.errOut, "Error: unknown command %s (try .help)\n", cmd)
	}
	return false
}

// complete offers table names, column names and dot-commands for the word
// under the cursor.
func (s *shell) complete(line string) []string {
	start := strings.LastIndexAny(line, " \t(,=") + 1
	prefix, word := line[:start], line[start:]
	var out []string
	add := func(c string) {
		if strings.HasPrefix(strings.ToLower(c), strings.ToLower(word)) {
			out = append(out, prefix+c)
		}
	}
	if start == 0 && strings.HasPrefix(word, ".") {
		for _, c := range []string{".tables", ".schema", ".mode", ".timer", ".help", ".quit", ".exit"} {
			add(c)
		}
		return out
	}
	seen := map[string]bool{}
	for _, t := range s.engine.Registry().Tables() {
		add(t.Name)
		if strings.Contains(line, t.Name) {
			for _, c := range t.Columns {
				if !seen[c.Name] {
					seen[c.Name] = true
					add(c.Name)
				}
			}
		}
	}
	return out
}

// createStatement renders a table's schema as osqueryi's .schema does.
func createStatement(t *tables.Table) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s(", t.Name)
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "`%s` %s", c.Name, c.Type)
		if c.Hidden {
			b.WriteString(" HIDDEN")
		}
	}
	b.WriteString(");")
	return b.String()
}
