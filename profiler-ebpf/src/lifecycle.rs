//! Task lifecycle: arm a task when it execs in the target cgroup, inherit on fork, forget on
//! exit; name the executable each watched task runs. The watched cgroup is followed by path:
//! when systemd recreates it (a unit starting or restarting), `cgroup_mkdir` switches the
//! filter to the new cgroup before any task is in it.
//!
//! Fork, exec and exit are BTF tracepoints (`tp_btf`): the kernel passes its own arguments
//! (task pointers, the binprm) instead of first building a trace record for every fork, exec
//! and exit on the host. `cgroup_mkdir`, which fires only when a cgroup is created, stays a
//! classic tracepoint.

use aya_ebpf::{
    Global,
    helpers::bpf_probe_read_kernel_str_bytes,
    macros::{btf_tracepoint, map, tracepoint},
    maps::{Array, HashMap, PerCpuArray},
    programs::{BtfTracePointContext, TracePointContext},
};
use profiler_common::{EXE_SLOT_OVERFLOW, ExeInfo, FileId, KernelPath, MAX_EXECUTABLES, PATH_LEN, TaskState, loss, observation};

const S_ISUID_OR_GID: u32 = 0o6000;

use crate::{
    context_base,
    filter::{CONFIG, TASKS, count_loss, current_tid, forget_caller, in_target_cgroup},
    observations::note,
    paths::{current_exe_id, current_exe_mode},
    regs,
};

/// `linux_binprm.filename`'s offset from this kernel's BTF, set by the loader.
#[unsafe(no_mangle)]
static BINPRM_FILENAME_OFFSET: Global<u32> = Global::new(0);

#[unsafe(no_mangle)]
static MKDIR_ROOT_OFFSET: Global<u32> = Global::new(8);
#[unsafe(no_mangle)]
static MKDIR_LEVEL_OFFSET: Global<u32> = Global::new(12);
#[unsafe(no_mangle)]
static MKDIR_ID_OFFSET: Global<u32> = Global::new(16);
#[unsafe(no_mangle)]
static MKDIR_PATH_OFFSET: Global<u32> = Global::new(24);

/// The watched cgroup's path relative to the cgroup2 root (one entry).
#[map]
pub static WATCH_PATH: Array<KernelPath> = Array::with_max_entries(1, 0);

/// Scratch space for the path of a new cgroup.
#[map]
static MKDIR_SCRATCH: PerCpuArray<KernelPath> = PerCpuArray::with_max_entries(1, 0);

/// Executable path -> attribution slot.
#[map]
pub static EXECUTABLES: HashMap<KernelPath, ExeInfo> = HashMap::with_max_entries(MAX_EXECUTABLES, 0);

/// Executables whose exec does not arm a task: systemd's own helpers that run in the unit's
/// cgroup before the service binary (systemd-executor since v255, which systemd execs through
/// a descriptor, so the exec's path says nothing). Keyed by the file itself; a key with
/// `dev` 0 matches the inode on any device (file systems whose `stat` device is not the
/// kernel's, see the loader).
#[map]
pub static EXEC_HELPERS: HashMap<FileId, u8> = HashMap::with_max_entries(16, 0);

/// Attribution slots in use (key: slot). The collector claims slots here too, for tasks that
/// were running before the recording started.
#[map]
pub static SLOT_CLAIMS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_EXECUTABLES, 0);

/// Execs per attribution slot, per CPU.
#[map]
pub static EXE_EXECS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_EXECUTABLES, 0);

/// How many slots a new executable tries before it is counted under the overflow slot.
const SLOT_PROBES: u32 = 32;
const BPF_NOEXIST: u64 = 1;

/// Scratch space for a path: too big for the 512-byte BPF stack alongside everything else.
#[map]
static PATH_SCRATCH: PerCpuArray<KernelPath> = PerCpuArray::with_max_entries(1, 0);

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    // The parent is the current task; threads come through here too.
    let Some(parent) = TASKS.get_ptr(current_tid()) else {
        return 0;
    };
    let child_task: *const u8 = ctx.arg(1);
    let Some(child) = regs::task_pid(child_task) else {
        return 0;
    };
    // SAFETY: `parent` points into TASKS, valid for this program run.
    let state = TaskState { exe_slot: unsafe { (*parent).exe_slot }, flags: 0 };
    if TASKS.insert(&child, &state, 0).is_err() {
        count_loss(loss::TASKS_FULL);
    }
    // Its stack, and so where its registers are saved, may be an ended thread's that a CPU
    // remembers as unwatched.
    forget_caller(child, regs::task_regs(child_task).map_or(0, |r| r as u64));
    0
}

/// `sched_process_exit(struct task_struct *p)`, with `bool group_dead` after it since 6.16:
/// neither is needed, the exiting task is the current one.
#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(_ctx: BtfTracePointContext) -> i32 {
    let tid = current_tid();
    if let Some(task) = TASKS.get_ptr(tid) {
        // SAFETY: `task` points into TASKS, valid for this program run.
        crate::syscalls::count_exit(unsafe { (*task).exe_slot });
        let _ = TASKS.remove(&tid);
        // Its stack, where CPUs remember it as watched, may go to a new thread that is not.
        // An unwatched thread's needs no clearing: a watched thread given its stack is put in
        // TASKS, which clears it then.
        forget_caller(tid, regs::task_regs(regs::current_task().0).map_or(0, |r| r as u64));
    }
    0
}

/// Whether the file this task now runs is one of systemd's exec helpers. systemd execs them
/// through a descriptor, so an exec by path (`filename`) never is one: a service binary whose
/// inode number matches on another file system (the inode-only key) stays the service's.
fn is_exec_helper(filename: &KernelPath) -> bool {
    if !(starts_with(filename, b"/proc/self/fd/") || starts_with(filename, b"/dev/fd/")) {
        return false;
    }
    let Some(id) = current_exe_id() else {
        return false;
    };
    EXEC_HELPERS.get_ptr(&id).is_some() || EXEC_HELPERS.get_ptr(&FileId { dev: 0, ino: id.ino }).is_some()
}

#[inline(always)]
fn starts_with(path: &KernelPath, prefix: &[u8]) -> bool {
    let mut i = 0;
    while i < prefix.len() && i < PATH_LEN {
        if path.bytes[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    let tid = current_tid();
    // A thread other than the leader that execs takes over the leader's pid, and the leader's
    // exit has removed the leader's entry by now: the thread is watched under its old id.
    let old: u64 = ctx.arg(1);
    let old = old as u32;
    let already_watched = TASKS.get_ptr(tid).is_some() || (old != tid && TASKS.get_ptr(old).is_some());
    if !already_watched && !in_target_cgroup() {
        return 0;
    }
    let exe_slot = match exec_path(&ctx) {
        Some(path) => {
            if !already_watched && is_exec_helper(path) {
                return 0;
            }
            exe_slot(path)
        }
        // Never seen (the kernel's own copy of the name), but a task it cannot name is still
        // watched, under the slot of executables past the table.
        None => EXE_SLOT_OVERFLOW,
    };
    let state = TaskState { exe_slot, flags: 0 };
    // Set-user-ID, set-group-ID: what NoNewPrivileges= would stop from taking effect.
    if let Some(mode) = current_exe_mode()
        && mode & S_ISUID_OR_GID != 0
    {
        note(observation::PRIVILEGED_EXEC, 0, mode as u64, state.exe_slot);
    }
    if TASKS.insert(&tid, &state, 0).is_err() {
        count_loss(loss::TASKS_FULL);
    }
    // CPUs may remember it as unwatched, or as watched under the executable it ran before.
    forget_caller(tid, regs::task_regs(regs::current_task().0).map_or(0, |r| r as u64));
    #[cfg(feature = "debug-probes")]
    aya_log_ebpf::debug!(&ctx, "task {} watched from its exec, executable slot {}", tid, state.exe_slot);
    if old != tid {
        let _ = TASKS.remove(&old);
    }
    0
}

/// `bprm->filename` of an exec, in this CPU's scratch path: the path given to execve (or
/// /dev/fd/N for fexecve), as the classic tracepoint's `filename` field holds it.
#[inline(always)]
fn exec_path(ctx: &BtfTracePointContext) -> Option<&'static KernelPath> {
    let path = PATH_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch entry; programs on one CPU do not interleave.
    let path = unsafe { &mut *path };
    path.bytes = [0; PATH_LEN];
    let bprm: *const u8 = ctx.arg(2);
    let src = regs::load_u64(bprm, BINPRM_FILENAME_OFFSET.load()) as *const u8;
    // SAFETY: a bounded kernel string read into our own buffer; a bad address fails it.
    if src.is_null() || unsafe { bpf_probe_read_kernel_str_bytes(src, &mut path.bytes) }.is_err() {
        return None;
    }
    Some(path)
}

/// The attribution slot of an executable, claiming one on first sight.
///
/// The BPF target has no atomic read-modify-write in Rust, so slots are claimed with
/// `BPF_NOEXIST` inserts, which the kernel makes atomic: probe from a hash of the path.
#[inline(always)]
fn exe_slot(path: &KernelPath) -> u32 {
    let slot = match EXECUTABLES.get_ptr(path) {
        // SAFETY: points into EXECUTABLES, valid for this program run.
        Some(info) => unsafe { (*info).slot },
        None => claim_slot(path),
    };
    if let Some(execs) = EXE_EXECS.get_ptr_mut(slot) {
        // SAFETY: per-CPU counter.
        unsafe { *execs += 1 };
    }
    slot
}

fn claim_slot(path: &KernelPath) -> u32 {
    let start = fnv1a(path);
    let mut probe = 0;
    while probe < SLOT_PROBES {
        let slot = (start + probe) % EXE_SLOT_OVERFLOW;
        if SLOT_CLAIMS.insert(&slot, &1, BPF_NOEXIST).is_ok() {
            let info = ExeInfo { slot, _pad: 0 };
            if EXECUTABLES.insert(path, &info, BPF_NOEXIST).is_ok() {
                return slot;
            }
            // Another CPU named the same path first: give our slot back and use its.
            let _ = SLOT_CLAIMS.remove(&slot);
            // SAFETY: read once, immediately.
            return match unsafe { EXECUTABLES.get(path) } {
                Some(info) => info.slot,
                None => EXE_SLOT_OVERFLOW,
            };
        }
        probe += 1;
    }
    count_loss(loss::EXECUTABLES_FULL);
    EXE_SLOT_OVERFLOW
}

fn fnv1a(path: &KernelPath) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < path.bytes.len() {
        let byte = path.bytes[i];
        if byte == 0 {
            break;
        }
        hash = (hash ^ byte as u32).wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
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
    #[cfg(feature = "debug-probes")]
    aya_log_ebpf::debug!(&ctx, "the watched cgroup was created again, id {}", id);
    0
}
