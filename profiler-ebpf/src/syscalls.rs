//! Syscall numbers per ABI, counted per CPU and marked per executable, and the error returns
//! a sandbox can cause, per syscall and executable.
//!
//! Two ways in, chosen by the loader (`recorder/hooks.rs`):
//! - the BTF raw tracepoint `sys_exit` (`tp_btf`), not `raw_syscalls:sys_exit`: it passes
//!   the registers without the tracepoint record copy, typed, so they are read with plain
//!   loads (`regs`). Every call that returns passes there. The default.
//! - fexit on the kernel's syscall tables (`x64_sys_call`, `ia32_sys_call`, `x32_sys_call`,
//!   Linux 6.9 and the stable kernels it was backported to, Debian 12's and 13's among them),
//!   with fexit on `__secure_computing` for the calls seccomp refuses before any table: the
//!   rest of the host pays a trampoline, not the tracepoint slow path that enabling
//!   `sys_exit` puts every task on. A number past the end of the table never reaches one,
//!   so it is not seen. Only when forced.
//!
//! Both run on every syscall of the whole machine.

use aya_ebpf::{
    EbpfContext as _, Global,
    helpers::{bpf_probe_read_kernel, generated::bpf_get_func_ret},
    macros::{btf_tracepoint, fexit, map},
    maps::{Array, PerCpuArray},
    programs::{BtfTracePointContext, FExitContext},
};
use profiler_common::{ExeSyscalls, MAX_EXECUTABLES, SYSCALL_SLOTS, SyscallCounts, abi, errno, loss};

use crate::{
    args::{ARG_DECODERS, ARG_DECODERS_SECCOMP, ARG_DECODERS_X64},
    filter::{count_loss, watched_caller, watched_task, watched_thread},
    observations::note_error,
    regs,
};

#[map]
pub static SYSCALL_COUNTS: PerCpuArray<SyscallCounts> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static EXE_SYSCALLS: Array<ExeSyscalls> = Array::with_max_entries(MAX_EXECUTABLES, 0);

/// Counts the syscall once the kernel has done with it, and decodes its arguments: the user
/// pages they point to are resident then (at entry a string not yet faulted in cannot be
/// read), a call that seccomp refused, which never reaches sys_enter, passes here too with the
/// errno seccomp gave it, and one hook instead of two halves what recording costs every
/// syscall on the machine (see the README's Performance section).
///
/// Calls that never return are counted elsewhere: exit and exit_group when the task ends
/// (`count_exit`); rt_sigreturn does return, but with `orig_ax` cleared.
#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    // `btf_trace_sys_exit(void *, struct pt_regs *regs, long ret)`.
    let regs: *const u8 = ctx.arg(0);
    let Some(exe_slot) = watched_caller(regs) else {
        return 0;
    };
    let ret: i64 = ctx.arg(1);
    let id = regs::orig_ax(regs);
    // rt_sigreturn restores the interrupted registers and sets `orig_ax` to -1, so that they
    // are not taken for a syscall to restart.
    let sigreturn = id == u64::MAX;
    let (abi, nr) = if sigreturn { self::sigreturn(regs) } else { syscall_abi(regs, id) };
    // The child of clone, fork or vfork leaves the call too, with 0 and the parent's
    // registers: that is the parent's one call, counted (and decoded) on the parent's side.
    if ret == 0 && is_fork(abi, nr) {
        return 0;
    }
    if counted(exe_slot, regs, abi, nr, ret, sigreturn) {
        // A tail call does not return here.
        // SAFETY: the target is a tp_btf program on the same tracepoint, taking the same context.
        let _ = unsafe { ARG_DECODERS.tail_call(&ctx, 0) };
    }
    0
}

/// `long x64_sys_call(const struct pt_regs *regs, unsigned int nr)`: every x86_64 call the
/// kernel runs. A new task does not return from its clone here (it starts in
/// `ret_from_fork`), so the parent's call is the only one seen, as at `sys_exit`.
#[fexit(function = "x64_sys_call")]
pub fn x64_sys_call_exit(ctx: FExitContext) -> i32 {
    if returned(ctx.arg(0), ctx.arg(1), ctx.arg(2), abi::NATIVE) {
        // SAFETY: the target is an fexit program on x64_sys_call, taking the same context.
        let _ = unsafe { ARG_DECODERS_X64.tail_call(&ctx, 0) };
    }
    0
}

/// i386 calls (32-bit tasks, and `int 0x80` from 64-bit ones); counted, not decoded.
#[fexit(function = "ia32_sys_call")]
pub fn ia32_sys_call_exit(ctx: FExitContext) -> i32 {
    returned(ctx.arg(0), ctx.arg(1), ctx.arg(2), abi::IA32);
    0
}

/// x32 calls, on kernels built with that ABI (`nr` without its marker bit).
#[fexit(function = "x32_sys_call")]
pub fn x32_sys_call_exit(ctx: FExitContext) -> i32 {
    returned(ctx.arg(0), ctx.arg(1), ctx.arg(2), abi::X32);
    0
}

/// A call of `abi` numbered `nr` came back from the kernel's table with `ret`: counted if the
/// current task is watched; whether to decode it.
#[inline(always)]
fn returned(regs: *const u8, nr: u64, ret: i64, abi: u32) -> bool {
    let Some(exe_slot) = watched_caller(regs) else {
        return false;
    };
    // `nr` is an unsigned int: the rest of its argument slot is not the caller's.
    let nr = nr & 0xffff_ffff;
    // rt_sigreturn has set `orig_ax` to -1 by the time it returns (see `sys_exit`).
    counted(exe_slot, regs, abi, nr, ret, regs::orig_ax(regs) == u64::MAX)
}

/// `int __secure_computing(...)` (its argument went away in 6.15), run on entry to every
/// call of a task under seccomp; -1 when the call is not to run. A refused call never reaches a
/// syscall table, so this is where the fexit way sees it: with the errno seccomp put in `ax`
/// (or the call number, for a filter that traps with SIGSYS), as `sys_exit` would.
#[fexit(function = "__secure_computing")]
pub fn seccomp_refused(ctx: FExitContext) -> i32 {
    let mut verdict: u64 = 0;
    // SAFETY: the helper writes the traced function's return value into our local; it takes
    // the context it was given.
    if unsafe { bpf_get_func_ret(ctx.as_ptr(), &mut verdict) } != 0 || verdict as u32 as i32 != -1 {
        return 0;
    }
    let (current, tid) = regs::current_task();
    let Some(task) = watched_thread(tid) else {
        return 0;
    };
    let Some(regs) = regs::task_regs(current) else {
        return 0;
    };
    let (abi, nr) = syscall_abi(regs, regs::orig_ax(regs));
    // SAFETY: `task` points into TASKS, valid for this program run.
    if counted(unsafe { (*task).exe_slot }, regs, abi, nr, regs::ax(regs) as i64, false) {
        // SAFETY: the target is an fexit program on __secure_computing, taking the same context.
        let _ = unsafe { ARG_DECODERS_SECCOMP.tail_call(&ctx, 0) };
    }
    0
}

/// Counts a watched task's call (its registers at `regs`, its executable `exe_slot`) and its
/// error; whether its arguments are to be decoded.
#[inline(always)]
fn counted(exe_slot: u32, regs: *const u8, abi: u32, nr: u64, ret: i64, sigreturn: bool) -> bool {
    let Some(slot) = record(exe_slot, abi, nr) else {
        return false;
    };
    // rt_sigreturn "returns" the registers it restores: a negative ax is the result of the
    // call the signal interrupted, already counted there, not a failure of rt_sigreturn.
    if ret < 0 && !sigreturn && errno::recorded(ret.unsigned_abs()) {
        note_error(ret.unsigned_abs() as u16, slot, exe_slot);
    }
    abi == abi::NATIVE && crate::args::decodes(nr) && !crate::args::looks_at_open_descriptor(nr, regs)
}

/// exit and exit_group never reach sys_exit: when a watched task ends, its registers still
/// hold the call it made, if it ended by one (a task killed by a signal holds another).
#[inline(always)]
pub fn count_exit(exe_slot: u32) {
    let Some((abi, nr)) = current_syscall() else {
        return;
    };
    let exit = match abi {
        abi::IA32 => nr == IA32_EXIT || nr == IA32_EXIT_GROUP,
        _ => nr == NATIVE_EXIT || nr == NATIVE_EXIT_GROUP,
    };
    if exit {
        record(exe_slot, abi, nr);
    }
}

/// The ABI and number of the syscall the current task is in (or ended in), from its saved
/// registers: for hooks that are not syscall tracepoints.
#[inline(always)]
fn current_syscall() -> Option<(u32, u64)> {
    let regs = regs::task_regs(regs::current())?;
    Some(syscall_abi(regs, regs::orig_ax(regs)))
}

/// `SIGSYS` and its `si_code` from seccomp (`SYS_SECCOMP`, include/uapi/asm-generic/siginfo.h).
const SIGSYS: i32 = 31;
const SYS_SECCOMP: i32 = 1;

/// `kernel_siginfo.si_code`'s offset from this kernel's BTF, set by the loader.
#[unsafe(no_mangle)]
static SIGINFO_CODE_OFFSET: Global<u32> = Global::new(0);

/// A call refused by a seccomp filter that kills (systemd's `SystemCallFilter=` without an
/// errno) never returns, so sys_exit never sees it. The kernel sends SIGSYS to the caller from
/// within the call, while its registers still hold the syscall number: count the call there,
/// with `SIGSYS` as its error.
///
/// `signal_generate(int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
/// int result)`, as a BTF tracepoint: every other signal on the host costs one comparison.
#[btf_tracepoint(function = "signal_generate")]
pub fn signal_generate(ctx: BtfTracePointContext) -> i32 {
    let sig: u64 = ctx.arg(0);
    if sig as i32 != SIGSYS {
        return 0;
    }
    // `info` may also be SEND_SIG_NOINFO (0) or SEND_SIG_PRIV (1), no siginfo at all, so
    // recent verifiers (6.18's) type it as a number, not a pointer: read through it with a
    // checked helper.
    let info: u64 = ctx.arg(1);
    let code = if info > 1 {
        let at = (info + SIGINFO_CODE_OFFSET.load() as u64) as *const i32;
        // SAFETY: a checked kernel read; a bad address fails it.
        unsafe { bpf_probe_read_kernel(at) }.unwrap_or(0)
    } else {
        0
    };
    if code != SYS_SECCOMP || regs::task_pid(ctx.arg(2)) != Some(crate::filter::current_tid()) {
        return 0;
    }
    let Some(task) = watched_task() else {
        return 0;
    };
    // SAFETY: `task` points into TASKS, valid for this program run.
    let exe_slot = unsafe { (*task).exe_slot };
    let Some((abi, nr)) = current_syscall() else {
        return 0;
    };
    if let Some(slot) = record(exe_slot, abi, nr) {
        note_error(errno::SIGSYS, slot, exe_slot);
    }
    0
}

/// Syscall numbers of exit and exit_group (arch/x86/entry/syscalls/syscall_{64,32}.tbl).
const NATIVE_EXIT: u64 = 60;
const NATIVE_EXIT_GROUP: u64 = 231;
const IA32_EXIT: u64 = 1;
const IA32_EXIT_GROUP: u64 = 252;
/// clone, fork, vfork and clone3 in each ABI: the calls a new task also returns from.
const NATIVE_FORKS: [u64; 4] = [56, 57, 58, 435];
const IA32_FORKS: [u64; 4] = [120, 2, 190, 435];

#[inline(always)]
fn is_fork(abi: u32, nr: u64) -> bool {
    // One comparison with immediates per ABI: choosing a table first made the compiler load
    // it from read-only data, a cache line more for every call that returns 0.
    if abi == abi::IA32 { IA32_FORKS.contains(&nr) } else { NATIVE_FORKS.contains(&nr) }
}

/// rt_sigreturn's number in each ABI. i386 also has a plain sigreturn (119), which cannot be
/// told apart here; both are in systemd's always-allowed `@default`.
const NATIVE_RT_SIGRETURN: u64 = 15;
const IA32_RT_SIGRETURN: u64 = 173;

/// The sigreturn call of the task's ABI. x32 cannot be told from native here (its marker bit
/// was in the cleared `orig_ax`), so an x32 task's sigreturn counts as the native one.
#[inline(always)]
fn sigreturn(regs: *const u8) -> (u32, u64) {
    match syscall_abi(regs, 0).0 {
        abi::IA32 => (abi::IA32, IA32_RT_SIGRETURN),
        _ => (abi::NATIVE, NATIVE_RT_SIGRETURN),
    }
}

/// The ABI of a syscall and its number within it.
#[inline(always)]
fn syscall_abi(regs: *const u8, id: u64) -> (u32, u64) {
    if id & abi::X32_SYSCALL_BIT != 0 {
        return (abi::X32, id & !abi::X32_SYSCALL_BIT);
    }
    (if regs::compat_entry(regs) { abi::IA32 } else { abi::NATIVE }, id)
}

/// Counts the syscall and marks it used by the executable; returns its slot.
#[inline(always)]
fn record(exe_slot: u32, abi: u32, nr: u64) -> Option<u32> {
    if nr >= abi::NR_LIMIT as u64 {
        count_loss(loss::SYSCALL_OUT_OF_RANGE);
        return None;
    }
    let slot = abi * abi::NR_LIMIT + nr as u32;
    // The compiler proves `slot` in range from the test above and may drop a second test;
    // the verifier cannot always follow its proof (for a constant `abi` it tested a masked
    // copy of `nr`), so the slot is read back through memory, opaque to the compiler, and
    // tested where the verifier sees it.
    // SAFETY: a read of a local.
    let index = unsafe { core::ptr::read_volatile(&slot) } as usize;
    if index < SYSCALL_SLOTS as usize {
        if let Some(counts) = SYSCALL_COUNTS.get_ptr_mut(0) {
            // SAFETY: this CPU's counters; programs on one CPU do not interleave on them.
            unsafe { (*counts).calls[index] += 1 };
        }
        if let Some(used) = EXE_SYSCALLS.get_ptr_mut(exe_slot) {
            // SAFETY: shared across CPUs, but every writer stores the same value 1.
            let byte = unsafe { &mut (*used).used[index] };
            if *byte == 0 {
                *byte = 1;
            }
        }
    }
    Some(slot)
}

/// The benchmark's floors: an empty program on each syscall hook. What it costs every
/// syscall is the kernel's own toll for any syscall recorder on that hook (`profiler floor`,
/// used by `cargo xtask bench`); never attached while recording.
#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit_floor(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[fexit(function = "x64_sys_call")]
pub fn x64_sys_call_floor(_ctx: FExitContext) -> i32 {
    0
}
