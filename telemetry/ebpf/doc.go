// Package ebpf is Quarry's eBPF process collector: BPF programs on the
// sched_process_exec and sched_process_exit tracepoints (tp_btf, with
// raw_tracepoint as a fallback) write one record per exec and per process
// exit into a ring buffer, and user space drains the ring on a timer,
// turning each record into a telemetry.Event with Source ebpf.
//
// The kernel side captures pid, ppid, uids and gids, the login uid, the
// start time, the cgroup id, comm, argv (up to 8 KiB), the resolved
// executable path and the working directory (walked dentry by dentry, at
// most 40 steps), and on exit the exit code and signal.
//
// The collector is Linux-only: on other systems the package holds only the
// capture names and default path filters (captures.go), so that flags and
// reports that name them build everywhere.
package ebpf
