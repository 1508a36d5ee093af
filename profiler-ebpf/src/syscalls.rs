//! Syscall numbers per ABI, counted per CPU and marked per executable.
//!
//! Raw tracepoints, not `raw_syscalls:sys_enter`: they pass the syscall id without the
//! tracepoint record copy, and this runs on every syscall of the whole machine.

use aya_ebpf::{
    helpers::bpf_probe_read_kernel,
    macros::{map, raw_tracepoint},
    maps::{Array, PerCpuArray},
    programs::RawTracePointContext,
};
use profiler_common::{
    ExeSyscalls, MAX_EXECUTABLES, SYSCALL_SLOTS, TASK_JUST_EXECED, TaskState, abi, loss,
};

use crate::{
    args::ARG_DECODERS,
    filter::{count_loss, watched_task},
};

#[map]
pub static SYSCALL_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(SYSCALL_SLOTS, 0);

#[map]
pub static EXE_SYSCALLS: Array<ExeSyscalls> = Array::with_max_entries(MAX_EXECUTABLES, 0);

/// `struct pt_regs` on x86_64 (arch/x86/include/asm/ptrace.h): `orig_ax` then `ip`, `cs`.
pub const PT_REGS_ORIG_AX: usize = 15 * 8;
const PT_REGS_CS: usize = 17 * 8;
/// `__USER32_CS` (arch/x86/include/asm/segment.h): code segment of compat (i386) mode.
const USER32_CS: u64 = 0x23;

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    let Some(task) = watched_task() else {
        return 0;
    };
    let regs: *const u8 = ctx.arg(0);
    let id: u64 = ctx.arg(1);
    // SAFETY: `task` points into TASKS, valid for this program run.
    record(unsafe { &*task }, regs, id);
    0
}

/// Decodes the arguments once the kernel has used them: the user pages they point to are
/// resident then (at entry a string not yet faulted in cannot be read), and a call that
/// seccomp refused, which never reaches sys_enter, passes here too.
/// The exec syscall returns into a task that was armed while it ran, so it is counted here.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let Some(task) = watched_task() else {
        return 0;
    };
    // SAFETY: as above; the flag is only ever touched by the task itself.
    let task = unsafe { &mut *task };
    let regs: *const u8 = ctx.arg(0);
    // SAFETY: `regs` is the kernel's pt_regs of the current task.
    let Ok(id) = (unsafe { bpf_probe_read_kernel(regs.add(PT_REGS_ORIG_AX) as *const u64) }) else {
        return 0;
    };
    let abi = if task.flags & TASK_JUST_EXECED != 0 {
        task.flags &= !TASK_JUST_EXECED;
        record(task, regs, id)
    } else {
        syscall_abi(regs, id).0
    };
    if abi == abi::NATIVE && crate::args::decodes(id) {
        // A tail call does not return here.
        // SAFETY: the target is a raw tracepoint program taking the same context.
        let _ = unsafe { ARG_DECODERS.tail_call(&ctx, 0) };
    }
    0
}

/// The ABI of a syscall and its number within it.
#[inline(always)]
fn syscall_abi(regs: *const u8, id: u64) -> (u32, u64) {
    if id & abi::X32_SYSCALL_BIT != 0 {
        (abi::X32, id & !abi::X32_SYSCALL_BIT)
    } else {
        // SAFETY: `regs` is the kernel's pt_regs of the current task.
        let cs = unsafe { bpf_probe_read_kernel(regs.add(PT_REGS_CS) as *const u64) }.unwrap_or(0);
        (if cs == USER32_CS { abi::IA32 } else { abi::NATIVE }, id)
    }
}

/// Counts the syscall; returns its ABI.
#[inline(always)]
fn record(task: &TaskState, regs: *const u8, id: u64) -> u32 {
    let (abi, nr) = syscall_abi(regs, id);
    if nr >= abi::NR_LIMIT as u64 {
        count_loss(loss::SYSCALL_OUT_OF_RANGE);
        return abi;
    }
    let slot = abi * abi::NR_LIMIT + nr as u32;
    if let Some(count) = SYSCALL_COUNTS.get_ptr_mut(slot) {
        // SAFETY: per-CPU counter.
        unsafe { *count += 1 };
    }
    if let Some(used) = EXE_SYSCALLS.get_ptr_mut(task.exe_slot) {
        // SAFETY: shared across CPUs, but every writer stores the same value 1.
        let byte = unsafe { &mut (*used).used[slot as usize % SYSCALL_SLOTS as usize] };
        if *byte == 0 {
            *byte = 1;
        }
    }
    abi
}
