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
use profiler_common::{MAX_TASKS, TargetConfig, TaskState, loss};

#[map]
pub static CONFIG: Array<TargetConfig> = Array::with_max_entries(1, 0);

#[map]
pub static TASKS: HashMap<u32, TaskState> = HashMap::with_max_entries(MAX_TASKS, 0);

#[map]
pub static LOSSES: PerCpuArray<u64> = PerCpuArray::with_max_entries(loss::COUNT, 0);

/// The current thread's id (the kernel's `pid`).
#[inline(always)]
pub fn current_tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// The watched state of the current task, if it is watched.
#[inline(always)]
pub fn watched_task() -> Option<*mut TaskState> {
    TASKS.get_ptr_mut(current_tid())
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
