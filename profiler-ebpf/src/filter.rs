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
use profiler_common::{MAX_TASKS, TargetConfig, TaskState, loss};

#[map]
pub static CONFIG: Array<TargetConfig> = Array::with_max_entries(1, 0);

#[map]
pub static TASKS: HashMap<u32, TaskState> = HashMap::with_max_entries(MAX_TASKS, 0);

#[map]
pub static LOSSES: PerCpuArray<u64> = PerCpuArray::with_max_entries(loss::COUNT, 0);

/// The last thread this CPU found unwatched (0: none). Valid until that thread is put in
/// TASKS, which clears it on every CPU (`forget_unwatched`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UnwatchedHint {
    tid: u32,
}

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

/// The watched state of thread `tid`, if it is watched.
///
/// Every syscall of every task on the host asks this, and nearly all of them are not
/// watched: the thread this CPU last found unwatched is remembered, and asking again costs an
/// array read instead of the hash lookup, until the thread is put in TASKS.
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

/// After `tid` was put in TASKS: no CPU may go on taking it for unwatched.
#[inline(never)]
pub fn forget_unwatched(tid: u32) {
    let cpus = POSSIBLE_CPUS.load().min(MAX_CPUS);
    let key = 0u32;
    let map = &raw const UNWATCHED_HINT as *mut c_void;
    for cpu in 0..MAX_CPUS {
        if cpu >= cpus {
            break;
        }
        // SAFETY: a checked helper lookup in our own per-CPU map; null when absent.
        let hint = unsafe { bpf_map_lookup_percpu_elem(map, (&raw const key).cast(), cpu) }.cast::<UnwatchedHint>();
        // SAFETY: non-null pointers from the lookup point at that CPU's value.
        if !hint.is_null() && unsafe { (*hint).tid } == tid {
            unsafe { (*hint).tid = 0 };
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
