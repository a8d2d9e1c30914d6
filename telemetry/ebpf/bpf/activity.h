// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Quarry's activity programs, included by process.bpf.c: network
// connections, DNS messages, file changes, ptrace and process_vm_writev,
// module loads, memfd_create and uid/gid/capability changes. Each writes one
// record (the process header, a struct detail, then variable parts) into the
// same ring buffer as the process programs, without waking the reader.
//
// Only tp_btf programs are used: kernels locked down in integrity mode (and
// kernels without kprobes) refuse fentry, fexit, kprobe and LSM programs but
// allow BTF tracepoints. Syscalls are seen on the raw sys_enter and sys_exit
// tracepoints: a per-architecture table (syscall_ops, filled by user space)
// tells in one array lookup which syscalls matter; their arguments are kept
// per thread from enter to exit and the record is written at exit, when the
// outcome and the file descriptors' targets are known. DNS messages are seen
// on net_dev_queue when sent over UDP (in the sender's context), at the exit
// of write, send, sendmsg and writev on TCP sockets when sent over TCP, and
// at the exit of read, recvfrom and recvmsg on UDP and TCP sockets when
// received.

#ifndef QUARRY_ACTIVITY_H
#define QUARRY_ACTIVITY_H

#include <bpf/bpf_endian.h>

#define EVENT_NET 3
#define EVENT_FILE 4
#define EVENT_ACCESS 5
#define EVENT_MODULE 6
#define EVENT_MEMFD 7
#define EVENT_PRIV 8
#define EVENT_DNS 9

// Syscall operations (syscall_ops values); the numbers are shared with Go.
#define OP_CONNECT 1
#define OP_ACCEPT 2
#define OP_BIND 3
#define OP_LISTEN 4
#define OP_PTRACE 5
#define OP_VM_WRITEV 6
#define OP_INIT_MODULE 7
#define OP_FINIT_MODULE 8
#define OP_MEMFD 9
#define OP_SETUID 10 // through OP_SETFSGID: setuid setgid setreuid setregid setresuid setresgid setfsuid setfsgid
#define OP_SETFSGID 17
#define OP_CAPSET 18
#define OP_OPEN 19    // open(path, flags)
#define OP_OPENAT 20  // openat(dirfd, path, flags)
#define OP_OPENAT2 21 // openat2(dirfd, path, how)
#define OP_CREAT 22
#define OP_CLOSE 23
#define OP_UNLINK 24   // unlink(path), rmdir(path)
#define OP_UNLINKAT 25 // unlinkat(dirfd, path, flags)
#define OP_RENAME 26   // rename(old, new)
#define OP_RENAMEAT 27 // renameat(olddirfd, old, newdirfd, new), renameat2
#define OP_CHMOD 28    // chmod(path, mode)
#define OP_FCHMOD 29   // fchmod(fd, mode)
#define OP_FCHMODAT 30 // fchmodat(dirfd, path, mode), fchmodat2
#define OP_READ 31     // read(fd, buf, count) on a UDP socket connected to the DNS port
#define OP_RECVFROM 32 // recvfrom(fd, buf, len, flags, addr, addrlen)
#define OP_RECVMSG 33  // recvmsg(fd, msg, flags)
#define OP_WRITE 34    // write(fd, buf, count) on a TCP socket connected to the DNS port
#define OP_SENDTO 35   // sendto(fd, buf, len, flags, addr, addrlen), send
#define OP_SENDMSG 36  // sendmsg(fd, msg, flags)
#define OP_WRITEV 37   // writev(fd, iov, iovcnt)
#define OP_MAX 64

#define NET_CONNECT 1
#define NET_ACCEPT 2
#define NET_BIND 3
#define NET_LISTEN 4

#define FILE_CREATE 1
#define FILE_WRITE 2
#define FILE_CHMOD 3
#define FILE_DELETE 4
#define FILE_RENAME 5

#define DNS_SENT 1
#define DNS_RECEIVED 2

// Header flags of activity records (after the process flags).
#define FLAG_NO_EXE 16            // a kernel thread: no executable
#define FLAG_PATH1_RAW 32         // path1 is a string as given to the syscall
#define FLAG_PATH1_TRUNCATED 64
#define FLAG_PATH2_TRUNCATED 128
#define FLAG_PAYLOAD_TRUNCATED 256
#define FLAG_BASE1 512  // path2 is the directory a relative path1 is in
#define FLAG_BASE3 1024 // path4 is the directory a relative path3 is in

// Rate-limit classes and the counters map's slots.
#define CLASS_FILE 0
#define CLASS_NET 1
#define CLASS_OTHER 2
#define COUNTERS 4

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_IFSOCK 0140000
#define FMODE_WRITE 0x2
#define O_ACCMODE 3
#define O_CREAT 0100
#define O_TRUNC 01000
#define AT_FDCWD -100
#define EINPROGRESS 115
#define DNS_MAX 512
#define USER_PATH 256

// detail follows the header of every activity record, at the start of
// scratch.data; its fields' meaning depends on the kind.
struct detail {
	__u32 action;
	__u32 arg;    // IP protocol; ptrace request; syscall op
	__u16 family; // AF_INET or AF_INET6
	__u16 sport;  // local port
	__u16 dport;  // remote port
	__u16 path1_len;
	__u16 path2_len;
	__u16 payload_len;
	__u32 mode;       // chmod's mode; the DNS message's length
	__u32 target_pid; // ptrace and process_vm_writev's target
	__u32 old_ids[4]; // uid euid suid fsuid, then the gids in new_ids'
	__u32 new_ids[4]; // place for set*gid
	__u16 path3_len;
	__u16 path4_len;
	__s64 ret; // the syscall's return value
	__u64 old_caps[2]; // effective, permitted
	__u64 new_caps[2];
	__u8 saddr[16]; // local address (4 bytes for AF_INET)
	__u8 daddr[16]; // remote address
};

// stash is what sys_enter keeps of a syscall for sys_exit.
struct stash {
	__u32 op;
	__u32 ids[8]; // uid euid suid fsuid gid egid sgid fsgid before the call
	__u64 args[6];
	__u64 caps[2];
};

// Declared so that bpf2go generates their Go types.
const struct detail *unused_detail __attribute__((unused));

// Configuration, set by user space before loading.
volatile const __u64 cfg_file_interval_ns = 0; // 0: no rate limit
volatile const __u64 cfg_file_burst_ns = 0;
volatile const __u64 cfg_net_interval_ns = 0;
volatile const __u64 cfg_net_burst_ns = 0;
volatile const __u32 cfg_dns_port = 53;
volatile const __u32 cfg_fmode_created = 0x100000;

// syscall_ops maps a syscall number to its OP_*, 0 for the syscalls not
// watched; user space fills it for the running architecture.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u8);
} syscall_ops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct stash);
} stashes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} act_scratch SEC(".maps");

// counters[class] counts the records a class's rate limit held back;
// counters[3] the syscalls whose arguments found no room in stashes.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// buckets holds, per (class, tgid), the theoretical arrival time of the
// generic cell rate algorithm: a token bucket in one word.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} buckets SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &slot);
	if (n)
		*n += 1;
}

// allow tells whether the current process may emit one more record of
// class; updates across CPUs race, so the limit is approximate.
static __always_inline bool allow(__u32 class)
{
	__u64 interval = class == CLASS_FILE ? cfg_file_interval_ns : cfg_net_interval_ns;
	__u64 tolerance = class == CLASS_FILE ? cfg_file_burst_ns : cfg_net_burst_ns;
	if (!interval)
		return true;
	__u64 key = ((__u64)class << 32) | (bpf_get_current_pid_tgid() >> 32);
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 *tat = bpf_map_lookup_elem(&buckets, &key);
	if (!tat) {
		__u64 v = now + interval;
		bpf_map_update_elem(&buckets, &key, &v, BPF_ANY);
		return true;
	}
	__u64 t = *tat;
	if (t < now)
		t = now;
	if (t - now > tolerance) {
		count(class);
		return false;
	}
	*tat = t + interval;
	return true;
}

static __always_inline struct task_struct *current_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

// act_begin fills the header for the current task and zeroes the detail.
static __always_inline struct scratch *act_begin(__u32 kind, __u32 action)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&act_scratch, &zero);
	if (!s)
		return 0;
	fill_task(&s->hdr, current_task(), kind);
	__builtin_memset(s->data, 0, sizeof(struct detail));
	((struct detail *)s->data)->action = action;
	return s;
}

// act_exe writes the current executable's path after the detail and
// returns the offset after it.
static __always_inline __u32 act_exe(struct scratch *s)
{
	struct file *exe = BPF_CORE_READ(current_task(), mm, exe_file);
	__u32 off = sizeof(struct detail);
	if (!exe) {
		s->hdr.flags |= FLAG_NO_EXE;
		return off;
	}
	__u64 w = walk_path(s, off, (__u64)BPF_CORE_READ(exe, f_path.dentry), (__u64)BPF_CORE_READ(exe, f_path.mnt));
	if (w & WALK_TRUNCATED)
		s->hdr.flags |= FLAG_EXE_TRUNCATED;
	__u32 next = (__u32)w & DATA_MASK;
	s->hdr.exe_len = next - off;
	return next;
}

static __always_inline void set_len(struct scratch *s, int which, __u32 n)
{
	struct detail *d = (struct detail *)s->data;
	if (which == 1)
		d->path1_len = n;
	else if (which == 2)
		d->path2_len = n;
	else if (which == 3)
		d->path3_len = n;
	else
		d->path4_len = n;
}

// act_walk writes the components of a path (leaf first) at off as path
// `which` and returns the offset after them.
static __always_inline __u32 act_walk(struct scratch *s, __u32 off, int which, struct dentry *dentry,
				      struct vfsmount *mnt)
{
	__u64 w = walk_path(s, off, (__u64)dentry, (__u64)mnt);
	__u32 next = (__u32)w & DATA_MASK;
	set_len(s, which, next - off);
	if (w & WALK_TRUNCATED)
		s->hdr.flags |= which == 1 ? FLAG_PATH1_TRUNCATED : FLAG_PATH2_TRUNCATED;
	return next;
}

// act_user writes a user string at off as path `which`.
static __always_inline __u32 act_user(struct scratch *s, __u32 off, int which, __u64 ptr)
{
	long n = bpf_probe_read_user_str(&s->data[off & DATA_MASK], USER_PATH, (const void *)ptr);
	if (n > 0) {
		set_len(s, which, n);
		off += n;
	}
	return off;
}

static __always_inline void act_submit(struct scratch *s, __u32 off)
{
	__u64 size = sizeof(struct event) + (off & DATA_MASK);
	if (bpf_ringbuf_output(&events, s, size, BPF_RB_NO_WAKEUP) < 0)
		count_drop();
}

// fd_file returns the current task's open file fd, or NULL.
static __always_inline struct file *fd_file(long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(current_task(), files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd < 0 || fd >= max)
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline __u32 file_type(struct file *f)
{
	return BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT;
}

// pseudo_fs tells a file system whose files are not worth reporting.
static __always_inline bool pseudo_fs(struct super_block *sb)
{
	unsigned long m = BPF_CORE_READ(sb, s_magic);
	return m == 0x9fa0 ||     // proc
	       m == 0x62656572 || // sysfs
	       m == 0x27e0eb ||   // cgroup
	       m == 0x63677270 || // cgroup2
	       m == 0x64626720 || // debugfs
	       m == 0x74726163 || // tracefs
	       m == 0x73636673 || // securityfs
	       m == 0xcafe4a11 || // bpf
	       m == 0x50495045 || // pipefs
	       m == 0x534f434b;   // sockfs
}

// ---- Network ----

// net_event reports a socket's addresses; fd is the socket's descriptor.
__noinline int net_event(long fd, __u32 action)
{
	struct file *f = fd_file(fd);
	if (!f || file_type(f) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (!allow(CLASS_NET))
		return 0;
	struct scratch *s = act_begin(EVENT_NET, action);
	if (!s)
		return 0;
	struct detail *d = (struct detail *)s->data;
	d->family = family;
	d->arg = BPF_CORE_READ(sk, sk_protocol);
	d->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	d->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		bpf_core_read(d->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(d->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(d->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(d->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	act_submit(s, act_exe(s));
	return 0;
}

// ---- DNS: UDP messages to and from the DNS port ----

struct udp_header {
	__be16 source;
	__be16 dest;
	__be16 len;
	__be16 check;
};

static __always_inline int dns_skb(struct sk_buff *skb, __u32 action)
{
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	if (proto != 0x0800 && proto != 0x86dd)
		return 0;
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u8 l4 = 0;
	bpf_probe_read_kernel(&l4, 1, head + nh + (proto == 0x0800 ? 9 : 6));
	if (l4 != 17)
		return 0;
	struct udp_header uh;
	if (bpf_probe_read_kernel(&uh, sizeof(uh), head + th) < 0)
		return 0;
	__u16 sport = bpf_ntohs(uh.source), dport = bpf_ntohs(uh.dest);
	if (action == DNS_SENT ? dport != cfg_dns_port : sport != cfg_dns_port)
		return 0;
	if (!allow(CLASS_NET))
		return 0;
	struct scratch *s = act_begin(EVENT_DNS, action);
	if (!s)
		return 0;
	struct detail *d = (struct detail *)s->data;
	// saddr and sport are the local side: the packet's source when sent,
	// its destination when received.
	void *pkt_src = action == DNS_SENT ? (void *)d->saddr : (void *)d->daddr;
	void *pkt_dst = action == DNS_SENT ? (void *)d->daddr : (void *)d->saddr;
	if (proto == 0x0800) {
		d->family = AF_INET;
		bpf_probe_read_kernel(pkt_src, 4, head + nh + 12);
		bpf_probe_read_kernel(pkt_dst, 4, head + nh + 16);
	} else {
		d->family = AF_INET6;
		bpf_probe_read_kernel(pkt_src, 16, head + nh + 8);
		bpf_probe_read_kernel(pkt_dst, 16, head + nh + 24);
	}
	d->arg = 17;
	d->sport = action == DNS_SENT ? sport : dport;
	d->dport = action == DNS_SENT ? dport : sport;

	__u32 msglen = bpf_ntohs(uh.len);
	msglen = msglen > 8 ? msglen - 8 : 0;
	d->mode = msglen;
	// Only the linear part is read: tail is its end, as an offset.
	__u32 tail = BPF_CORE_READ(skb, tail);
	__u32 avail = tail > (__u32)th + 8 ? tail - th - 8 : 0;
	__u32 len = msglen < avail ? msglen : avail;
	if (len > DNS_MAX)
		len = DNS_MAX;
	if (len < msglen)
		s->hdr.flags |= FLAG_PAYLOAD_TRUNCATED;

	__u32 off = act_exe(s);
	__u64 n = len;
	asm volatile("%0 &= 1023" : "+r"(n)); // a bound the verifier sees (len <= DNS_MAX already)
	if (n > 0 && bpf_probe_read_kernel(&s->data[off & DATA_MASK], n, head + th + 8) == 0) {
		d->payload_len = len;
		off += len;
	}
	act_submit(s, off);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(tp_btf_net_dev_queue, struct sk_buff *skb)
{
	return dns_skb(skb, DNS_SENT);
}

// proto_sock returns fd's sock when it is a socket of that IP protocol
// (17 UDP, 6 TCP; 0: either), else NULL.
static __always_inline struct sock *proto_sock(long fd, __u16 proto)
{
	struct file *f = fd_file(fd);
	if (!f || file_type(f) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	__u16 p = BPF_CORE_READ(sk, sk_protocol);
	if (proto ? p != proto : p != 17 && p != 6)
		return 0;
	return sk;
}

struct user_msghdr_ {
	void *msg_name;
	int msg_namelen;
	void *msg_iov;
};

struct iovec_ {
	void *base;
	__u64 len;
};

// dns_user reports a DNS message a syscall moved through a user buffer: a
// message read from a UDP or TCP socket whose peer is the DNS port (the
// sending side of UDP is seen on net_dev_queue, but a UDP receive of a
// linear skb passes no tracepoint), or written to a TCP one (a TCP
// segment's payload is mostly in page fragments net_dev_queue cannot
// read). The message is copied from the user buffer at the syscall's exit;
// over TCP it keeps its 2-byte length prefix when the call moved it too
// (user space strips it), but a writev or sendmsg whose first buffer is
// just the prefix is read from its second.
__noinline int dns_user(struct stash *st, long ret)
{
	if (!st || ret <= 0)
		return 0;
	__u32 op = st->op;
	__u32 action = op >= OP_WRITE ? DNS_SENT : DNS_RECEIVED;
	struct sock *sk = proto_sock(st->args[0], action == DNS_SENT ? 6 : 0);
	if (!sk)
		return 0;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__u64 buf = st->args[1], name = 0, cap = ret;
	if (op == OP_RECVFROM) {
		name = st->args[4];
	} else if (op == OP_RECVMSG || op == OP_SENDMSG || op == OP_WRITEV) {
		struct iovec_ iov[2] = {};
		void *iovp = (void *)st->args[1];
		if (op != OP_WRITEV) {
			struct user_msghdr_ mh = {};
			bpf_probe_read_user(&mh, sizeof(mh), (void *)st->args[1]);
			iovp = mh.msg_iov;
			if (op == OP_RECVMSG)
				name = (__u64)mh.msg_name;
		}
		bpf_probe_read_user(iov, sizeof(iov), iovp);
		buf = (__u64)iov[0].base;
		cap = iov[0].len;
		if (action == DNS_SENT && iov[0].len == 2 && ret > 2) {
			buf = (__u64)iov[1].base;
			cap = iov[1].len;
			ret -= 2;
		}
	}
	if (proto == 6)
		name = 0;
	// The sender's address, as returned to the caller: sockaddr_in or
	// sockaddr_in6, the port at offset 2.
	__u8 sa[24] = {};
	if (name && bpf_probe_read_user(sa, sizeof(sa), (void *)name) == 0 && (sa[0] == AF_INET || sa[0] == AF_INET6))
		rport = ((__u16)sa[2] << 8) | sa[3];
	else
		name = 0;
	if (rport != cfg_dns_port || !allow(CLASS_NET))
		return 0;
	struct scratch *s = act_begin(EVENT_DNS, action);
	if (!s)
		return 0;
	struct detail *d = (struct detail *)s->data;
	d->family = family;
	d->arg = proto;
	d->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	d->dport = rport;
	if (family == AF_INET) {
		bpf_core_read(d->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(d->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(d->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(d->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	if (name && sa[0] == AF_INET) {
		__builtin_memset(d->daddr, 0, 16);
		__builtin_memcpy(d->daddr, &sa[4], 4);
		d->family = AF_INET;
	} else if (name && sa[0] == AF_INET6) {
		__builtin_memcpy(d->daddr, &sa[8], 16);
		d->family = AF_INET6;
	}
	__u64 len = ret > DNS_MAX ? DNS_MAX : ret;
	if (len > cap)
		len = cap;
	d->mode = ret;
	if (len < (__u64)ret)
		s->hdr.flags |= FLAG_PAYLOAD_TRUNCATED;
	__u32 off = act_exe(s);
	asm volatile("%0 &= 1023" : "+r"(len));
	if (len > 0 && bpf_probe_read_user(&s->data[off & DATA_MASK], len, (void *)buf) == 0) {
		d->payload_len = len;
		off += len;
	}
	act_submit(s, off);
	return 0;
}

// ---- Files ----

// file_fd reports an open file (create at open, write at close, fchmod).
__noinline int file_fd(long fd, __u32 action, __u32 mode)
{
	struct file *f = fd_file(fd);
	if (!f)
		return 0;
	__u32 fmode = BPF_CORE_READ(f, f_mode);
	if (action == FILE_CREATE && !(fmode & cfg_fmode_created))
		return 0;
	if (action == FILE_WRITE && (!(fmode & FMODE_WRITE) || (fmode & cfg_fmode_created)))
		return 0; // not written, or reported as created
	if (action != FILE_CHMOD && file_type(f) != S_IFREG)
		return 0;
	if (pseudo_fs(BPF_CORE_READ(f, f_inode, i_sb)))
		return 0;
	if (!allow(CLASS_FILE))
		return 0;
	struct scratch *s = act_begin(EVENT_FILE, action);
	if (!s)
		return 0;
	((struct detail *)s->data)->mode = mode;
	__u32 off = act_exe(s);
	off = act_walk(s, off, 1, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
	act_submit(s, off);
	return 0;
}

// act_base writes the directory a relative path given with dirfd is
// resolved from (the working directory for AT_FDCWD) as path `which`.
static __always_inline __u32 act_base(struct scratch *s, __u32 off, int which, long dirfd)
{
	if (dirfd == AT_FDCWD) {
		struct fs_struct *fs = BPF_CORE_READ(current_task(), fs);
		return act_walk(s, off, which, BPF_CORE_READ(fs, pwd.dentry), BPF_CORE_READ(fs, pwd.mnt));
	}
	struct file *f = fd_file(dirfd);
	if (!f)
		return off;
	return act_walk(s, off, which, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
}

// file_path reports a change named by a path (and, for a rename, a second
// one), each relative to a directory descriptor, as the syscall kept in st
// gave them.
__noinline int file_path(__u32 action, struct stash *st)
{
	if (!st || !allow(CLASS_FILE))
		return 0;
	long dirfd = AT_FDCWD, dirfd2 = AT_FDCWD;
	__u64 path = 0, path2 = 0;
	__u32 mode = 0;
	switch (st->op) {
	case OP_UNLINK:
		path = st->args[0];
		break;
	case OP_UNLINKAT:
		dirfd = st->args[0], path = st->args[1];
		break;
	case OP_RENAME:
		path = st->args[0], path2 = st->args[1];
		break;
	case OP_RENAMEAT:
		dirfd = st->args[0], path = st->args[1], dirfd2 = st->args[2], path2 = st->args[3];
		break;
	case OP_CHMOD:
		path = st->args[0], mode = st->args[1];
		break;
	case OP_FCHMODAT:
		dirfd = st->args[0], path = st->args[1], mode = st->args[2];
		break;
	default:
		return 0;
	}
	struct scratch *s = act_begin(EVENT_FILE, action);
	if (!s)
		return 0;
	((struct detail *)s->data)->mode = mode;
	__u32 off = act_exe(s);
	off = act_user(s, off, 1, path);
	s->hdr.flags |= FLAG_PATH1_RAW | FLAG_BASE1;
	off = act_base(s, off, 2, dirfd);
	if (path2) {
		off = act_user(s, off, 3, path2);
		s->hdr.flags |= FLAG_BASE3;
		off = act_base(s, off, 4, dirfd2);
	}
	act_submit(s, off);
	return 0;
}

// ---- Process access, modules, memfd ----

__noinline int access_event(__u32 action, __u32 request, __u32 target)
{
	if (!allow(CLASS_OTHER))
		return 0;
	struct scratch *s = act_begin(EVENT_ACCESS, action);
	if (!s)
		return 0;
	struct detail *d = (struct detail *)s->data;
	d->arg = request;
	d->target_pid = target;
	act_submit(s, act_exe(s));
	return 0;
}

// module_event reports init_module (no file) or finit_module (fd's path).
__noinline int module_event(__u32 action, long fd, long ret)
{
	struct scratch *s = act_begin(EVENT_MODULE, action);
	if (!s)
		return 0;
	((struct detail *)s->data)->ret = ret;
	__u32 off = act_exe(s);
	struct file *f = action == 1 ? fd_file(fd) : 0;
	if (f)
		off = act_walk(s, off, 1, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
	act_submit(s, off);
	return 0;
}

__noinline int memfd_event(__u64 name, long ret)
{
	if (!allow(CLASS_OTHER))
		return 0;
	struct scratch *s = act_begin(EVENT_MEMFD, 1);
	if (!s)
		return 0;
	((struct detail *)s->data)->ret = ret;
	__u32 off = act_exe(s);
	off = act_user(s, off, 1, name);
	s->hdr.flags |= FLAG_PATH1_RAW;
	act_submit(s, off);
	return 0;
}

// ---- uid, gid and capability changes ----

static __always_inline void read_ids(const struct cred *c, __u32 *ids)
{
	ids[0] = BPF_CORE_READ(c, uid.val);
	ids[1] = BPF_CORE_READ(c, euid.val);
	ids[2] = BPF_CORE_READ(c, suid.val);
	ids[3] = BPF_CORE_READ(c, fsuid.val);
	ids[4] = BPF_CORE_READ(c, gid.val);
	ids[5] = BPF_CORE_READ(c, egid.val);
	ids[6] = BPF_CORE_READ(c, sgid.val);
	ids[7] = BPF_CORE_READ(c, fsgid.val);
}

// priv_event reports a change of ids or capabilities by a set*id or capset
// call (op), comparing the credentials kept at enter with the current ones.
__noinline int priv_event(struct stash *st)
{
	if (!st)
		return 0;
	const struct cred *c = BPF_CORE_READ(current_task(), cred);
	__u32 now[8];
	read_ids(c, now);
	__u64 caps[2];
	caps[0] = BPF_CORE_READ(c, cap_effective.val);
	caps[1] = BPF_CORE_READ(c, cap_permitted.val);
	bool changed = caps[0] != st->caps[0] || caps[1] != st->caps[1];
	for (int i = 0; i < 8; i++)
		changed |= now[i] != st->ids[i];
	if (!changed)
		return 0;
	struct scratch *s = act_begin(EVENT_PRIV, st->op);
	if (!s)
		return 0;
	struct detail *d = (struct detail *)s->data;
	int gid = st->op >= OP_SETUID && ((st->op - OP_SETUID) & 1); // the set*gid ops are odd offsets
	for (int i = 0; i < 4; i++) {
		d->old_ids[i] = st->ids[gid ? i + 4 : i];
		d->new_ids[i] = now[gid ? i + 4 : i];
	}
	d->old_caps[0] = st->caps[0];
	d->old_caps[1] = st->caps[1];
	d->new_caps[0] = caps[0];
	d->new_caps[1] = caps[1];
	act_submit(s, act_exe(s));
	return 0;
}

// ---- The syscall tracepoints ----

static __always_inline void read_args(struct pt_regs *regs, __u64 *args)
{
	if (bpf_core_field_exists(((struct pt_regs___x86 *)0)->di)) {
		struct pt_regs___x86 *r = (void *)regs;
		args[0] = BPF_CORE_READ(r, di);
		args[1] = BPF_CORE_READ(r, si);
		args[2] = BPF_CORE_READ(r, dx);
		args[3] = BPF_CORE_READ(r, r10);
		args[4] = BPF_CORE_READ(r, r8);
		args[5] = BPF_CORE_READ(r, r9);
	} else {
		struct pt_regs___arm64 *r = (void *)regs;
		bpf_core_read(args, 6 * sizeof(__u64), &r->regs[0]);
	}
}

static __always_inline bool opens_for_write(__u64 flags)
{
	return (flags & O_ACCMODE) || (flags & (O_CREAT | O_TRUNC));
}

SEC("tp_btf/sys_enter")
int BPF_PROG(tp_btf_sys_enter, struct pt_regs *regs, long id)
{
	__u32 nr = id;
	__u8 *opp = bpf_map_lookup_elem(&syscall_ops, &nr);
	if (!opp || !*opp)
		return 0;
	__u32 op = *opp;
	struct stash st = {.op = op};
	read_args(regs, st.args);
	switch (op) {
	case OP_CLOSE:
		// Reported before the descriptor goes.
		return file_fd(st.args[0], FILE_WRITE, 0);
	case OP_READ:
	case OP_WRITE:
	case OP_WRITEV: {
		// Most reads and writes: one descriptor lookup, nothing kept.
		struct sock *sk = proto_sock(st.args[0], op == OP_READ ? 0 : 6);
		if (!sk || bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)) != cfg_dns_port)
			return 0;
		break;
	}
	case OP_RECVFROM:
	case OP_RECVMSG:
		if (!proto_sock(st.args[0], 0))
			return 0;
		break;
	case OP_SENDTO:
	case OP_SENDMSG: {
		struct sock *sk = proto_sock(st.args[0], 6);
		if (!sk || bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)) != cfg_dns_port)
			return 0;
		break;
	}
	case OP_OPEN:
		if (!opens_for_write(st.args[1]))
			return 0;
		break;
	case OP_OPENAT:
		if (!opens_for_write(st.args[2]))
			return 0;
		break;
	case OP_OPENAT2: {
		__u64 flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), (void *)st.args[2]);
		if (!opens_for_write(flags))
			return 0;
		break;
	}
	}
	if (op >= OP_SETUID && op <= OP_CAPSET) {
		const struct cred *c = BPF_CORE_READ(current_task(), cred);
		read_ids(c, st.ids);
		st.caps[0] = BPF_CORE_READ(c, cap_effective.val);
		st.caps[1] = BPF_CORE_READ(c, cap_permitted.val);
	}
	__u64 key = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&stashes, &key, &st, BPF_ANY) < 0)
		count(3);
	return 0;
}

// handle_exit writes the record of a syscall kept in st that returned ret.
__noinline int handle_exit(struct stash *st, long ret)
{
	if (!st)
		return 0;
	__u32 op = st->op;
	__u64 a0 = st->args[0], a1 = st->args[1];
	if (op >= OP_SETUID && op <= OP_CAPSET)
		return ret == 0 ? priv_event(st) : 0;
	switch (op) {
	case OP_CONNECT:
		if (ret == 0 || ret == -EINPROGRESS)
			net_event(a0, NET_CONNECT);
		return 0;
	case OP_ACCEPT:
		if (ret >= 0)
			net_event(ret, NET_ACCEPT);
		return 0;
	case OP_BIND:
		if (ret == 0)
			net_event(a0, NET_BIND);
		return 0;
	case OP_LISTEN:
		if (ret == 0)
			net_event(a0, NET_LISTEN);
		return 0;
	case OP_PTRACE:
		if (ret < 0)
			return 0;
		switch (a0) {
		case 16:     // PTRACE_ATTACH
		case 0x4206: // PTRACE_SEIZE
		case 4:      // PTRACE_POKETEXT
		case 5:      // PTRACE_POKEDATA
		case 6:      // PTRACE_POKEUSR
		case 13:     // PTRACE_SETREGS
		case 15:     // PTRACE_SETFPREGS
		case 0x4205: // PTRACE_SETREGSET
			access_event(1, a0, a1);
		}
		return 0;
	case OP_VM_WRITEV:
		if (ret >= 0)
			access_event(2, 0, a0);
		return 0;
	case OP_FINIT_MODULE:
		return module_event(1, a0, ret);
	case OP_INIT_MODULE:
		return module_event(2, -1, ret);
	case OP_MEMFD:
		return ret >= 0 ? memfd_event(a0, ret) : 0;
	case OP_READ:
	case OP_RECVFROM:
	case OP_RECVMSG:
	case OP_WRITE:
	case OP_SENDTO:
	case OP_SENDMSG:
	case OP_WRITEV:
		return dns_user(st, ret);
	case OP_OPEN:
	case OP_OPENAT:
	case OP_OPENAT2:
	case OP_CREAT:
		return ret >= 0 ? file_fd(ret, FILE_CREATE, 0) : 0;
	}
	if (ret != 0)
		return 0;
	switch (op) {
	case OP_UNLINK:
	case OP_UNLINKAT:
		return file_path(FILE_DELETE, st);
	case OP_RENAME:
	case OP_RENAMEAT:
		return file_path(FILE_RENAME, st);
	case OP_CHMOD:
	case OP_FCHMODAT:
		return file_path(FILE_CHMOD, st);
	case OP_FCHMOD:
		return file_fd(a0, FILE_CHMOD, a1);
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(tp_btf_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 key = bpf_get_current_pid_tgid();
	struct stash *st = bpf_map_lookup_elem(&stashes, &key);
	if (!st)
		return 0;
	handle_exit(st, ret);
	bpf_map_delete_elem(&stashes, &key);
	return 0;
}

#endif /* QUARRY_ACTIVITY_H */
