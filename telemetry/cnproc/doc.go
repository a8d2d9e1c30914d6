// Package cnproc is Quarry's fallback process collector: the netlink
// process connector (NETLINK_CONNECTOR, CN_IDX_PROC) tells which pid forked,
// exec'd or exited, and each exec is filled in from /proc/<pid>. It works on
// kernels where the eBPF collector cannot load.
//
// The connector carries no command line, so a process that exits before
// /proc/<pid> is read loses the race: its exec event is still delivered,
// with whatever was read and Partial set. cmdline and exe are read first.
//
// It is Linux-only: on other systems the package is empty.
package cnproc
