//! Capability checks of watched tasks, with the kernel call stack that made each one.
//!
//! `capability:cap_capable` carries no audit/noaudit flag, so the stack is the only way to
//! tell a check that needs the capability from a probe such as `has_capability_noaudit`.

use aya_ebpf::{
    Global,
    macros::{map, tracepoint},
    maps::{PerCpuHashMap, StackTrace},
    programs::{TracePointContext, tracing::StackIdContext as _},
};
use profiler_common::{CapCounts, CapKey, MAX_CAP_CHECKS, MAX_CAP_STACKS, NO_STACK, loss};

use crate::filter::{count_loss, watched_task};

#[unsafe(no_mangle)]
static CAP_CAP_OFFSET: Global<u32> = Global::new(32);
#[unsafe(no_mangle)]
static CAP_RET_OFFSET: Global<u32> = Global::new(36);

#[map]
pub static CAP_CHECKS: PerCpuHashMap<CapKey, CapCounts> = PerCpuHashMap::with_max_entries(MAX_CAP_CHECKS, 0);

#[map]
pub static CAP_STACKS: StackTrace = StackTrace::with_max_entries(MAX_CAP_STACKS, 0);

#[tracepoint(category = "capability", name = "cap_capable")]
pub fn cap_capable(ctx: TracePointContext) -> u32 {
    let Some(task) = watched_task() else {
        return 0;
    };
    // SAFETY: offsets come from this kernel's tracepoint format; reads are checked helpers.
    let (Ok(cap), Ok(ret)) =
        (unsafe { ctx.read_at::<i32>(CAP_CAP_OFFSET.load() as usize) }, unsafe { ctx.read_at::<i32>(CAP_RET_OFFSET.load() as usize) })
    else {
        return 0;
    };
    // Kernel stack only; BPF_F_REUSE_STACKID is not set, so a hash collision keeps the first
    // stack and fails the second rather than silently mixing two call paths.
    let stack_id = match ctx.get_stackid(&CAP_STACKS, 0) {
        Ok(id) => id as u32,
        Err(_) => {
            count_loss(loss::CAP_STACKS_FULL);
            NO_STACK
        }
    };
    let key = CapKey {
        cap: cap as u32,
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
                return 0;
            }
            match CAP_CHECKS.get_ptr_mut(&key) {
                Some(counts) => counts,
                None => return 0,
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
    0
}
