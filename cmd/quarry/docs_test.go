package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docQuery is one SQL statement of the documentation, with where it is.
type docQuery struct {
	file string
	line int
	sql  string
}

// docQueries returns the statements of every ```sql block in the README and
// docs/, except blocks meant for osqueryi (they join osquery's own tables).
func docQueries(t *testing.T) []docQuery {
	t.Helper()
	files := []string{"../../README.md"}
	more, _ := filepath.Glob("../../docs/*.md")
	files = append(files, more...)
	var out []docQuery
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		var in, skip bool
		var cur strings.Builder
		start, n := 0, 0
		for sc.Scan() {
			n++
			line := sc.Text()
			trimmed := strings.TrimSpace(line)
			switch {
			case !in && strings.HasPrefix(trimmed, "```sql"):
				in, skip = true, false
				cur.Reset()
				continue
			case in && strings.HasPrefix(trimmed, "```"):
				in = false
				continue
			case !in:
				continue
			}
			if cur.Len() == 0 && strings.HasPrefix(trimmed, "-- osqueryi") {
				skip = true
			}
			if skip {
				continue
			}
			if cur.Len() == 0 {
				if trimmed == "" {
					continue
				}
				start = n
			}
			cur.WriteString(line + "\n")
			if strings.HasSuffix(trimmed, ";") {
				out = append(out, docQuery{file: filepath.Base(name), line: start, sql: cur.String()})
				cur.Reset()
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// telemetryTable matches the tables whose rows come from the event store:
// on a small recording their queries may rightly be empty.
var telemetryTable = regexp.MustCompile(`\b(\w+_events|events|ioa_hits|ioc_hits|incidents|incident_hits|process_tree|related_incidents|process_activity|sandbox_runs)\b`)

// Every query of the README and docs/ runs, on a store holding a small
// recording; those over ATT&CK alone return rows.
func TestDocumentedQueriesRun(t *testing.T) {
	dir := t.TempDir()
	if _, errs, code := quarry(t, dir, "", "import", "testdata/mshta-chain.json"); code != 0 {
		t.Fatalf("import: exit %d: %s", code, errs)
	}
	qs := docQueries(t)
	if len(qs) < 5 {
		t.Fatalf("found %d documented queries; the README's blocks moved?", len(qs))
	}
	for _, q := range qs {
		out, errs, code := quarry(t, dir, q.sql, "query", "--format", "csv", "-")
		if code != 0 {
			t.Errorf("%s:%d: exit %d: %s\n%s", q.file, q.line, code, errs, q.sql)
			continue
		}
		rows := strings.Count(strings.TrimSpace(out), "\n") // the header is the first line
		if rows == 0 && !telemetryTable.MatchString(q.sql) {
			t.Errorf("%s:%d: no rows\n%s", q.file, q.line, q.sql)
		}
	}
}
