//! What watched tasks asked for in their syscall arguments: paths, socket families, namespace
//! flags, W+X mappings, set-user-ID modes, personalities, realtime policies.
//!
//! Runs as a tail call from the syscall hook (`syscalls`), only for watched tasks of the native ABI, so the
//! machine-wide cost of the syscall hooks does not grow with what is decoded here. Every call
//! is decoded whatever it returned: an attempt shows what the service wants. Only x86_64
//! calls are decoded; i386 and x32 calls are counted but not decoded.

use aya_ebpf::{
    helpers::bpf_probe_read_user,
    macros::{btf_tracepoint, fexit, map},
    maps::ProgramArray,
    programs::{BtfTracePointContext, FExitContext},
};
use profiler_common::{observation, path_op as op, x86_64_nr::*};

use crate::{
    filter::watched_caller,
    observations::note,
    paths::{AT_FDCWD, emit},
    regs,
};

/// Slot 0 of each: the decoder of one syscall hook, installed by the loader. One array per
/// hook: a tail call reaches only a program of the same kind on the same kernel function.
#[map]
pub static ARG_DECODERS: ProgramArray = ProgramArray::with_max_entries(1, 0);
#[map]
pub static ARG_DECODERS_X64: ProgramArray = ProgramArray::with_max_entries(1, 0);
#[map]
pub static ARG_DECODERS_SECCOMP: ProgramArray = ProgramArray::with_max_entries(1, 0);

// include/uapi/linux/fcntl.h, asm-generic/fcntl.h, sched.h, mman-common.h.
const O_WRONLY: u64 = 0o1;
const O_RDWR: u64 = 0o2;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const O_TMPFILE: u64 = 0o20_200_000;
const AT_REMOVEDIR: u64 = 0x200;
const AT_EMPTY_PATH: u64 = 0x1000;
const S_ISUID_OR_GID: u64 = 0o6000;
const PROT_WRITE: u64 = 0x2;
const PROT_EXEC: u64 = 0x4;
const SCHED_FIFO: u64 = 1;
const SCHED_RR: u64 = 2;
const SCHED_DEADLINE: u64 = 6;
const SCHED_RESET_ON_FORK: u64 = 0x4000_0000;
/// The value personality(2) takes to only query the current persona.
const PERSONALITY_QUERY: u64 = 0xffff_ffff;
/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME.
const CLONE_NEW_MASK: u64 = 0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x80;
const AF_UNIX: u16 = 1;

/// One table of the x86_64 syscalls the decoder looks at, each with what it decodes. The macro
/// makes from it both `DECODED`, the calls `sys_exit` tail-calls the decoder for (so the ones
/// a busy server makes most, read, write, epoll_wait, cost no tail call), and the dispatch, so
/// the two cannot drift. The numbers are `profiler_common::x86_64_nr`'s.
macro_rules! decoders {
    (fn $decode:ident($nr:ident, $a:ident, $exe:ident, $errno:ident, $path:ident, $second:ident) { $( $($name:ident)|+ => $body:expr, )* }) => {
        const DECODED: &[u64] = &[ $( $( $name, )+ )* ];

        #[inline(always)]
        fn $decode($nr: u64, $a: &impl Fn(usize) -> u64, $exe: u32, $errno: u16, $path: &mut Option<PathArg>, $second: &mut Option<PathArg>) {
            match $nr {
                $( $($name)|+ => $body, )*
                _ => {}
            }
        }
    };
}

/// A path argument to record: (op, directory fd, user pointer to the name).
type PathArg = (u32, i64, u64);

decoders! {
    fn decode(nr, a, exe, errno, path, second) {
        // open, creat, openat, openat2
        OPEN => {
            let flags = a(1);
            if flags & O_CREAT != 0 {
                note_mode(a(2), exe);
            }
            *path = Some((open_op(flags), AT_FDCWD, a(0)));
        },
        CREAT => {
            note_mode(a(1), exe);
            *path = Some((op::CREATE, AT_FDCWD, a(0)));
        },
        OPENAT => {
            let flags = a(2);
            if flags & O_CREAT != 0 {
                note_mode(a(3), exe);
            }
            *path = Some((open_op(flags), a(0) as i32 as i64, a(1)));
        },
        OPENAT2 => {
            // struct open_how { u64 flags; u64 mode; u64 resolve; }
            let flags = user::<u64>(a(2)).unwrap_or(0);
            if flags & O_CREAT != 0 {
                note_mode(user::<u64>(a(2) + 8).unwrap_or(0), exe);
            }
            *path = Some((open_op(flags), a(0) as i32 as i64, a(1)));
        },
        // stat, lstat, access, readlink / newfstatat, readlinkat, faccessat(2), statx (those
        // two only by name: a look at an open descriptor is never tail-called for, see
        // `looks_at_open_descriptor`)
        STAT | LSTAT | ACCESS | READLINK => *path = Some((op::STAT, AT_FDCWD, a(0))),
        READLINKAT | FACCESSAT | FACCESSAT2 | NEWFSTATAT | STATX => *path = Some((op::STAT, a(0) as i32 as i64, a(1))),
        // mkdir, mkdirat, mknod, mknodat
        MKDIR => {
            note_mode(a(1), exe);
            *path = Some((op::MKDIR, AT_FDCWD, a(0)));
        },
        MKDIRAT => {
            note_mode(a(2), exe);
            *path = Some((op::MKDIR, a(0) as i32 as i64, a(1)));
        },
        MKNOD => {
            note_mode(a(1), exe);
            *path = Some((op::MKNOD, AT_FDCWD, a(0)));
        },
        MKNODAT => {
            note_mode(a(2), exe);
            *path = Some((op::MKNOD, a(0) as i32 as i64, a(1)));
        },
        // unlink, rmdir, unlinkat
        UNLINK => *path = Some((op::UNLINK, AT_FDCWD, a(0))),
        RMDIR => *path = Some((op::RMDIR, AT_FDCWD, a(0))),
        UNLINKAT => {
            let kind = if a(2) & AT_REMOVEDIR != 0 { op::RMDIR } else { op::UNLINK };
            *path = Some((kind, a(0) as i32 as i64, a(1)));
        },
        // rename, renameat, renameat2: both names change
        RENAME => {
            *path = Some((op::RENAME, AT_FDCWD, a(0)));
            *second = Some((op::RENAME, AT_FDCWD, a(1)));
        },
        RENAMEAT | RENAMEAT2 => {
            *path = Some((op::RENAME, a(0) as i32 as i64, a(1)));
            *second = Some((op::RENAME, a(2) as i32 as i64, a(3)));
        },
        // link, linkat, symlink, symlinkat: only the new name is written
        LINK => *path = Some((op::LINK, AT_FDCWD, a(1))),
        LINKAT => *path = Some((op::LINK, a(2) as i32 as i64, a(3))),
        SYMLINK => *path = Some((op::SYMLINK, AT_FDCWD, a(1))),
        SYMLINKAT => *path = Some((op::SYMLINK, a(1) as i32 as i64, a(2))),
        // truncate, ftruncate
        TRUNCATE => *path = Some((op::TRUNCATE, AT_FDCWD, a(0))),
        FTRUNCATE => *path = Some((op::TRUNCATE, a(0) as i32 as i64, 0)),
        // chmod, fchmod, fchmodat, fchmodat2
        CHMOD => {
            note_mode(a(1), exe);
            *path = Some((op::CHMOD, AT_FDCWD, a(0)));
        },
        FCHMOD => {
            note_mode(a(1), exe);
            *path = Some((op::CHMOD, a(0) as i32 as i64, 0));
        },
        FCHMODAT | FCHMODAT2 => {
            note_mode(a(2), exe);
            *path = Some((op::CHMOD, a(0) as i32 as i64, a(1)));
        },
        // chown, lchown, fchown, fchownat
        CHOWN | LCHOWN => *path = Some((op::CHOWN, AT_FDCWD, a(0))),
        FCHOWN => *path = Some((op::CHOWN, a(0) as i32 as i64, 0)),
        FCHOWNAT => *path = Some((op::CHOWN, a(0) as i32 as i64, a(1))),
        // utime, utimes, futimesat, utimensat (a NULL path means the descriptor itself)
        UTIME | UTIMES => *path = Some((op::UTIMES, AT_FDCWD, a(0))),
        FUTIMESAT | UTIMENSAT => *path = Some((op::UTIMES, a(0) as i32 as i64, a(1))),
        // setxattr, lsetxattr, removexattr, lremovexattr / f* / *at
        SETXATTR | LSETXATTR | REMOVEXATTR | LREMOVEXATTR => *path = Some((op::XATTR, AT_FDCWD, a(0))),
        FSETXATTR | FREMOVEXATTR => *path = Some((op::XATTR, a(0) as i32 as i64, 0)),
        SETXATTRAT | REMOVEXATTRAT => *path = Some((op::XATTR, a(0) as i32 as i64, a(1))),
        // bind: an AF_UNIX socket with a filesystem name creates that name
        BIND => *path = unix_address(a(1), a(2), op::BIND_UNIX, 0, exe),
        // connect of an AF_UNIX socket: a path the service reaches, or an abstract name
        CONNECT => *path = unix_address(a(1), a(2), op::CONNECT_UNIX, 1, exe),
        // socket: with its errno, so a family the sandbox refused is not taken for one used
        SOCKET => note(observation::SOCKET_FAMILY, errno, a(0) & 0xffff, exe),
        // clone (flags first on x86_64), clone3 (struct clone_args, flags first), unshare
        // (each with its errno: a namespace the sandbox refused is no need for one)
        CLONE | UNSHARE => {
            let flags = a(0) & CLONE_NEW_MASK;
            if flags != 0 {
                note(observation::NAMESPACE, errno, flags, exe);
            }
        },
        CLONE3 => {
            let flags = user::<u64>(a(0)).unwrap_or(0) & CLONE_NEW_MASK;
            if flags != 0 {
                note(observation::NAMESPACE, errno, flags, exe);
            }
        },
        SETNS => note(observation::SETNS, errno, a(1), exe),
        // mmap, mprotect, pkey_mprotect
        MMAP => {
            if a(2) & (PROT_WRITE | PROT_EXEC) == PROT_WRITE | PROT_EXEC {
                note(observation::MMAP_WX, 0, a(2), exe);
            }
        },
        MPROTECT | PKEY_MPROTECT => {
            if a(2) & PROT_EXEC != 0 {
                note(observation::MPROTECT_EXEC, 0, a(2), exe);
            }
        },
        PERSONALITY => {
            if a(0) != PERSONALITY_QUERY {
                note(observation::PERSONALITY, 0, a(0), exe);
            }
        },
        // sched_setscheduler(pid, policy, ..), sched_setattr(pid, attr{size, policy, ..})
        SCHED_SETSCHEDULER => realtime(a(1), exe),
        SCHED_SETATTR => realtime(user::<u32>(a(1) + 4).unwrap_or(0) as u64, exe),
    }
}

/// `DECODED` as a bitmap over syscall numbers below 512.
pub const DECODED_BITS: [u64; 8] = {
    let mut bits = [0u64; 8];
    let mut i = 0;
    while i < DECODED.len() {
        bits[(DECODED[i] / 64) as usize] |= 1 << (DECODED[i] % 64);
        i += 1;
    }
    bits
};

/// Whether `decode_args` has anything to do for native syscall `nr`.
#[inline(always)]
pub fn decodes(nr: u64) -> bool {
    nr < 512 && DECODED_BITS[(nr / 64) as usize & 7] & (1 << (nr % 64)) != 0
}

/// Whether native call `nr`, its registers at `regs`, is newfstatat or statx looking at a
/// descriptor already open: AT_EMPTY_PATH, a descriptor, and an empty name (glibc 2.33 to 2.38
/// make every fstat(3) so) or none (which 6.11 and later take). No name is looked up, no
/// sandbox directive governs it, and the file's name was taken when it was opened, so it is
/// no path use. Asked by the syscall hook before the tail call: a web server makes one such
/// call per request, which then costs one byte read instead of a decoder run.
#[inline(always)]
pub fn looks_at_open_descriptor(nr: u64, regs: *const u8) -> bool {
    let flags = match nr {
        NEWFSTATAT => regs::arg(regs, 3),
        STATX => regs::arg(regs, 2),
        _ => return false,
    };
    let name = regs::arg(regs, 1);
    // With AT_FDCWD an empty name is the working directory: a path use.
    flags & AT_EMPTY_PATH != 0 && (regs::arg(regs, 0) as i32) >= 0 && (name == 0 || user::<u8>(name) == Some(0))
}

/// Reads a value the task passed by pointer (clone3's and openat2's structs, sockaddr).
#[inline(always)]
fn user<T>(addr: u64) -> Option<T> {
    // SAFETY: a checked helper read of the task's own memory.
    unsafe { bpf_probe_read_user(addr as *const T) }.ok()
}

#[inline(always)]
fn open_op(flags: u64) -> u32 {
    if flags & O_TMPFILE == O_TMPFILE || flags & (O_CREAT | O_TRUNC) != 0 {
        op::CREATE
    } else if flags & (O_WRONLY | O_RDWR) != 0 {
        op::OPEN_WRITE
    } else {
        op::OPEN_READ
    }
}

#[inline(always)]
fn note_mode(mode: u64, exe: u32) {
    if mode & S_ISUID_OR_GID != 0 {
        note(observation::SUID_MODE, 0, mode & 0o7777, exe);
    }
}

/// Decodes the call `sys_exit` tail-called for.
#[btf_tracepoint(function = "sys_exit")]
pub fn decode_args(ctx: BtfTracePointContext) -> i32 {
    // `btf_trace_sys_exit(void *, struct pt_regs *regs, long ret)`.
    decode_call(ctx.arg(0), ctx.arg(1));
    0
}

/// Decodes the call `x64_sys_call_exit` tail-called for.
#[fexit(function = "x64_sys_call")]
pub fn decode_args_x64(ctx: FExitContext) -> i32 {
    // `long x64_sys_call(const struct pt_regs *regs, unsigned int nr)`.
    decode_call(ctx.arg(0), ctx.arg(2));
    0
}

/// Decodes the call seccomp refused, which `seccomp_refused` tail-called for.
#[fexit(function = "__secure_computing")]
pub fn decode_args_seccomp(_ctx: FExitContext) -> i32 {
    let current = regs::current();
    if let Some(regs) = regs::task_regs(current) {
        decode_call(regs, regs::ax(regs) as i64);
    }
    0
}

/// Decodes a watched task's native call, whose registers are `regs` (a BTF pointer) and
/// which returned `ret`.
#[inline(always)]
fn decode_call(regs: *const u8, ret: i64) {
    // The sys_exit and x64_sys_call hooks have just asked the same on this CPU (the tail call
    // runs straight after them), so this is answered from the hint they left, in a cache line
    // just touched: no helper call, no TASKS lookup. After seccomp's hook, which asks by
    // thread id, the hint may be another thread's; the registers tell, and a miss looks the
    // thread up.
    let Some(exe) = watched_caller(regs) else {
        return;
    };
    let nr = regs::orig_ax(regs);
    let a = |n| regs::arg(regs, n);
    // At most two paths per call (rename); emitted after the match, so the path code is
    // verified at two call sites, not at one per syscall.
    let mut path: Option<PathArg> = None;
    let mut second: Option<PathArg> = None;
    // A failed call is decoded too, with its errno: a write or a family a sandbox refused is
    // what `check` looks for, and it must not read as one that happened.
    let errno = if ret < 0 { ret.unsigned_abs().min(u16::MAX as u64) as u16 } else { 0 };
    decode(nr, &a, exe, errno, &mut path, &mut second);
    for (op, dirfd, user) in [path, second].into_iter().flatten() {
        emit(op, exe, dirfd, user, errno);
    }
}

/// The file system name of an AF_UNIX address at `addr` (`len` bytes), as a path to record
/// with `op`; an abstract name (a leading NUL) is noted instead, with `which` (0 bind, 1
/// connect).
#[inline(always)]
fn unix_address(addr: u64, len: u64, op: u32, which: u16, exe: u32) -> Option<PathArg> {
    if user::<u16>(addr) != Some(AF_UNIX) {
        return None;
    }
    if user::<u8>(addr + 2).unwrap_or(0) != 0 {
        return Some((op, AT_FDCWD, addr + 2));
    }
    // An unnamed (autobind) address is only the family: no name, nothing to note.
    if len > 2 {
        note(observation::ABSTRACT_UNIX, which, 0, exe);
    }
    None
}

#[inline(always)]
fn realtime(policy: u64, exe: u32) {
    let policy = policy & !SCHED_RESET_ON_FORK;
    if policy == SCHED_FIFO || policy == SCHED_RR || policy == SCHED_DEADLINE {
        note(observation::REALTIME, 0, policy, exe);
    }
}
