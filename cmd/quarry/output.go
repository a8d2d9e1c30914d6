package main

import (
	"bufio"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/quarry-sec/quarry/tables"
)

// Output formats of query results.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatCSV   = "csv"
	formatLine  = "line"
)

var formats = []string{formatTable, formatJSON, formatCSV, formatLine}

func checkFormat(f string) error {
	for _, ok := range formats {
		if f == ok {
			return nil
		}
	}
	return fmt.Errorf("unknown format %q (want one of %s)", f, strings.Join(formats, ", "))
}

// tableWidthSample is how many rows the table format reads to size its
// columns before it starts printing; later rows keep those widths.
const tableWidthSample = 1000

// writeRows streams rows to w in the given format and returns the row count.
func writeRows(w io.Writer, rows *sql.Rows, format string) (int, error) {
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	next := func() (bool, error) {
		if !rows.Next() {
			return false, rows.Err()
		}
		for i := range vals {
			vals[i] = nil
		}
		if err := rows.Scan(ptrs...); err != nil {
			return false, err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		return true, nil
	}
	switch format {
	case formatJSON:
		return writeJSON(bw, cols, vals, next)
	case formatCSV:
		return writeCSV(bw, cols, vals, next)
	case formatLine:
		return writeLine(bw, cols, vals, next)
	default:
		return writeTable(bw, cols, vals, next)
	}
}

func writeJSON(w *bufio.Writer, cols []string, vals []any, next func() (bool, error)) (int, error) {
	keys := make([][]byte, len(cols))
	for i, c := range cols {
		keys[i], _ = json.Marshal(c)
	}
	n := 0
	w.WriteString("[")
	for {
		ok, err := next()
		if err != nil {
			w.WriteString("]\n")
			return n, err
		}
		if !ok {
			break
		}
		if n > 0 {
			w.WriteString(",")
		}
		w.WriteString("\n  {")
		for i, v := range vals {
			if i > 0 {
				w.WriteString(", ")
			}
			w.Write(keys[i])
			w.WriteString(": ")
			if err := writeJSONValue(w, v); err != nil {
				return n, err
			}
		}
		w.WriteString("}")
		n++
	}
	if n > 0 {
		w.WriteString("\n")
	}
	w.WriteString("]\n")
	return n, nil
}

func writeJSONValue(w *bufio.Writer, v any) error {
	switch x := v.(type) {
	case nil:
		w.WriteString("null")
	case int64:
		w.WriteString(strconv.FormatInt(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			w.WriteString("null")
		} else {
			w.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		w.Write(b)
	}
	return nil
}

func writeCSV(w io.Writer, cols []string, vals []any, next func() (bool, error)) (int, error) {
	cw := csv.NewWriter(w)
	defer cw.Flush()
	if err := cw.Write(cols); err != nil {
		return 0, err
	}
	rec := make([]string, len(cols))
	n := 0
	for {
		ok, err := next()
		if err != nil || !ok {
			return n, err
		}
		for i, v := range vals {
			rec[i] = textOf(v)
		}
		if err := cw.Write(rec); err != nil {
			return n, err
		}
		n++
	}
}

func writeLine(w *bufio.Writer, cols []string, vals []any, next func() (bool, error)) (int, error) {
	width := 0
	for _, c := range cols {
		width = max(width, utf8.RuneCountInString(c))
	}
	n := 0
	for {
		ok, err := next()
		if err != nil || !ok {
			return n, err
		}
		if n > 0 {
			w.WriteString("\n")
		}
		for i, v := range vals {
			fmt.Fprintf(w, "%*s = %s\n", width, cols[i], textOf(v))
		}
		n++
	}
}

// writeTable draws osqueryi's box: +---+ borders, a header, one line a row.
func writeTable(w *bufio.Writer, cols []string, vals []any, next func() (bool, error)) (int, error) {
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = utf8.RuneCountInString(c)
	}
	var sample [][]string
	var readErr error
	for len(sample) < tableWidthSample {
		ok, err := next()
		if err != nil {
			readErr = err
			break
		}
		if !ok {
			break
		}
		rec := make([]string, len(vals))
		for i, v := range vals {
			rec[i] = cellText(v)
			widths[i] = max(widths[i], utf8.RuneCountInString(rec[i]))
		}
		sample = append(sample, rec)
	}
	if len(sample) == 0 && readErr != nil {
		return 0, readErr
	}
	border := func() {
		for _, wd := range widths {
			w.WriteString("+")
			w.WriteString(strings.Repeat("-", wd+2))
		}
		w.WriteString("+\n")
	}
	line := func(rec []string) {
		for i, s := range rec {
			w.WriteString("| ")
			w.WriteString(s)
			w.WriteString(strings.Repeat(" ", max(0, widths[i]-utf8.RuneCountInString(s))+1))
		}
		w.WriteString("|\n")
	}
	border()
	line(cols)
	border()
	for _, rec := range sample {
		line(rec)
	}
	n := len(sample)
	if readErr == nil && len(sample) == tableWidthSample {
		rec := make([]string, len(vals))
		for {
			ok, err := next()
			if err != nil {
				readErr = err
				break
			}
			if !ok {
				break
			}
			for i, v := range vals {
				rec[i] = cellText(v)
			}
			line(rec)
			n++
		}
	}
	if len(cols) > 0 {
		border()
	}
	return n, readErr
}

// textOf renders a value for csv and line output: NULL as empty.
func textOf(v any) string { return tables.ValueString(v) }

// cellText is textOf on one line: a table cell cannot hold a newline.
func cellText(v any) string {
	s := textOf(v)
	if strings.ContainsAny(s, "\n\r\t") {
		s = strings.NewReplacer("\r\n", "\\n", "\n", "\\n", "\r", "\\r", "\t", " ").Replace(s)
	}
	return s
}
