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
use profiler_common::{MAX_TASKS, TargetConfig, TaskState, UnwatchedHint, loss};

#[map]
pub static CONFIG: Array<TargetConfig> = Array::with_max_entries(1, 0);

#[map]
pub static TASKS: HashMap<u32, TaskState> = HashMap::with_max_entries(MAX_TASKS, 0);

#[map]
pub static LOSSES: PerCpuArray<u64> = PerCpuArray::with_max_entries(loss::COUNT, 0);

/// What this CPU last found unwatched (`UnwatchedHint`). Valid until that thread is put in
/// TASKS, which clears it on every CPU (`forget_unwatched`).
#[map]
static UNWATCHED_HINT: PerCpuArray<UnwatchedHint> = PerCpuArray::with_max_entries(1, 0);

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

/// Whether the thread whose saved user registers are at `regs` is the one this CPU last
/// found unwatched at a syscall.
///
/// Every syscall of every task on the host asks this first, and nearly all of them are not
/// watched. A syscall hook has `regs` at hand, and a thread's registers sit at a fixed place
/// on its kernel stack for its whole life, so the answer takes no helper call but the per-CPU
/// array lookup, which kernels since about 6.10 inline (on this kind of host a helper call
/// costs more than the rest of an unwatched run). A stack
/// freed by an exit and given to a new thread names that thread from then on: a thread made
/// by a watched one is watched at its fork, which clears the hint (`forget_unwatched`).
#[inline(always)]
pub fn known_unwatched(regs: *const u8) -> bool {
    // SAFETY: this CPU's entry.
    UNWATCHED_HINT.get_ptr(0).is_some_and(|hint| unsafe { (*hint).regs } == regs as u64)
}

/// The watched state of the thread `tid` making a syscall, whose saved registers are at
/// `regs`, once `known_unwatched` said no; if it is not watched, remembered by both.
#[inline(always)]
pub fn watched_caller(tid: u32, regs: *const u8) -> Option<*mut TaskState> {
    let task = TASKS.get_ptr_mut(tid);
    if task.is_none()
        && let Some(hint) = UNWATCHED_HINT.get_ptr_mut(0)
    {
        // SAFETY: this CPU's entry; as in `watched_thread`.
        unsafe {
            (*hint).tid = tid;
            (*hint).regs = regs as u64;
        }
    }
    task
}

/// The watched state of thread `tid`, if it is watched: for hooks other than the syscall
/// ones, which remember the thread by id.
#[inline(always)]
pub fn watched_thread(tid: u32) -> Option<*mut TaskState> {
    let hint = UNWATCHED_HINT.get_ptr_mut(0);
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

/// Possible CPUs on this host, set by the loader: the hints `forget_unwatched` clears.
#[unsafe(no_mangle)]
static POSSIBLE_CPUS: Global<u32> = Global::new(1);
const MAX_CPUS: u32 = 4096;

/// After thread `tid`, whose saved registers are at `regs`, was put in TASKS: no CPU may go on
/// taking it for unwatched. With `regs` 0 (not known) every CPU forgets the registers it
/// remembers, whoever's they were: a miss then costs one hash lookup, a wrong hint would lose
/// the thread's syscalls.
#[inline(never)]
pub fn forget_unwatched(tid: u32, regs: u64) {
    let cpus = POSSIBLE_CPUS.load().min(MAX_CPUS);
    let key = 0u32;
    let map = &raw const UNWATCHED_HINT as *mut c_void;
    for cpu in 0..MAX_CPUS {
        if cpu >= cpus {
            break;
        }
        // SAFETY: a checked helper lookup in our own per-CPU map; null when absent.
        let hint = unsafe { bpf_map_lookup_percpu_elem(map, (&raw const key).cast(), cpu) }.cast::<UnwatchedHint>();
        if hint.is_null() {
            continue;
        }
        // SAFETY: a non-null pointer from the lookup points at that CPU's value.
        unsafe {
            if (*hint).tid == tid {
                (*hint).tid = 0;
            }
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
