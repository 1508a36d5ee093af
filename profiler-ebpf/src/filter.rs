//! Which tasks are watched, and the loss counters every program may bump.
//!
//! A task is watched once it execs inside the target cgroup subtree, and its forks inherit
//! that, wherever they later move. Tasks that are in the cgroup but have not exec'd yet (systemd
//! setting up namespaces, dropping capabilities, installing seccomp) are not.

use aya_ebpf::{
    helpers::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_pid_tgid},
    macros::map,
    maps::{Array, HashMap, PerCpuArray},
};
use core::ffi::c_void;

use aya_ebpf::{Global, helpers::generated::bpf_map_lookup_percpu_elem};
use profiler_common::{CallerHint, MAX_TASKS, TargetConfig, TaskState, loss};

use crate::regs;

#[map]
pub static CONFIG: Array<TargetConfig> = Array::with_max_entries(1, 0);

#[map]
pub static TASKS: HashMap<u32, TaskState> = HashMap::with_max_entries(MAX_TASKS, 0);

#[map]
pub static LOSSES: PerCpuArray<u64> = PerCpuArray::with_max_entries(loss::COUNT, 0);

/// What this CPU last found out about a thread (`CallerHint`). An entry stays valid until
/// `forget_caller` clears it on every CPU.
#[map]
static CALLER_HINT: PerCpuArray<CallerHint> = PerCpuArray::with_max_entries(1, 0);

/// The current thread's id (the kernel's `pid`).
#[inline(always)]
pub fn current_tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// The watched state of the current task, if it is watched.
#[inline(always)]
pub fn watched_task() -> Option<*mut TaskState> {
    watched_thread(current_tid())
}

/// The executable slot of the thread making a syscall, whose saved user registers are at
/// `regs`, if it is watched.
///
/// Every syscall of every task on the host asks this, so the answer is remembered per CPU by
/// `regs`: a syscall hook has them at hand, and a thread's registers sit at a fixed place on
/// its kernel stack for its whole life, so asking again takes no helper call and no hash
/// lookup, only the per-CPU array lookup that kernels since about 6.10 inline (on this kind of
/// host a helper call costs more than the rest of an unwatched run, and the TASKS lookup a
/// third of a watched one). The answer changes only when the thread is put in TASKS (its
/// exec, its fork, adoption), when a watched thread execs (a new slot) and when its stack is
/// freed and given to a new thread (its end): each clears it on every CPU (`forget_caller`).
#[inline(always)]
pub fn watched_caller(regs: *const u8) -> Option<u32> {
    let Some(hint) = CALLER_HINT.get_ptr_mut(0) else {
        return watched_exe(regs::current_task().1);
    };
    let regs = regs as u64;
    // The verifier allows no arithmetic on the pointer `regs`, only comparisons: the seal is
    // undone on the stored value instead, and made from a copy of `regs` read back from the
    // map, where it is a plain number.
    // SAFETY: this CPU's entry; no other program runs on this CPU meanwhile, and other CPUs
    // only clear it (`forget_caller`).
    unsafe {
        if (*hint).regs == regs {
            let caller = core::ptr::read_volatile(&(*hint).caller);
            if core::ptr::read_volatile(&(*hint).seal) ^ caller as u64 == regs {
                return caller.checked_sub(1);
            }
        }
        let exe = watched_exe(regs::current_task().1);
        let caller = exe.map_or(0, |slot| slot + 1);
        (*hint).caller = caller;
        (*hint).seal = regs;
        (*hint).seal = core::ptr::read_volatile(&(*hint).seal) ^ caller as u64;
        (*hint).regs = regs;
        exe
    }
}

/// The executable slot of thread `tid`, if it is watched.
#[inline(always)]
fn watched_exe(tid: u32) -> Option<u32> {
    // SAFETY: points into TASKS, valid for this program run.
    TASKS.get_ptr(tid).map(|task| unsafe { (*task).exe_slot })
}

/// The watched state of thread `tid`, if it is watched: for hooks other than the syscall
/// ones, which remember an unwatched thread by id.
#[inline(always)]
pub fn watched_thread(tid: u32) -> Option<*mut TaskState> {
    let hint = CALLER_HINT.get_ptr_mut(0);
    if let Some(hint) = hint {
        // SAFETY: this CPU's entry.
        if unsafe { (*hint).tid } == tid {
            return None;
        }
    }
    let task = TASKS.get_ptr_mut(tid);
    if task.is_none()
        && let Some(hint) = hint
    {
        // SAFETY: this CPU's entry. A thread being put in TASKS never runs here meanwhile: it
        // is either the one exec'ing on another CPU or a child not yet started.
        unsafe { (*hint).tid = tid };
    }
    task
}

/// Possible CPUs on this host, set by the loader: the hints `forget_caller` clears.
#[unsafe(no_mangle)]
static POSSIBLE_CPUS: Global<u32> = Global::new(1);
const MAX_CPUS: u32 = 4096;

/// No CPU may go on answering for thread `tid`, whose saved registers are at `regs`, from what
/// it remembers: the thread was put in TASKS, a watched one exec'd (another slot), or it ends
/// and its stack may go to a new thread. With `regs` 0 (not known) every CPU forgets the
/// registers it remembers, whoever's they were: a miss then costs one hash lookup, a wrong
/// hint would lose a watched thread's syscalls or give it an unwatched one's.
///
/// Only the thread itself makes a CPU remember its registers (the syscall hook runs in the
/// caller), and it is the one running this (exec, exit) or has not run yet (fork): no CPU
/// can remember it again from what it was before.
#[inline(never)]
pub fn forget_caller(tid: u32, regs: u64) {
    let cpus = POSSIBLE_CPUS.load().min(MAX_CPUS);
    let key = 0u32;
    let map = &raw const CALLER_HINT as *mut c_void;
    for cpu in 0..MAX_CPUS {
        if cpu >= cpus {
            break;
        }
        // SAFETY: a checked helper lookup in our own per-CPU map; null when absent.
        let hint = unsafe { bpf_map_lookup_percpu_elem(map, (&raw const key).cast(), cpu) }.cast::<CallerHint>();
        if hint.is_null() {
            continue;
        }
        // SAFETY: a non-null pointer from the lookup points at that CPU's value.
        unsafe {
            if (*hint).tid == tid {
                (*hint).tid = 0;
            }
            // One store: an entry is taken by its address, and a CPU filling its own entry
            // meanwhile (for another thread) leaves either its whole entry or none.
            if regs == 0 || (*hint).regs == regs {
                (*hint).regs = 0;
            }
        }
    }
}

/// Whether the current task sits in the target cgroup or below it.
#[inline(always)]
pub fn in_target_cgroup() -> bool {
    let Some(config) = CONFIG.get(0) else {
        return false;
    };
    // Id 0 means the watched cgroup does not exist yet; it must not match the 0 that the
    // helper returns for a task shallower than the watched level.
    if config.enabled == 0 || config.cgroup_id == 0 {
        return false;
    }
    // SAFETY: a plain helper call; a level deeper than the task's own yields 0, never a match.
    let ancestor = unsafe { bpf_get_current_ancestor_cgroup_id(config.level as i32) };
    ancestor == config.cgroup_id
}

#[inline(always)]
pub fn count_loss(index: u32) {
    if let Some(counter) = LOSSES.get_ptr_mut(index) {
        // SAFETY: per-CPU slot; programs on one CPU do not interleave on it.
        unsafe { *counter += 1 };
    }
}
