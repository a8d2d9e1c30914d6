package server

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/quarry-sec/quarry/fleet/store"
)

func TestParseTableDefinition(t *testing.T) {
	col := func(name, typ string) store.TableColumn { return store.TableColumn{Name: name, Type: typ} }
	hidden := func(name, typ string) store.TableColumn {
		return store.TableColumn{Name: name, Type: typ, Hidden: true}
	}
	tests := []struct {
		name string
		def  string
		want string
		cols []store.TableColumn
		ok   bool
	}{
		{"osquery", "CREATE VIRTUAL TABLE temp.processes USING processes(`pid` BIGINT, `name` TEXT, `path` TEXT)",
			"processes", []store.TableColumn{col("pid", "BIGINT"), col("name", "TEXT"), col("path", "TEXT")}, true},
		{"hidden and two-word types",
			"CREATE VIRTUAL TABLE temp.file USING file(`path` TEXT, `inode` UNSIGNED BIGINT, `pid_with_namespace` INTEGER HIDDEN, `directory` TEXT)",
			"file", []store.TableColumn{col("path", "TEXT"), col("inode", "UNSIGNED BIGINT"), hidden("pid_with_namespace", "INTEGER"), col("directory", "TEXT")}, true},
		{"primary key and without rowid",
			"CREATE VIRTUAL TABLE temp.users USING users(`uid` BIGINT, `username` TEXT, `uuid` TEXT, PRIMARY KEY (`uid`, `uuid`)) WITHOUT ROWID",
			"users", []store.TableColumn{col("uid", "BIGINT"), col("username", "TEXT"), col("uuid", "TEXT")}, true},
		{"bare names, lower case", "create virtual table temp.t using t(a integer, b text hidden)",
			"t", []store.TableColumn{col("a", "INTEGER"), hidden("b", "TEXT")}, true},
		{"double quotes, brackets, escapes",
			`CREATE TABLE "main"."we""ird" ("a""b" TEXT NOT NULL DEFAULT 'x,y', [c d] VARCHAR(255), e DOUBLE)`,
			`we"ird`, []store.TableColumn{col(`a"b`, "TEXT"), col("c d", "VARCHAR(255)"), col("e", "DOUBLE")}, true},
		{"doubled backtick in a name", "CREATE VIRTUAL TABLE temp.q USING q(`a``b` TEXT)",
			"q", []store.TableColumn{col("a`b", "TEXT")}, true},
		{"plain table, typeless column", "CREATE TABLE IF NOT EXISTS x (a, b INT)",
			"x", []store.TableColumn{col("a", ""), col("b", "INT")}, true},
		{"Quarry's agent: no columns", `CREATE VIRTUAL TABLE "attack_groups" USING quarry(attack_groups)`,
			"attack_groups", nil, true},
		{"newlines and repeated column", "CREATE VIRTUAL TABLE temp.n USING n(\n  `a` TEXT,\n  `a` BIGINT,\n  `b`\tBLOB\n)",
			"n", []store.TableColumn{col("a", "TEXT"), col("b", "BLOB")}, true},
		{"unreadable entries skipped", "CREATE VIRTUAL TABLE temp.s USING s(`a` TEXT, , (x), `b` INTEGER)",
			"s", []store.TableColumn{col("a", "TEXT"), col("b", "INTEGER")}, true},
		{"a view", "CREATE VIEW v AS SELECT 1", "", nil, false},
		{"an index", "CREATE INDEX i ON t (a)", "", nil, false},
		{"unclosed", "CREATE VIRTUAL TABLE temp.u USING u(`a` TEXT", "", nil, false},
		{"no name", "CREATE TABLE (a TEXT)", "", nil, false},
		{"empty", "", "", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, cols, ok := ParseTableDefinition(tc.def)
			if name != tc.want || ok != tc.ok || !reflect.DeepEqual(cols, tc.cols) {
				t.Errorf("ParseTableDefinition(%q) = %q, %+v, %v; want %q, %+v, %v", tc.def, name, cols, ok, tc.want, tc.cols, tc.ok)
			}
		})
	}
}

// FuzzParseTableDefinition: any input returns (never panics or loops), and
// what it returns is sane: columns are named, once each, and a table with
// columns has a name.
func FuzzParseTableDefinition(f *testing.F) {
	for _, s := range []string{
		"CREATE VIRTUAL TABLE temp.processes USING processes(`pid` BIGINT, `name` TEXT HIDDEN, PRIMARY KEY (`pid`)) WITHOUT ROWID",
		`CREATE TABLE "a"."b" ("c""d" VARCHAR(1), [e] INT DEFAULT (1))`,
		"CREATE TABLE t(a", "CREATE TABLE `t(a", "CREATE TEMP TABLE [x", "create table t ((((", "CREATE TABLE t()",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, def string) {
		name, cols, ok := ParseTableDefinition(def)
		if !ok && (name != "" || cols != nil) {
			t.Fatalf("not ok but returned %q, %v", name, cols)
		}
		if ok && name == "" {
			t.Fatalf("ok without a name: %q", def)
		}
		seen := map[string]bool{}
		for _, c := range cols {
			if c.Name == "" || seen[c.Name] {
				t.Fatalf("column %+v empty or repeated in %v", c, cols)
			}
			seen[c.Name] = true
			if utf8.ValidString(def) && !utf8.ValidString(c.Name) {
				t.Fatalf("column name %q is not valid UTF-8 though the input is", c.Name)
			}
			if c.Type != "" && strings.ContainsAny(c.Type[:1], "`\"'[(") {
				t.Fatalf("type %q starts with a quote or parenthesis", c.Type)
			}
		}
	})
}
