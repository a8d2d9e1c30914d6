// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Quarry's process programs: one event per exec and per thread-group exit,
// written to a ring buffer without waking the reader (user space drains the
// ring on a timer). The same code serves the tp_btf programs and their
// raw_tracepoint fallbacks; every kernel read goes through CO-RE.

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define EVENT_EXEC 1
#define EVENT_EXIT 2

// Flags telling that a variable part was cut short.
#define FLAG_ARGS_TRUNCATED 1
#define FLAG_EXE_TRUNCATED 2
#define FLAG_CWD_TRUNCATED 4
#define FLAG_NO_AUID 8

#define ARGS_MAX 8192    // bytes of argv kept
#define PATH_BYTES 3072  // bytes of path components kept per path
#define NAME_BYTES 256   // one component, NUL included (NAME_MAX + 1)
#define PATH_DEPTH 40    // dentries and mount crossings walked per path
#define FILENAME_MAX_ 512
#define DATA_MASK 0x3fff // offsets into data are masked for the verifier
#define DATA_SIZE (DATA_MASK + 1 + 4096)

// event is the fixed part of every record; exec records are followed by
// args_len bytes of argv (NUL-separated), exe_len bytes of the executable's
// path components and cwd_len bytes of the working directory's components
// (each NUL-terminated, leaf first) and file_len bytes of the filename given
// to execve.
struct event {
	__u64 time_ns;  // bpf_ktime_get_boot_ns at the event
	__u64 start_ns; // task->start_boottime
	__u64 cgroup_id;
	__u32 kind;
	__u32 pid;  // tgid
	__u32 ppid; // real_parent->tgid
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 auid;
	__u32 exit_code; // task->exit_code: (code << 8) | signal
	__u32 flags;
	__u16 args_len;
	__u16 exe_len;
	__u16 cwd_len;
	__u16 file_len;
	char comm[16];
};

struct scratch {
	struct event hdr;
	char data[DATA_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

// drops counts records the ring buffer had no room for.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");


static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		*n += 1;
}

static __always_inline void fill_task(struct event *e, struct task_struct *p, __u32 kind)
{
	const struct cred *cred = BPF_CORE_READ(p, real_cred);

	e->time_ns = bpf_ktime_get_boot_ns();
	e->start_ns = BPF_CORE_READ(p, start_boottime);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->kind = kind;
	e->pid = BPF_CORE_READ(p, tgid);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->uid = BPF_CORE_READ(cred, uid.val);
	e->euid = BPF_CORE_READ(cred, euid.val);
	e->gid = BPF_CORE_READ(cred, gid.val);
	e->egid = BPF_CORE_READ(cred, egid.val);
	e->flags = 0;
	if (bpf_core_field_exists(p->loginuid)) {
		e->auid = BPF_CORE_READ(p, loginuid.val);
	} else {
		e->auid = (__u32)-1;
		e->flags |= FLAG_NO_AUID;
	}
	e->exit_code = 0;
	e->args_len = 0;
	e->exe_len = 0;
	e->cwd_len = 0;
	e->file_len = 0;
	BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
}

#define WALK_TRUNCATED (1ULL << 32)

// walk_path writes the components of dentry's path, leaf first, into
// s->data from off on, crossing mount points. It returns the new offset, or'd
// with WALK_TRUNCATED when the root was not reached within the bounds.
//
// It is a global function so that the verifier checks it once, with off an
// unknown scalar, rather than once per call site and offset.
__noinline __u64 walk_path(struct scratch *s, __u32 off, __u64 dentry_addr, __u64 vfsmnt_addr)
{
	struct dentry *dentry = (struct dentry *)dentry_addr;
	struct vfsmount *vfsmnt = (struct vfsmount *)vfsmnt_addr;
	struct mount *mnt = (struct mount *)((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
	__u32 start = off;

	if (!s || !dentry || !vfsmnt)
		return off | WALK_TRUNCATED;
	for (int i = 0; i < PATH_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);

		if (dentry == mnt_root || dentry == parent) {
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

			if (dentry != mnt_root || mnt == mnt_parent)
				return off; // the root
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			vfsmnt = (struct vfsmount *)((void *)mnt + bpf_core_field_offset(struct mount, mnt));
			continue;
		}
		if (off - start > PATH_BYTES)
			break;
		const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
		long n = bpf_probe_read_kernel_str(&s->data[off & DATA_MASK], NAME_BYTES, name);
		if (n <= 0)
			break;
		off += n;
		dentry = parent;
	}
	return off | WALK_TRUNCATED;
}

static __always_inline int emit_exec(struct task_struct *p, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct event *e = &s->hdr;
	fill_task(e, p, EVENT_EXEC);

	// argv: mm->arg_start..arg_end, NUL-separated.
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
	__u64 len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (len > ARGS_MAX) {
		len = ARGS_MAX;
		e->flags |= FLAG_ARGS_TRUNCATED;
	}
	if (bpf_probe_read_user(s->data, len, (void *)arg_start) < 0)
		len = 0;
	__u32 off = len;
	e->args_len = len;

	// The executable's path, from the opened file.
	struct file *file = BPF_CORE_READ(bprm, file);
	__u64 walked = walk_path(s, off, (__u64)BPF_CORE_READ(file, f_path.dentry),
				 (__u64)BPF_CORE_READ(file, f_path.mnt));
	if (walked & WALK_TRUNCATED)
		e->flags |= FLAG_EXE_TRUNCATED;
	__u32 next = (__u32)walked & DATA_MASK;
	e->exe_len = next - off;
	off = next;

	// The working directory.
	struct fs_struct *fs = BPF_CORE_READ(p, fs);
	walked = walk_path(s, off, (__u64)BPF_CORE_READ(fs, pwd.dentry), (__u64)BPF_CORE_READ(fs, pwd.mnt));
	if (walked & WALK_TRUNCATED)
		e->flags |= FLAG_CWD_TRUNCATED;
	next = (__u32)walked & DATA_MASK;
	e->cwd_len = next - off;
	off = next;

	// The filename as given to execve (a fallback for the path).
	const char *filename = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(&s->data[off & DATA_MASK], FILENAME_MAX_, filename);
	if (n > 0) {
		e->file_len = n;
		off += n;
	}

	__u64 size = sizeof(struct event) + (off & DATA_MASK);
	if (bpf_ringbuf_output(&events, s, size, BPF_RB_NO_WAKEUP) < 0)
		count_drop();
	return 0;
}

static __always_inline int emit_exit(struct task_struct *p)
{
	if (BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid))
		return 0; // a thread, not the process
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(struct event), 0);
	if (!e) {
		count_drop();
		return 0;
	}
	fill_task(e, p, EVENT_EXIT);
	e->exit_code = BPF_CORE_READ(p, exit_code);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_btf_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return emit_exec(p, bprm);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_btf_exit, struct task_struct *p)
{
	return emit_exit(p);
}

SEC("raw_tracepoint/sched_process_exec")
int BPF_PROG(raw_tp_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return emit_exec(p, bprm);
}

SEC("raw_tracepoint/sched_process_exit")
int BPF_PROG(raw_tp_exit, struct task_struct *p)
{
	return emit_exit(p);
}

#include "activity.h"
