// Package audit is Quarry's live activity fallback where the eBPF activity
// programs cannot load: it registers as the kernel's audit daemon over the
// NETLINK_AUDIT socket (AUDIT_SET pid), adds syscall-exit rules for
// connect, bind, accept, opens that write or create, creat, unlink, rename,
// chmod, ptrace and module loads (keyed "quarry-live", never matching its
// own pid), reads the records, groups them by event serial and turns each
// event into the telemetry.Event the auditd log importer makes of the same
// records (importers.AuditStream). On stop it deletes exactly the rules it
// added, restores the settings it changed and gives the socket back. It
// does not displace a running auditd.
//
// It speaks the netlink protocol with golang.org/x/sys/unix (already a
// dependency) rather than an audit library: the protocol is a few fixed
// structures, and the record text is read by the importer's parser.
package audit
