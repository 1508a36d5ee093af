//! Capability checks of watched tasks, with the kernel call stack that made each one.
//!
//! Neither hook carries the audit/noaudit flag, so the stack is the only way to tell a check
//! that needs the capability from a probe such as `has_capability_noaudit`. Three hooks see
//! the same thing; the loader attaches the best one this kernel has: the `cap_capable`
//! tracepoint (6.14+, as a BTF tracepoint: no trace record is built for each check on the
//! host), else fexit on `cap_capable` (BTF trampolines: arguments and return
//! value at once), else a kprobe/kretprobe pair (the entry keeps the capability and stack for
//! the return, keyed by thread).

use aya_ebpf::{
    macros::{btf_tracepoint, fexit, kprobe, kretprobe, map},
    maps::{HashMap, PerCpuHashMap, StackTrace},
    programs::{BtfTracePointContext, FExitContext, ProbeContext, RetProbeContext, tracing::StackIdContext},
};
use profiler_common::{CapCounts, CapKey, MAX_CAP_CHECKS, MAX_CAP_STACKS, NO_STACK, loss};

use crate::filter::{count_loss, current_tid, watched_task};

#[map]
pub static CAP_CHECKS: PerCpuHashMap<CapKey, CapCounts> = PerCpuHashMap::with_max_entries(MAX_CAP_CHECKS, 0);

#[map]
pub static CAP_STACKS: StackTrace = StackTrace::with_max_entries(MAX_CAP_STACKS, 0);

/// A check in progress, between the kprobe and the kretprobe: thread → (capability, stack).
/// `cap_capable` does not sleep or nest, so one entry per thread suffices.
#[map]
static CAP_PENDING: HashMap<u32, (u32, u32)> = HashMap::with_max_entries(4096, 0);

/// `cap_capable(const struct cred *cred, struct user_namespace *target_ns, const struct
/// user_namespace *capable_ns, int cap, int ret)`.
#[btf_tracepoint(function = "cap_capable")]
pub fn cap_capable(ctx: BtfTracePointContext) -> i32 {
    if watched_task().is_none() {
        return 0;
    }
    let cap: u64 = ctx.arg(3);
    let ret: u64 = ctx.arg(4);
    count_check(cap as u32, stack_of(&ctx), ret as i32);
    0
}

/// `int cap_capable(const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)`.
#[fexit(function = "cap_capable")]
pub fn cap_capable_exit(ctx: FExitContext) -> i32 {
    if watched_task().is_none() {
        return 0;
    }
    let cap: i32 = ctx.arg(2);
    let Ok(ret) = ctx.ret::<i32>() else {
        return 0;
    };
    count_check(cap as u32, stack_of(&ctx), ret);
    0
}

#[kprobe(function = "cap_capable")]
pub fn cap_capable_entry(ctx: ProbeContext) -> u32 {
    if watched_task().is_none() {
        return 0;
    }
    let Some(cap) = ctx.arg::<i32>(2) else {
        return 0;
    };
    let tid = current_tid();
    if CAP_PENDING.insert(&tid, &(cap as u32, stack_of(&ctx)), 0).is_err() {
        count_loss(loss::CAP_CHECKS_FULL);
    }
    0
}

#[kretprobe(function = "cap_capable")]
pub fn cap_capable_return(ctx: RetProbeContext) -> u32 {
    let tid = current_tid();
    // SAFETY: a value of our own map, copied out before the entry is removed.
    let Some(&(cap, stack_id)) = (unsafe { CAP_PENDING.get(&tid) }) else {
        return 0;
    };
    let _ = CAP_PENDING.remove(&tid);
    count_check(cap, stack_id, ctx.ret::<i32>());
    0
}

/// The kernel stack of this check. BPF_F_REUSE_STACKID is not set, so a hash collision keeps
/// the first stack and fails the second rather than silently mixing two call paths.
#[inline(always)]
fn stack_of<C: StackIdContext>(ctx: &C) -> u32 {
    match ctx.get_stackid(&CAP_STACKS, 0) {
        Ok(id) => id as u32,
        Err(_) => {
            count_loss(loss::CAP_STACKS_FULL);
            NO_STACK
        }
    }
}

/// Counts one check of `cap` by the current (watched) task: granted when `ret` is 0.
#[inline(always)]
fn count_check(cap: u32, stack_id: u32, ret: i32) {
    let Some(task) = watched_task() else {
        return;
    };
    let key = CapKey {
        cap,
        // SAFETY: `task` points into TASKS, valid for this program run.
        exe_slot: unsafe { (*task).exe_slot },
        stack_id,
        _pad: 0,
    };
    let counts = match CAP_CHECKS.get_ptr_mut(&key) {
        Some(counts) => counts,
        None => {
            if CAP_CHECKS.insert(&key, &CapCounts::default(), 0).is_err() {
                count_loss(loss::CAP_CHECKS_FULL);
                return;
            }
            match CAP_CHECKS.get_ptr_mut(&key) {
                Some(counts) => counts,
                None => return,
            }
        }
    };
    // SAFETY: this CPU's copy of the value.
    unsafe {
        if ret == 0 {
            (*counts).granted += 1;
        } else {
            (*counts).denied += 1;
        }
    }
}
