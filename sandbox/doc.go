// Package sandbox detonates a sample (a script or an ELF) on Linux inside
// bubblewrap: new user, pid, mount, IPC, UTS and network namespaces, the
// system read-only, a throwaway home and /tmp, CPU, memory and pids limits
// through a cgroup made for the run, a seccomp filter that denies the calls
// that reach past the sandbox (kexec, module loads, mount, namespaces…),
// and a kill of the whole cgroup at the timeout. With NetworkSink the
// sample's network namespace answers every DNS name with a sink address
// and a sink accepts TCP on common ports and records what was sent.
//
// It isolates with namespaces, not a virtual machine: the sample shares
// the host's kernel, so a kernel exploit escapes it. It is for watching
// what commodity scripts and binaries do, not for containing a targeted
// attack on the kernel.
//
// Detonate runs a sample with Quarry's eBPF collectors filtered to the
// run's cgroup, stores its events (Source sandbox, RunID) through the
// detection pipeline and summarises them as a Report and a
// telemetry.SandboxRun.
package sandbox
