// Package pgtest gives a test a PostgreSQL schema of its own in the database
// named by $QUARRY_TEST_POSTGRES (.ci/run starts a throwaway PostgreSQL and
// sets it), so tests of one run, and runs side by side, never see each
// other's tables.
package pgtest

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// EnvDSN names the environment variable with the test database's DSN.
const EnvDSN = "QUARRY_TEST_POSTGRES"

var seq atomic.Int64

// DSN returns $QUARRY_TEST_POSTGRES, or skips the test without it.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		t.Skipf("PostgreSQL skipped: %s is not set (.ci/run starts a throwaway PostgreSQL and sets it)", EnvDSN)
	}
	return dsn
}

// Schema creates a schema for one test in the database of dsn, dropped when
// the test ends, and returns dsn with its search_path set to that schema
// (a URL's query parameter or a key=value pair, as dsn is written).
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	name := fmt.Sprintf("quarry_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, seq.Add(1))
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", dsn)
		if err == nil {
			admin.Exec("DROP SCHEMA " + name + " CASCADE")
			admin.Close()
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

// FreshSchema is Schema on $QUARRY_TEST_POSTGRES's database, or skips the
// test without it.
func FreshSchema(t testing.TB) string {
	t.Helper()
	return Schema(t, DSN(t))
}
