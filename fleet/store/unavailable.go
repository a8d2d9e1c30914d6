package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Unavailable reports whether err means the database could not be reached
// or refused work for now — a connection refused, reset or lost, the
// server shutting down or starting, too many connections, SQLite's file
// locked or unreadable, a write timing out — rather than a problem with
// the request: asking again later may succeed. Servers answer such
// failures 503 with Retry-After.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// PostgreSQL (pgconn.PgError): connection exceptions (class 08),
	// operator intervention (57P01 admin shutdown, 57P02 crash shutdown,
	// 57P03 cannot connect now) and insufficient resources (class 53:
	// too many connections, disk full, out of memory).
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		code := pg.SQLState()
		return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") ||
			code == "57P01" || code == "57P02" || code == "57P03"
	}
	// SQLite (modernc.org/sqlite's *Error): busy, locked, I/O error,
	// full, cannot open (primary result codes in the low byte).
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() & 0xff {
		case 5, 6, 10, 13, 14:
			return true
		}
	}
	// pgx reports a lost or refused connection as text in some paths.
	msg := err.Error()
	return strings.Contains(msg, "failed to connect") || strings.Contains(msg, "conn closed") ||
		strings.Contains(msg, "connection refused")
}
