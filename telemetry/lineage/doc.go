// Package lineage remembers recent processes so that events can name their
// parent (ParentPath, ParentCmdline) even when the parent has already
// exited, and exit events can name what exited.
//
// A process is identified by its pid and start time, so a reused pid is a
// new process; an exec by a process already known (same pid and start
// time) replaces its image and keeps its parent. Exited processes are kept
// for Options.ExitedTTL, and the cache holds at most Options.MaxEntries
// processes, forgetting the least recently used first.
package lineage
