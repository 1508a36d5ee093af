//! The saved user registers of the current task (`struct pt_regs`), and a few fields of other
//! kernel objects the hooks are handed (a task's id, the exec's file name), read with plain
//! loads.
//!
//! Every pointer given here is one the verifier knows by its BTF type (a `tp_btf` or fexit
//! argument, `bpf_task_pt_regs`, `bpf_get_current_task_btf`, a struct pointer loaded from one
//! of those by `load_ptr`), so a load is one instruction it guards
//! with an exception-table entry: no helper call, which on this path costs more than the
//! rest of the program (each call pays the CPU's return-thunk mitigations).

use aya_ebpf::{
    Global,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    },
};

/// `struct pt_regs` on x86_64 (arch/x86/include/asm/ptrace.h), in u64 words.
const R11: usize = 6;
const AX: usize = 10;
const CX: usize = 11;
const ORIG_AX: usize = 15;
const IP: usize = 16;
const CS: usize = 17;
const FLAGS: usize = 18;

/// `__USER32_CS` and `__USER_CS` (arch/x86/include/asm/segment.h): the code segments of
/// compat (i386) and 64-bit mode.
const USER32_CS: u64 = 0x23;
const USER_CS: u64 = 0x33;
/// `TS_COMPAT` in `thread_info.status` (arch/x86/include/asm/thread_info.h): the kernel set it
/// at entry because this syscall came in through a 32-bit entry point (`int 0x80`,
/// sysenter, 32-bit syscall), even from a 64-bit task; it is cleared only on the way back to
/// user mode, after the `sys_exit` tracepoint.
const TS_COMPAT: u32 = 0x0002;

/// `task_struct.thread_info.status`'s offset from this kernel's BTF, set by the loader (0:
/// unknown). In read-only data, so the verifier takes it as the constant it is, as a load
/// through a BTF pointer requires.
#[unsafe(no_mangle)]
static THREAD_STATUS_OFFSET: Global<u32> = Global::new(0);
/// `task_struct.pid`'s offset, likewise (0: unknown).
#[unsafe(no_mangle)]
static TASK_PID_OFFSET: Global<u32> = Global::new(0);

/// The current task as a BTF pointer.
#[inline(always)]
pub fn current() -> *const u8 {
    // SAFETY: a plain helper; the current task is a valid BTF pointer for this run.
    unsafe { bpf_get_current_task_btf() as *const u8 }
}

/// The current task as a BTF pointer, and its thread id: one helper call where the loader
/// knew `task_struct.pid`, two otherwise.
#[inline(always)]
pub fn current_task() -> (*const u8, u32) {
    let task = current();
    let offset = TASK_PID_OFFSET.load();
    let tid = if offset != 0 {
        // SAFETY: as in `word`, at a constant offset the verifier checks against the type.
        unsafe { core::ptr::read_volatile(task.add(offset as usize) as *const u32) }
    } else {
        bpf_get_current_pid_tgid() as u32
    };
    (task, tid)
}

/// The thread id of `task`, a BTF task pointer (a `tp_btf` argument); None where the loader
/// did not know `task_struct.pid` (it refuses to load the lifecycle hooks without it).
#[inline(always)]
pub fn task_pid(task: *const u8) -> Option<u32> {
    let offset = TASK_PID_OFFSET.load();
    if offset == 0 || task.is_null() {
        return None;
    }
    // SAFETY: as in `word`, at a constant offset the verifier checks against the type.
    Some(unsafe { core::ptr::read_volatile(task.add(offset as usize) as *const u32) })
}

/// The u64 at byte `offset` (a loader-set constant from BTF) of the BTF-typed object `base`;
/// 0 where `offset` is unknown (0) or the load faults.
#[inline(always)]
pub fn load_u64(base: *const u8, offset: u32) -> u64 {
    if offset == 0 || base.is_null() {
        return 0;
    }
    // SAFETY: as in `word`.
    unsafe { core::ptr::read_volatile(base.add(offset as usize) as *const u64) }
}

/// The pointer at byte `offset` (a loader-set constant from BTF, never 0 for a pointer
/// member here) of the BTF-typed object `base`, typed in turn by the verifier from the member
/// it finds there when that points to a struct (a pointer to anything else is a number to
/// it, only good for helper reads); null where `offset` is unknown (0), `base` is null or the load faults.
#[inline(always)]
pub fn load_ptr(base: *const u8, offset: u32) -> *const u8 {
    if offset == 0 || base.is_null() {
        return core::ptr::null();
    }
    // SAFETY: as in `word`.
    unsafe { core::ptr::read_volatile(base.add(offset as usize) as *const *const u8) }
}

/// The u32 at byte `offset` (a loader-set constant from BTF, 0 included) of the BTF-typed
/// object `base`; 0 where `base` is null or the load faults.
#[inline(always)]
pub fn load_u32(base: *const u8, offset: u32) -> u32 {
    if base.is_null() {
        return 0;
    }
    // SAFETY: as in `word`.
    unsafe { core::ptr::read_volatile(base.add(offset as usize) as *const u32) }
}

/// One u64 word of a BTF-typed kernel object.
#[inline(always)]
fn word(base: *const u8, index: usize) -> u64 {
    // SAFETY: `base` is a BTF pointer (see the module comment): the verifier turns this into
    // a guarded load, which yields 0 instead of faulting.
    unsafe { core::ptr::read_volatile(base.add(index * 8) as *const u64) }
}

/// The saved user registers of `task` (a BTF task pointer), as a BTF pointer.
#[inline(always)]
pub fn task_regs(task: *const u8) -> Option<*const u8> {
    // SAFETY: a plain helper taking a BTF task pointer.
    let regs = unsafe { bpf_task_pt_regs(task as *mut _) } as *const u8;
    (!regs.is_null()).then_some(regs)
}

/// The return value the task will see (`ax`).
#[inline(always)]
pub fn ax(regs: *const u8) -> u64 {
    word(regs, AX)
}

/// The syscall id the task entered with (`orig_ax`): -1 after rt_sigreturn.
#[inline(always)]
pub fn orig_ax(regs: *const u8) -> u64 {
    word(regs, ORIG_AX)
}

/// The `n`th syscall argument: di, si, dx, r10, r8, r9. A match, not a table, so that each
/// load's offset is a constant the verifier sees.
#[inline(always)]
pub fn arg(regs: *const u8, n: usize) -> u64 {
    match n {
        0 => word(regs, 14),
        1 => word(regs, 13),
        2 => word(regs, 12),
        3 => word(regs, 7),
        4 => word(regs, 9),
        _ => word(regs, 8),
    }
}

/// Whether the current task's syscall, its registers at `regs`, came in through a 32-bit
/// entry point.
#[inline(always)]
pub fn compat_entry(regs: *const u8) -> bool {
    if syscall_instruction_entry(regs) {
        return false;
    }
    let offset = THREAD_STATUS_OFFSET.load();
    if offset != 0 {
        // Asked only here: the helper call costs a watched syscall more than the rest of its
        // counting (it pays the CPU's return-thunk mitigation).
        let task = current();
        // SAFETY: as in `word`, at a constant offset the verifier checks against the type.
        let status = unsafe { core::ptr::read_volatile(task.add(offset as usize) as *const u32) };
        status & TS_COMPAT != 0
    } else {
        // Without BTF for it, the code segment: right for 32-bit tasks, not for a 64-bit task
        // calling through `int 0x80`.
        word(regs, CS) == USER32_CS
    }
}

/// Whether the registers at `regs` are as 64-bit code's `syscall` instruction leaves them: it
/// puts the return address in cx and the flags in r11, and the entry code saves both beside ip
/// and flags, so at a 64-bit entry the pairs match. sysenter and a 32-bit task's `syscall`
/// save the 32-bit code segment, which the test excludes; `int 0x80` from 64-bit code saves
/// the caller's own cx and r11 (an argument and a scratch register), which match only if set so
/// on purpose (by the program, or by a debugger at the call's entry): that is the one way this
/// can be wrong, named in the README's Limitations. Where they differ for a 64-bit call (execve
/// and rt_sigreturn rewrite the registers, a debugger may set them, FRED entry leaves cx and
/// r11 as they were), the caller asks the task, which is exact.
#[inline(always)]
fn syscall_instruction_entry(regs: *const u8) -> bool {
    word(regs, CS) == USER_CS && word(regs, CX) == word(regs, IP) && word(regs, R11) == word(regs, FLAGS)
}
