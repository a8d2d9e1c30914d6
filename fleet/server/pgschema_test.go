package server

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// pgSchema creates a schema for one test, dropped at its end, and returns
// dsn with search_path set to it.
func pgSchema(t testing.TB, dsn string) string {
	t.Helper()
	name := fmt.Sprintf("quarry_srv_%d_%d", os.Getpid(), time.Now().UnixNano())
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err == nil {
			db.Exec("DROP SCHEMA " + name + " CASCADE")
			db.Close()
		}
	})
	if strings.Contains(dsn, "://") {
		if strings.Contains(dsn, "?") {
			return dsn + "&search_path=" + name
		}
		return dsn + "?search_path=" + name
	}
	return dsn + " search_path=" + name
}
