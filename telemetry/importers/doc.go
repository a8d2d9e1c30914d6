// Package importers reads recorded endpoint telemetry — Sysmon and Windows
// event logs (EVTX, flat or nested JSON), Security 4688/4689, auditd raw logs
// (execve, and connect/bind/accept, opens for writing, unlink, rename and
// module loads as network_connection, file_event, file_delete, file_rename
// and driver_load events) and their JSON form (execve), Sysmon for Linux —
// and yields normalized telemetry.Event values through a telemetry.Reader.
//
// Open detects the format from the file's first bytes, never from its name.
// A malformed record comes back as a *telemetry.RecordError naming the file
// and line (or record number); reading goes on with the next record. Every
// Windows EventData field is kept in Event.Fields under its original name,
// beside the System fields Sigma rules use (EventID, Channel, Computer,
// Provider_Name), so detections written against Windows names find them.
//
// Values are bounded (MaxCommandLine, MaxScriptText, MaxValue; a cut event is
// Truncated) and readers hold at most MaxRecord bytes of one record, so
// memory stays flat on pathological input. Inputs expands directories and
// zip archives into recordings; gzip files are read through.
package importers
