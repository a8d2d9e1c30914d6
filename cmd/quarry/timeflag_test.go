package main

import (
	"testing"
	"time"
)

// TestParseTimeFlag: --since and --until take a time, a date or an age
// (a Go duration or days, as the docs' `intel hunt --since 30d` does).
func TestParseTimeFlag(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"90m", now.Add(-90 * time.Minute)},
		{"30d", now.AddDate(0, 0, -30)},
		{"0d", now},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-11-01T10:00:00Z", time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)},
	} {
		got, err := parseTimeFlag("since", tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseTimeFlag(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"d", "-3d", "30days", "yesterday"} {
		if _, err := parseTimeFlag("since", bad, now); err == nil {
			t.Errorf("parseTimeFlag(%q) took it", bad)
		}
	}
}
