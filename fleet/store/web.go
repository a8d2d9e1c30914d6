package store

import (
	"context"
	"time"
)

// WebQueries are the reads the web UI (fleet/web) needs besides Store's.
// The SQLite and PostgreSQL stores implement it; the UI asks for it with a
// type assertion.
type WebQueries interface {
	// DetectionByID returns one detection with its host's identifier and
	// name, or ErrNotFound.
	DetectionByID(ctx context.Context, id int64) (*Detection, error)
	// HostByID returns a host by its ID, or ErrNotFound.
	HostByID(ctx context.Context, id string) (*Host, error)
	// CountHosts counts the enrolled hosts and those seen at or after
	// onlineSince.
	CountHosts(ctx context.Context, onlineSince time.Time) (total, online int, err error)
	// CountBySeverity counts the detections matching f (Limit and Offset
	// ignored) per severity.
	CountBySeverity(ctx context.Context, f DetectionFilter) (map[string]int64, error)
	// RecentHunts returns the latest hunts, newest first.
	RecentHunts(ctx context.Context, limit int) ([]Hunt, error)
}
