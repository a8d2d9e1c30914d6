// Package intel holds Quarry's threat intelligence: indicators of compromise
// (file hashes, IP addresses and networks, domains, URLs) loaded from STIX 2.1
// bundles, MISP event exports and plain lists, kept per feed in a SQLite file
// of the data directory (DB), and matched against telemetry.Event values by
// an in-memory Matcher, live (per event) or retrospectively over the event
// store (Hunt). Indicators carry the ATT&CK techniques, groups and software
// their intel links them to; a Linker resolves those against the ATT&CK
// knowledge base so that a hit says which group it points at and what that
// group does.
package intel
