//! Layouts of the maps the kernel programs fill and the collector reads.
//!
//! Everything here is `#[repr(C)]` plain data with explicit padding, so the kernel and user
//! views agree byte for byte; the `const` asserts catch a field added on one side only.
#![no_std]

/// Map names, shared so the loader never spells one differently from the kernel side.
pub mod map_names {
    pub const CONFIG: &str = "CONFIG";
    pub const TASKS: &str = "TASKS";
    pub const CALLER_HINT: &str = "CALLER_HINT";
    pub const EXECUTABLES: &str = "EXECUTABLES";
    pub const EXEC_HELPERS: &str = "EXEC_HELPERS";
    pub const SLOT_CLAIMS: &str = "SLOT_CLAIMS";
    pub const EXE_EXECS: &str = "EXE_EXECS";
    pub const SYSCALL_COUNTS: &str = "SYSCALL_COUNTS";
    pub const EXE_SYSCALLS: &str = "EXE_SYSCALLS";
    pub const CAP_CHECKS: &str = "CAP_CHECKS";
    pub const CAP_STACKS: &str = "CAP_STACKS";
    pub const CALLER_SLOT: &str = "CALLER_SLOT";
    pub const LOSSES: &str = "LOSSES";
    pub const WATCH_PATH: &str = "WATCH_PATH";
    pub const OBSERVATIONS: &str = "OBSERVATIONS";
    pub const PEERS: &str = "PEERS";
    pub const ERRORS: &str = "ERRORS";
    pub const PATH_EVENTS: &str = "PATH_EVENTS";
    pub const ARG_DECODERS: &str = "ARG_DECODERS";
    pub const ARG_DECODERS_X64: &str = "ARG_DECODERS_X64";
    pub const ARG_DECODERS_SECCOMP: &str = "ARG_DECODERS_SECCOMP";
}

/// Names of the `Global`s the loader fills with offsets from the running kernel (tracepoint
/// record fields from tracefs, struct members from BTF), so one object works on kernels laid
/// out differently.
pub mod globals {
    pub const CAP_CAP: &str = "CAP_CAP_OFFSET";
    pub const CAP_RET: &str = "CAP_RET_OFFSET";
    pub const MKDIR_ROOT: &str = "MKDIR_ROOT_OFFSET";
    pub const MKDIR_LEVEL: &str = "MKDIR_LEVEL_OFFSET";
    pub const MKDIR_ID: &str = "MKDIR_ID_OFFSET";
    pub const MKDIR_PATH: &str = "MKDIR_PATH_OFFSET";
    /// `linux_binprm.filename` and `kernel_siginfo.si_code`, from BTF, for the BTF
    /// tracepoints of exec and of signals.
    pub const BINPRM_FILENAME_OFFSET: &str = "BINPRM_FILENAME_OFFSET";
    pub const SIGINFO_CODE_OFFSET: &str = "SIGINFO_CODE_OFFSET";
    pub const POSSIBLE_CPUS: &str = "POSSIBLE_CPUS";
    /// Struct member offsets from the running kernel's BTF (`KernelOffsets`).
    pub const KERNEL_OFFSETS: &str = "KERNEL_OFFSETS";
    /// `task_struct.thread_info.status` and `task_struct.pid`, alone: read on every syscall.
    pub const THREAD_STATUS_OFFSET: &str = "THREAD_STATUS_OFFSET";
    pub const TASK_PID_OFFSET: &str = "TASK_PID_OFFSET";
    /// The members every relative path is resolved through, alone (`KernelOffsets`' names).
    pub const TASK_FS_OFFSET: &str = "TASK_FS_OFFSET";
    pub const TASK_FILES_OFFSET: &str = "TASK_FILES_OFFSET";
    pub const FS_PWD_OFFSET: &str = "FS_PWD_OFFSET";
    pub const FS_ROOT_OFFSET: &str = "FS_ROOT_OFFSET";
    pub const FILES_FDT_OFFSET: &str = "FILES_FDT_OFFSET";
    pub const FDT_MAX_FDS_OFFSET: &str = "FDT_MAX_FDS_OFFSET";
    pub const FDT_FD_OFFSET: &str = "FDT_FD_OFFSET";
    /// Where the known probe checks come from (`ProbeSites`).
    pub const PROBE_SITES: &str = "PROBE_SITES";
}

/// Syscall numbers are recorded per ABI: a 64-bit process can issue i386 syscalls through
/// `int 0x80`, and their numbers mean different calls.
pub mod abi {
    pub const NATIVE: u32 = 0;
    pub const IA32: u32 = 1;
    pub const X32: u32 = 2;
    pub const COUNT: u32 = 3;
    /// Syscall numbers at or above this are not recorded: x86_64 and i386 stay below 512, and
    /// x32's own calls are numbered 512 to 547.
    pub const NR_LIMIT: u32 = 576;
    /// `__X32_SYSCALL_BIT` of arch/x86/include/uapi/asm/unistd.h.
    pub const X32_SYSCALL_BIT: u64 = 0x4000_0000;
}

/// One slot per (ABI, syscall number).
pub const SYSCALL_SLOTS: u32 = abi::COUNT * abi::NR_LIMIT;

/// Distinct executables attributed per recording; later ones share the overflow slot.
pub const MAX_EXECUTABLES: u32 = 256;
/// The slot for executables past `MAX_EXECUTABLES - 1` and for tasks running before the
/// recording started whose executable could not be named.
pub const EXE_SLOT_OVERFLOW: u32 = MAX_EXECUTABLES - 1;

/// Watched tasks (threads) alive at once.
pub const MAX_TASKS: u32 = 65_536;
/// Distinct (capability, executable, kernel call stack) triples.
pub const MAX_CAP_CHECKS: u32 = 4_096;
/// Distinct kernel call stacks behind capability checks.
pub const MAX_CAP_STACKS: u32 = 1_024;
/// Bytes of a path kept (executables, cgroups; the kernel's own limit is PATH_MAX, longer
/// ones are cut).
pub const PATH_LEN: usize = 256;
/// Marker for a capability check whose call stack could not be stored.
pub const NO_STACK: u32 = u32::MAX;

/// How many probe callers `ProbeSites` can name.
pub const PROBE_CALLER_COUNT: usize = 3;
/// The stack id of a capability check recognised at a known probe site instead of by its
/// whole stack: `PROBE_SITE_STACK + i` for `ProbeSites::callers[i]`. Far above any id the
/// kernel's stack map hands out (those are below `MAX_CAP_STACKS`).
pub const PROBE_SITE_STACK: u32 = NO_STACK - 1 - PROBE_CALLER_COUNT as u32;

/// Where, above the capability tracepoint handler's frame, `cap_capable` keeps its return
/// address when it calls the tracepoint from `ip`, and the return address into a probe
/// function (`caller`) found there, as one CPU learnt them (see the kernel side's
/// `caps::learn_slot`); trusted once `confirmed` reaches its threshold.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CallerSlot {
    pub ip: u64,
    pub offset: u64,
    pub caller: u64,
    pub confirmed: u64,
    /// Searches in a row that found the return address in no slot or in several.
    pub failures: u64,
    /// Checks read at the slot: every `RECHECK`th goes to the unwinder again instead.
    pub reads: u64,
}

/// The functions a capability check is known to be a probe from (`mmap`'s overcommit
/// accounting), as kernel address ranges [start, end) from /proc/kallsyms, set by the loader:
/// a check whose two innermost frames are `checker` and one of `callers` is a probe, told
/// without the whole stack (`CallerSlot`). A zero range matches nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeSites {
    /// `cap_capable`, where the capability tracepoint fires.
    pub checker: [u64; 2],
    pub callers: [[u64; 2]; PROBE_CALLER_COUNT],
}

/// Which cgroup subtree is watched. Written by the collector; read at every exec. The kernel
/// side also rewrites `cgroup_id` when a cgroup is created at the watched path (`WATCH_PATH`),
/// so a unit that starts (or restarts) after recording began is followed without a gap.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TargetConfig {
    /// cgroup2 id (the directory's inode number) of the watched cgroup.
    pub cgroup_id: u64,
    /// Its depth below the cgroup2 root (root = 0), for `bpf_get_current_ancestor_cgroup_id`.
    pub level: u32,
    /// Non-zero once a target is set; programs do nothing before.
    pub enabled: u32,
    /// How many times a cgroup was (re)created at the watched path while recording.
    pub recreated: u64,
}
const _: () = assert!(core::mem::size_of::<TargetConfig>() == 24);

/// Per watched task: which executable it runs. Tasks enter by exec inside the watched cgroup
/// and by fork from a watched task, so systemd's own set-up before the exec does not count.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskState {
    pub exe_slot: u32,
    /// No flag is defined: counting moved to syscall exit, where the exec call is already
    /// watched. Kept so the value stays 8 bytes and aligned.
    pub flags: u32,
}
const _: () = assert!(core::mem::size_of::<TaskState>() == 8);

/// What a CPU last found out about the threads it ran, so that asking again costs a
/// comparison instead of a hash lookup (0: nothing).
/// - `tid`: a thread found unwatched, by id (hooks other than the syscall ones).
/// - `regs` and `caller`: the thread the syscall hook last ran for, by the address of its
///   saved registers (a syscall hook's own argument: no helper call needed), and what it is:
///   0 unwatched, else its executable slot + 1; `seal` is `regs ^ caller`, so that an entry
///   half written by the CPU and half cleared by userspace (16 bytes are not one store) never
///   passes for a whole one.
///
/// A thread's entries are cleared on every CPU when it is put in TASKS (exec, fork, adoption)
/// and when a watched one execs or ends (`filter::forget_caller`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CallerHint {
    pub tid: u32,
    pub caller: u32,
    pub regs: u64,
    pub seal: u64,
}
const _: () = assert!(core::mem::size_of::<CallerHint>() == 24);

/// A path as a map key or value, NUL-padded: an executable as the kernel passed it to exec,
/// or a cgroup path relative to the cgroup2 root.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KernelPath {
    pub bytes: [u8; PATH_LEN],
}
const _: () = assert!(core::mem::size_of::<KernelPath>() == PATH_LEN);

/// Where an executable's attribution is kept.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ExeInfo {
    pub slot: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<ExeInfo>() == 8);

/// One byte per syscall slot: non-zero when the executable made that syscall. Bytes, not bits,
/// so concurrent CPUs can mark it with plain stores and no atomic read-modify-write.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExeSyscalls {
    pub used: [u8; SYSCALL_SLOTS as usize],
}

/// Every syscall slot's count on one CPU, as one map value: a watched call then finds its
/// counter behind one fixed entry (one element per slot cost a second dependent load, a
/// cache miss per call on a busy server), and the collector reads them all with one syscall
/// where it made one per slot, 1728 every 5 s.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SyscallCounts {
    pub calls: [u64; SYSCALL_SLOTS as usize],
}
// A per-CPU map value may not exceed the kernel's PCPU_MIN_UNIT_SIZE (32 KiB).
const _: () = assert!(core::mem::size_of::<SyscallCounts>() <= 32 * 1024);

/// A capability check, keyed by the kernel call stack that made it: the stack is what tells a
/// real need from a probe (`ns_capable_noaudit` and friends).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapKey {
    pub cap: u32,
    pub exe_slot: u32,
    pub stack_id: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<CapKey>() == 16);

/// Outcomes of the checks under one `CapKey` (per CPU; the collector sums them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CapCounts {
    pub granted: u64,
    pub denied: u64,
}
const _: () = assert!(core::mem::size_of::<CapCounts>() == 16);

/// Indices of the `LOSSES` counters: each counts records the kernel side had to drop.
pub mod loss {
    /// A task could not be added to `TASKS` (table full): its syscalls went unrecorded.
    pub const TASKS_FULL: u32 = 0;
    /// An executable past `MAX_EXECUTABLES`: recorded under the overflow slot.
    pub const EXECUTABLES_FULL: u32 = 1;
    /// A capability check could not be added to `CAP_CHECKS`.
    pub const CAP_CHECKS_FULL: u32 = 2;
    /// A capability check's call stack could not be stored: it cannot be told from a probe.
    pub const CAP_STACKS_FULL: u32 = 3;
    /// A syscall number out of the recorded range.
    pub const SYSCALL_OUT_OF_RANGE: u32 = 4;
    /// An observation (family, namespace, device, port, ...) could not be added to `OBSERVATIONS`.
    pub const OBSERVATIONS_FULL: u32 = 5;
    /// A path record found the ring buffer full and was dropped.
    pub const PATH_EVENTS_LOST: u32 = 6;
    /// A path whose user string could not be read (bad pointer): not recorded.
    pub const PATH_UNREADABLE: u32 = 7;
    /// A connect to a new peer address could not be added to `PEERS`.
    pub const PEERS_FULL: u32 = 8;
    /// A new (syscall, errno, executable) error return could not be added to `ERRORS`.
    pub const ERRORS_FULL: u32 = 9;
    pub const COUNT: u32 = 10;
}

/// Distinct (observation kind, value, executable) triples.
pub const MAX_OBSERVATIONS: u32 = 8_192;
/// Distinct (peer address, executable) pairs of connects beyond loopback, kept apart from
/// `OBSERVATIONS` so a service talking to many hosts cannot crowd out the other observations.
pub const MAX_PEERS: u32 = 4_096;
/// Distinct (syscall, errno, executable) error returns, kept apart from `OBSERVATIONS` too.
pub const MAX_ERRORS: u32 = 4_096;
/// Paths recently sent to userspace, remembered in the kernel so repeats cost no event.
pub const PATH_DEDUP_ENTRIES: u32 = 16_384;
/// Bytes of the ring buffer that carries path records.
pub const PATH_RING_BYTES: u32 = 1 << 22;
/// Bytes kept of one path component (the kernel's NAME_MAX is 255; longer ones are cut and
/// the record is flagged).
pub const PATH_NAME_LEN: usize = 64;
/// Directory levels walked up from a relative path's base; deeper bases are flagged.
pub const PATH_DEPTH: usize = 24;

/// Observations that are a number, not a string: what a syscall argument or a cgroup hook said.
pub mod observation {
    /// `socket(family, ..)`: value = address family.
    pub const SOCKET_FAMILY: u16 = 1;
    /// clone/clone3/unshare with CLONE_NEW* flags: value = the flags masked to CLONE_NEW*.
    pub const NAMESPACE: u16 = 2;
    /// setns(fd, nstype): value = nstype (0: any type).
    pub const SETNS: u16 = 3;
    /// mmap with PROT_WRITE|PROT_EXEC: value = prot.
    pub const MMAP_WX: u16 = 4;
    /// mprotect/pkey_mprotect adding PROT_EXEC: value = prot.
    pub const MPROTECT_EXEC: u16 = 5;
    /// personality(persona) other than a query: value = persona.
    pub const PERSONALITY: u16 = 6;
    /// sched_setscheduler/sched_setattr to a realtime policy: value = policy.
    pub const REALTIME: u16 = 7;
    /// chmod/open/mkdir/mknod with S_ISUID or S_ISGID: value = mode.
    pub const SUID_MODE: u16 = 8;
    /// A device access through the cgroup device hook: `sub` = type << 8 | access,
    /// value = major << 32 | minor.
    pub const DEVICE: u16 = 9;
    /// bind of an inet socket: `sub` = family, value = protocol << 24 | port << 8 | `addr_class`.
    pub const BIND: u16 = 10;
    /// connect of an inet socket: as `BIND`.
    pub const CONNECT: u16 = 11;
    /// exec of a set-user-ID, set-group-ID or file-capability binary: value = mode.
    pub const PRIVILEGED_EXEC: u16 = 12;
    /// connect to an address beyond loopback, in `PEERS`: `sub` = family, value = the IPv4
    /// address, or the first 64 bits (the network prefix) of the IPv6 one, as big-endian bytes.
    pub const PEER: u16 = 13;
    /// A syscall returned an error a hardening directive can cause, in `ERRORS`: `sub` = the
    /// errno, value = the syscall slot (`abi * NR_LIMIT + nr`).
    pub const ERROR: u16 = 14;
    /// bind or connect of an AF_UNIX socket to an abstract name (per network namespace, so
    /// PrivateNetwork= cuts it off): `sub` = 0 for bind, 1 for connect.
    pub const ABSTRACT_UNIX: u16 = 15;
}

/// The errnos recorded per syscall: the ones sandboxing makes a call fail with (seccomp's
/// `SystemCallErrorNumber=`, capabilities, read-only and hidden paths, restricted families).
/// Others (`EAGAIN`, `EINTR`, ...) are a daemon's everyday business and not counted.
pub mod errno {
    pub const EPERM: u16 = 1;
    pub const ENOENT: u16 = 2;
    pub const EACCES: u16 = 13;
    pub const EROFS: u16 = 30;
    pub const ENOSYS: u16 = 38;
    pub const EPROTONOSUPPORT: u16 = 93;
    pub const ESOCKTNOSUPPORT: u16 = 94;
    pub const EOPNOTSUPP: u16 = 95;
    pub const EAFNOSUPPORT: u16 = 97;
    /// Not an errno: the call was refused by a seccomp filter that kills (or traps), with SIGSYS.
    pub const SIGSYS: u16 = 0xffff;
    pub const RECORDED: [(u16, &str); 10] = [
        (EPERM, "EPERM"),
        (ENOENT, "ENOENT"),
        (EACCES, "EACCES"),
        (EROFS, "EROFS"),
        (ENOSYS, "ENOSYS"),
        (EPROTONOSUPPORT, "EPROTONOSUPPORT"),
        (ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT"),
        (EOPNOTSUPP, "EOPNOTSUPP"),
        (EAFNOSUPPORT, "EAFNOSUPPORT"),
        (SIGSYS, "SIGSYS"),
    ];

    /// Whether an errno is recorded: one shift and mask, as this runs on every failing call.
    #[inline(always)]
    pub fn recorded(errno: u64) -> bool {
        const LOW: u64 = 1 << EPERM | 1 << ENOENT | 1 << EACCES | 1 << EROFS | 1 << ENOSYS;
        const HIGH: u64 = 1 << (EPROTONOSUPPORT - 64) | 1 << (ESOCKTNOSUPPORT - 64) | 1 << (EOPNOTSUPP - 64) | 1 << (EAFNOSUPPORT - 64);
        match errno {
            0..64 => LOW >> errno & 1 != 0,
            64..128 => HIGH >> (errno - 64) & 1 != 0,
            _ => false,
        }
    }
}

/// How far an address reaches, for PrivateNetwork= and IPAddressAllow=.
pub mod addr_class {
    pub const ANY: u64 = 0;
    pub const LOOPBACK: u64 = 1;
    pub const OTHER: u64 = 2;
}

/// One distinct observation of an `observation` kind by one executable.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObservationKey {
    pub kind: u16,
    pub sub: u16,
    pub exe_slot: u32,
    pub value: u64,
}
const _: () = assert!(core::mem::size_of::<ObservationKey>() == 16);

/// x86_64 syscall numbers the kernel programs decode arguments of, by name
/// (arch/x86/entry/syscalls/syscall_64.tbl). The `syscalls` crate does not build for the BPF
/// target, so the numbers are written here once and a userspace test checks every one against
/// that crate's table.
pub mod x86_64_nr {
    macro_rules! numbers {
        ($($name:ident = $nr:literal),* $(,)?) => {
            $(pub const $name: u64 = $nr;)*
            /// Every number above with its syscall's name, for the test.
            pub const ALL: &[(&str, u64)] = &[$((stringify!($name), $name)),*];
        };
    }
    numbers! {
        OPEN = 2,
        STAT = 4,
        LSTAT = 6,
        MMAP = 9,
        MPROTECT = 10,
        ACCESS = 21,
        SOCKET = 41,
        CONNECT = 42,
        BIND = 49,
        CLONE = 56,
        TRUNCATE = 76,
        FTRUNCATE = 77,
        RENAME = 82,
        MKDIR = 83,
        RMDIR = 84,
        CREAT = 85,
        LINK = 86,
        UNLINK = 87,
        SYMLINK = 88,
        READLINK = 89,
        CHMOD = 90,
        FCHMOD = 91,
        CHOWN = 92,
        FCHOWN = 93,
        LCHOWN = 94,
        UTIME = 132,
        MKNOD = 133,
        PERSONALITY = 135,
        SCHED_SETSCHEDULER = 144,
        SETXATTR = 188,
        LSETXATTR = 189,
        FSETXATTR = 190,
        REMOVEXATTR = 197,
        LREMOVEXATTR = 198,
        FREMOVEXATTR = 199,
        UTIMES = 235,
        OPENAT = 257,
        MKDIRAT = 258,
        MKNODAT = 259,
        FCHOWNAT = 260,
        FUTIMESAT = 261,
        NEWFSTATAT = 262,
        UNLINKAT = 263,
        RENAMEAT = 264,
        LINKAT = 265,
        SYMLINKAT = 266,
        READLINKAT = 267,
        FCHMODAT = 268,
        FACCESSAT = 269,
        UNSHARE = 272,
        UTIMENSAT = 280,
        SETNS = 308,
        SCHED_SETATTR = 314,
        RENAMEAT2 = 316,
        PKEY_MPROTECT = 329,
        STATX = 332,
        CLONE3 = 435,
        OPENAT2 = 437,
        FACCESSAT2 = 439,
        FCHMODAT2 = 452,
        SETXATTRAT = 463,
        REMOVEXATTRAT = 466,
    }
}

/// What a path record says was done to the path.
pub mod path_op {
    pub const OPEN_WRITE: u32 = 1;
    pub const CREATE: u32 = 2;
    pub const MKDIR: u32 = 3;
    pub const MKNOD: u32 = 4;
    pub const UNLINK: u32 = 5;
    pub const RMDIR: u32 = 6;
    pub const RENAME: u32 = 7;
    pub const LINK: u32 = 8;
    pub const SYMLINK: u32 = 9;
    pub const TRUNCATE: u32 = 10;
    pub const CHMOD: u32 = 11;
    pub const CHOWN: u32 = 12;
    pub const UTIMES: u32 = 13;
    pub const XATTR: u32 = 14;
    pub const BIND_UNIX: u32 = 15;
    /// The first op that only reads.
    pub const FIRST_READ: u32 = 32;
    pub const OPEN_READ: u32 = 32;
    pub const STAT: u32 = 33;
    /// connect() of an AF_UNIX socket to a file system name: the service reaches that path.
    pub const CONNECT_UNIX: u32 = 34;
}

/// `PathEvent::flags`.
pub mod path_flags {
    /// A component was longer than `PATH_NAME_LEN`, the base deeper than `PATH_DEPTH`, or the
    /// user string longer than `PATH_LEN`: the path is incomplete.
    pub const TRUNCATED: u32 = 1;
    /// The base directory (cwd or dirfd) could not be read: only the relative part is known.
    pub const BASE_UNKNOWN: u32 = 2;
    /// Bits 16 to 31 hold the errno the call failed with; 0 when it succeeded.
    pub const ERRNO_SHIFT: u32 = 16;
}

/// A path a watched task acted on, as sent through the ring buffer: the base directory's
/// components from the innermost up (`names[..depth]`), then the string the task passed.
/// Absolute strings have no base.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PathEvent {
    pub op: u32,
    pub exe_slot: u32,
    pub depth: u32,
    pub flags: u32,
    pub tail: [u8; PATH_LEN],
    pub names: [[u8; PATH_NAME_LEN]; PATH_DEPTH],
}
const _: () = assert!(core::mem::size_of::<PathEvent>() == 16 + PATH_LEN + PATH_NAME_LEN * PATH_DEPTH);

/// Member offsets of kernel structs, read by the loader from the running kernel's BTF so the
/// object needs no build-time kernel headers. `valid` is 0 when BTF lacked one of them, or
/// laid `struct path` out otherwise than (mnt, dentry) at 0 and 8, which the kernel side reads
/// whole (`path_mnt` and `path_dentry` are kept for that check): the path programs then
/// resolve absolute paths only, and an exec's file is not read. The members every relative
/// path goes through are also set alone (`globals::TASK_FS_OFFSET` and the next ones).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelOffsets {
    pub valid: u32,
    pub task_fs: u32,
    pub task_files: u32,
    pub task_mm: u32,
    pub mm_exe_file: u32,
    pub file_inode: u32,
    pub inode_mode: u32,
    pub fs_root: u32,
    pub fs_pwd: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub files_fdt: u32,
    pub fdt_max_fds: u32,
    pub fdt_fd: u32,
    pub file_path: u32,
    pub dentry_parent: u32,
    pub dentry_name: u32,
    pub qstr_name: u32,
    pub vfsmount_root: u32,
    pub mount_mnt: u32,
    pub mount_parent: u32,
    pub mount_mountpoint: u32,
    /// `task_struct.thread_info.status` (x86), where `TS_COMPAT` says the current syscall is
    /// a 32-bit one, whatever the task's code segment; 0 when this kernel's BTF lacks it.
    pub thread_status: u32,
    pub inode_ino: u32,
    pub inode_sb: u32,
    pub sb_dev: u32,
    /// `task_struct.pid` (the thread id); 0 when unknown.
    pub task_pid: u32,
}

/// A file as the kernel knows it: the device of its file system (the kernel's own `dev_t`
/// encoding, major << 20 | minor) and its inode number. Names systemd's exec helpers by what
/// they are, whatever path or descriptor the exec went through.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are repr(C) integers and byte arrays with no implicit padding.
    unsafe impl aya::Pod for TargetConfig {}
    unsafe impl aya::Pod for TaskState {}
    unsafe impl aya::Pod for CallerHint {}
    unsafe impl aya::Pod for KernelPath {}
    unsafe impl aya::Pod for FileId {}
    unsafe impl aya::Pod for ExeInfo {}
    unsafe impl aya::Pod for ExeSyscalls {}
    unsafe impl aya::Pod for SyscallCounts {}
    unsafe impl aya::Pod for CapKey {}
    unsafe impl aya::Pod for CapCounts {}
    unsafe impl aya::Pod for ObservationKey {}
    unsafe impl aya::Pod for PathEvent {}
    unsafe impl aya::Pod for KernelOffsets {}
    unsafe impl aya::Pod for ProbeSites {}
    unsafe impl aya::Pod for CallerSlot {}
}
