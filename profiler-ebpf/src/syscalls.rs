//! Syscall numbers per ABI, counted per CPU and marked per executable, and the error returns
//! a sandbox can cause, per syscall and executable.
//!
//! A BTF raw tracepoint (`tp_btf`), not `raw_syscalls:sys_exit`: it passes the registers
//! without the tracepoint record copy, typed, so they are read with plain loads (`regs`); and
//! this runs on every syscall of the whole machine.

use aya_ebpf::{
    Global,
    helpers::generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    macros::{btf_tracepoint, map, tracepoint},
    maps::{Array, PerCpuArray},
    programs::{BtfTracePointContext, TracePointContext},
};
use profiler_common::{ExeSyscalls, MAX_EXECUTABLES, SYSCALL_SLOTS, abi, errno, loss};

use crate::{
    args::ARG_DECODERS,
    filter::{count_loss, watched_task, watched_thread},
    observations::note_error,
    regs,
};

#[map]
pub static SYSCALL_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(SYSCALL_SLOTS, 0);

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
    let (current, tid) = regs::current_task();
    let Some(task) = watched_thread(tid) else {
        return 0;
    };
    // `btf_trace_sys_exit(void *, struct pt_regs *regs, long ret)`.
    let regs: *const u8 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    let id = regs::orig_ax(regs);
    // rt_sigreturn restores the interrupted registers and sets `orig_ax` to -1, so that they
    // are not taken for a syscall to restart.
    let (abi, nr) = if id == u64::MAX { sigreturn(current, regs) } else { syscall_abi(current, regs, id) };
    // The child of clone, fork or vfork leaves the call too, with 0 and the parent's
    // registers: that is the parent's one call, counted (and decoded) on the parent's side.
    if ret == 0 && is_fork(abi, nr) {
        return 0;
    }
    // SAFETY: `task` points into TASKS, valid for this program run.
    let exe_slot = unsafe { (*task).exe_slot };
    let Some(slot) = record(exe_slot, abi, nr) else {
        return 0;
    };
    // rt_sigreturn "returns" the registers it restores: a negative ax is the result of the
    // call the signal interrupted, already counted there, not a failure of rt_sigreturn.
    if ret < 0 && id != u64::MAX && errno::recorded(ret.unsigned_abs()) {
        note_error(ret.unsigned_abs() as u16, slot, exe_slot);
    }
    if abi == abi::NATIVE && crate::args::decodes(nr) {
        // A tail call does not return here.
        // SAFETY: the target is a tp_btf program on the same tracepoint, taking the same context.
        let _ = unsafe { ARG_DECODERS.tail_call(&ctx, 0) };
    }
    0
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
    // SAFETY: plain helpers; the current task is a valid BTF task pointer for this run.
    let task = unsafe { bpf_get_current_task_btf() };
    // SAFETY: as above.
    let regs = unsafe { bpf_task_pt_regs(task) } as *const u8;
    if regs.is_null() {
        return None;
    }
    Some(syscall_abi(task as *const u8, regs, regs::orig_ax(regs)))
}

/// `SIGSYS` and its `si_code` from seccomp (`SYS_SECCOMP`, include/uapi/asm-generic/siginfo.h).
const SIGSYS: i32 = 31;
const SYS_SECCOMP: i32 = 1;

#[unsafe(no_mangle)]
static SIGNAL_SIG_OFFSET: Global<u32> = Global::new(8);
#[unsafe(no_mangle)]
static SIGNAL_CODE_OFFSET: Global<u32> = Global::new(16);
#[unsafe(no_mangle)]
static SIGNAL_PID_OFFSET: Global<u32> = Global::new(36);

/// A call refused by a seccomp filter that kills (systemd's `SystemCallFilter=` without an
/// errno) never returns, so sys_exit never sees it. The kernel sends SIGSYS to the caller from
/// within the call, while its registers still hold the syscall number: count the call there,
/// with `SIGSYS` as its error.
#[tracepoint(category = "signal", name = "signal_generate")]
pub fn signal_generate(ctx: TracePointContext) -> u32 {
    // SAFETY: offsets from this kernel's tracepoint format.
    let (Ok(sig), Ok(code), Ok(pid)) = (unsafe {
        (
            ctx.read_at::<i32>(SIGNAL_SIG_OFFSET.load() as usize),
            ctx.read_at::<i32>(SIGNAL_CODE_OFFSET.load() as usize),
            ctx.read_at::<i32>(SIGNAL_PID_OFFSET.load() as usize),
        )
    }) else {
        return 0;
    };
    if sig != SIGSYS || code != SYS_SECCOMP || pid as u32 != crate::filter::current_tid() {
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
    let forks = if abi == abi::IA32 { &IA32_FORKS } else { &NATIVE_FORKS };
    nr == forks[0] || nr == forks[1] || nr == forks[2] || nr == forks[3]
}

/// rt_sigreturn's number in each ABI. i386 also has a plain sigreturn (119), which cannot be
/// told apart here; both are in systemd's always-allowed `@default`.
const NATIVE_RT_SIGRETURN: u64 = 15;
const IA32_RT_SIGRETURN: u64 = 173;

/// The sigreturn call of the task's ABI. x32 cannot be told from native here (its marker bit
/// was in the cleared `orig_ax`), so an x32 task's sigreturn counts as the native one.
#[inline(always)]
fn sigreturn(task: *const u8, regs: *const u8) -> (u32, u64) {
    match syscall_abi(task, regs, 0).0 {
        abi::IA32 => (abi::IA32, IA32_RT_SIGRETURN),
        _ => (abi::NATIVE, NATIVE_RT_SIGRETURN),
    }
}

/// The ABI of a syscall and its number within it.
#[inline(always)]
fn syscall_abi(task: *const u8, regs: *const u8, id: u64) -> (u32, u64) {
    if id & abi::X32_SYSCALL_BIT != 0 {
        return (abi::X32, id & !abi::X32_SYSCALL_BIT);
    }
    (if regs::compat_entry(task, regs) { abi::IA32 } else { abi::NATIVE }, id)
}

/// Counts the syscall and marks it used by the executable; returns its slot.
#[inline(always)]
fn record(exe_slot: u32, abi: u32, nr: u64) -> Option<u32> {
    if nr >= abi::NR_LIMIT as u64 {
        count_loss(loss::SYSCALL_OUT_OF_RANGE);
        return None;
    }
    let slot = abi * abi::NR_LIMIT + nr as u32;
    if let Some(count) = SYSCALL_COUNTS.get_ptr_mut(slot) {
        // SAFETY: per-CPU counter.
        unsafe { *count += 1 };
    }
    if let Some(used) = EXE_SYSCALLS.get_ptr_mut(exe_slot) {
        // SAFETY: shared across CPUs, but every writer stores the same value 1.
        let byte = unsafe { &mut (*used).used[slot as usize % SYSCALL_SLOTS as usize] };
        if *byte == 0 {
            *byte = 1;
        }
    }
    Some(slot)
}

/// The benchmark's floor: an empty program on the same hook as `sys_exit`. What it costs every
/// syscall is the kernel's own toll for any syscall recorder on this kernel (`profiler
/// floor`, used by `cargo xtask bench`); never attached while recording.
#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit_floor(_ctx: BtfTracePointContext) -> i32 {
    0
}
