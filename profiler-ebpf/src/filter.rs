//! Which tasks are watched, and the loss counters every program may bump.
//!
//! A task is watched once it execs inside the target cgroup subtree, and its forks inherit
//! that, wherever they later move. Tasks that are in the cgroup but have not exec'd yet (systemd
//! setting up namespaces, dropping capabilities, installing seccomp) are not.
//! The watched cgroup is followed by path: when systemd recreates it (a unit starting or
//! restarting), `cgroup_mkdir` switches the filter to the new cgroup before any task is in it.

use aya_ebpf::{
    Global,
    helpers::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_pid_tgid, bpf_probe_read_kernel_str_bytes},
    macros::{map, tracepoint},
    maps::{Array, HashMap, PerCpuArray},
    programs::TracePointContext,
};
use profiler_common::{KernelPath, MAX_TASKS, PATH_LEN, TargetConfig, TaskState, loss};

use crate::context_base;

#[unsafe(no_mangle)]
static MKDIR_ROOT_OFFSET: Global<u32> = Global::new(8);
#[unsafe(no_mangle)]
static MKDIR_LEVEL_OFFSET: Global<u32> = Global::new(12);
#[unsafe(no_mangle)]
static MKDIR_ID_OFFSET: Global<u32> = Global::new(16);
#[unsafe(no_mangle)]
static MKDIR_PATH_OFFSET: Global<u32> = Global::new(24);

#[map]
pub static CONFIG: Array<TargetConfig> = Array::with_max_entries(1, 0);

#[map]
pub static TASKS: HashMap<u32, TaskState> = HashMap::with_max_entries(MAX_TASKS, 0);

/// The watched cgroup's path relative to the cgroup2 root (one entry).
#[map]
pub static WATCH_PATH: Array<KernelPath> = Array::with_max_entries(1, 0);

/// Scratch space for the path of a new cgroup.
#[map]
static MKDIR_SCRATCH: PerCpuArray<KernelPath> = PerCpuArray::with_max_entries(1, 0);

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

/// A cgroup was created: if it is the watched path on cgroup2, watch it from now on.
#[tracepoint(category = "cgroup", name = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: TracePointContext) -> u32 {
    let Some(config) = CONFIG.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: offsets from this kernel's tracepoint format; checked helper reads.
    let (Ok(root), Ok(level), Ok(id), Ok(loc)) = (unsafe {
        (
            ctx.read_at::<i32>(MKDIR_ROOT_OFFSET.load() as usize),
            ctx.read_at::<i32>(MKDIR_LEVEL_OFFSET.load() as usize),
            ctx.read_at::<u64>(MKDIR_ID_OFFSET.load() as usize),
            ctx.read_at::<u32>(MKDIR_PATH_OFFSET.load() as usize),
        )
    }) else {
        return 0;
    };
    // Hierarchy 0 is cgroup2; v1 hierarchies mirror the same paths on hybrid hosts.
    // SAFETY: `config` points into CONFIG.
    if root != 0 || unsafe { (*config).enabled } == 0 || level as u32 != unsafe { (*config).level } {
        return 0;
    }
    let (Some(path), Some(wanted)) = (MKDIR_SCRATCH.get_ptr_mut(0), WATCH_PATH.get(0)) else {
        return 0;
    };
    // SAFETY: this CPU's scratch entry.
    let path = unsafe { &mut *path };
    path.bytes = [0; PATH_LEN];
    let src = (context_base(&ctx) + (loc & 0xffff) as usize) as *const u8;
    // SAFETY: a bounded kernel string read into our own buffer.
    if unsafe { bpf_probe_read_kernel_str_bytes(src, &mut path.bytes) }.is_err() {
        return 0;
    }
    let mut i = 0;
    while i < PATH_LEN {
        if path.bytes[i] != wanted.bytes[i] {
            return 0;
        }
        if path.bytes[i] == 0 {
            break;
        }
        i += 1;
    }
    // SAFETY: as above; a single writer in practice (systemd creates a unit's cgroup once).
    unsafe {
        (*config).cgroup_id = id;
        (*config).recreated += 1;
    }
    0
}
