package telemetry

import "time"

// IOCSighting is one indicator of a threat intelligence feed found in one
// event: an ioc_hits row. The same HitID names the event store's hit rows
// of kind KindIOC that carry the sighting to incidents, process trees and
// the fleet; the sighting keeps what only an indicator has (its type, feed,
// confidence, where it was found, the groups and software it is linked to).
type IOCSighting struct {
	HitID string
	// Time is the event's; DetectedAt when the match was made (a hunt finds
	// old events).
	Time, DetectedAt time.Time
	Host             string
	// Indicator is the indicator's normalized value; Type its kind (sha256,
	// sha1, md5, ipv4, ipv6, cidr, domain, url); Source the feed.
	Indicator, Type, Source string
	Confidence              int // the feed's, 0–100
	// Field names where the value was found (Hashes, DestinationIp,
	// QueryName, cmdline…); Value is the value as the event holds it.
	Field, Value string
	EID          int64 // the event's eid in the event store, 0 when not stored
	PID          int64
	ProcessKey   string
	Path         string
	// Techniques, Groups and Malware are the ATT&CK IDs the intel links
	// the indicator to.
	Techniques, Groups, Malware []string
	// Context names the linked groups and software and what they use.
	Context string
}
