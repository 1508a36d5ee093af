//! Capability checks of watched tasks, with the kernel call stack that made each one.
//!
//! Neither hook carries the audit/noaudit flag, so the stack is the only way to tell a check
//! that needs the capability from a probe such as `has_capability_noaudit`. Three hooks see
//! the same thing; the loader attaches the best one this kernel has: the `cap_capable`
//! tracepoint (6.14+; a classic one, unlike those of lifecycle and signals: a stack taken from the
//! BTF tracepoint starts inside the program and could not be stored for 11% of the checks of
//! a churn workload on 6.18, which would then count as needs), else fexit on `cap_capable`
//! (BTF trampolines: arguments and return value at once), else a kprobe/kretprobe pair (the
//! entry keeps the capability and stack for the return, keyed by thread).

use core::ffi::c_void;

use aya_ebpf::{
    EbpfContext as _, Global,
    helpers::generated::bpf_get_stack,
    macros::{fexit, kprobe, kretprobe, map, tracepoint},
    maps::{HashMap, PerCpuHashMap, StackTrace},
    programs::{FExitContext, ProbeContext, RetProbeContext, TracePointContext, tracing::StackIdContext},
};
use profiler_common::{
    CapCounts, CapKey, MAX_CAP_CHECKS, MAX_CAP_STACKS, NO_STACK, PROBE_CALLER_COUNT, PROBE_SITE_STACK, ProbeSites, loss,
};

use crate::filter::{count_loss, current_tid, watched_task};

#[unsafe(no_mangle)]
static CAP_CAP_OFFSET: Global<u32> = Global::new(32);
#[unsafe(no_mangle)]
static CAP_RET_OFFSET: Global<u32> = Global::new(36);

#[map]
pub static CAP_CHECKS: PerCpuHashMap<CapKey, CapCounts> = PerCpuHashMap::with_max_entries(MAX_CAP_CHECKS, 0);

#[map]
pub static CAP_STACKS: StackTrace = StackTrace::with_max_entries(MAX_CAP_STACKS, 0);

/// A check in progress, between the kprobe and the kretprobe: thread → (capability, stack).
/// `cap_capable` does not sleep or nest, so one entry per thread suffices.
#[map]
static CAP_PENDING: HashMap<u32, (u32, u32)> = HashMap::with_max_entries(4096, 0);

/// The known probe sites, set by the loader from /proc/kallsyms (`ProbeSites`).
#[unsafe(no_mangle)]
static PROBE_SITES: Global<ProbeSites> = Global::new(ProbeSites { checker: [0; 2], callers: [[0; 2]; PROBE_CALLER_COUNT] });

/// include/uapi/linux/capability.h: the only capability the known probe sites check.
const CAP_SYS_ADMIN: i32 = 21;

#[tracepoint(category = "capability", name = "cap_capable")]
pub fn cap_capable(ctx: TracePointContext) -> u32 {
    if watched_task().is_none() {
        return 0;
    }
    // SAFETY: offsets come from this kernel's tracepoint format; reads are checked helpers.
    let (Ok(cap), Ok(ret)) =
        (unsafe { ctx.read_at::<i32>(CAP_CAP_OFFSET.load() as usize) }, unsafe { ctx.read_at::<i32>(CAP_RET_OFFSET.load() as usize) })
    else {
        return 0;
    };
    let stack = probe_site(&ctx, cap).unwrap_or_else(|| stack_of(&ctx));
    count_check(cap as u32, stack, ret);
    0
}

/// `PROBE_SITE_STACK + i` when this check comes straight from `ProbeSites::callers[i]` into
/// `cap_capable`: the overcommit accounting of every private writable `mmap`, `brk` and
/// fork, which asks for CAP_SYS_ADMIN only to size a reserve. Two frames tell it: about
/// 1.7 µs of program time per check here, where the whole stack (6 to 8 frames) took 2.5;
/// most of either is the unwinder climbing out of the tracing frames to the tracepoint's
/// caller. The classic tracepoint only, whose stack starts at that caller, `cap_capable`
/// (while nothing else is attached to the tracepoint; else it starts in the tracepoint's
/// iterator, and the check takes its whole stack). fexit and kprobes take the whole stack
/// (before 6.14 they do not see these checks at all). So does every other check.
#[inline(always)]
fn probe_site(ctx: &TracePointContext, cap: i32) -> Option<u32> {
    if cap != CAP_SYS_ADMIN {
        return None;
    }
    let sites = PROBE_SITES.load();
    let within = |ip: u64, range: [u64; 2]| range[0] <= ip && ip < range[1];
    if sites.checker[1] == 0 {
        return None;
    }
    let mut frames = [0u64; 2];
    const SIZE: u32 = core::mem::size_of::<[u64; 2]>() as u32;
    // SAFETY: the helper writes at most SIZE bytes into our local.
    if unsafe { bpf_get_stack(ctx.as_ptr(), frames.as_mut_ptr() as *mut c_void, SIZE, 0) } != SIZE as i64 {
        return None;
    }
    let [inner, caller] = frames;
    if !within(inner, sites.checker) {
        return None;
    }
    (0..PROBE_CALLER_COUNT).find(|&i| within(caller, sites.callers[i])).map(|i| PROBE_SITE_STACK + i as u32)
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
