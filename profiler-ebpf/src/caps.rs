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
    helpers::{
        bpf_probe_read_kernel,
        generated::{self, bpf_get_stack, bpf_loop},
    },
    macros::{fexit, kprobe, kretprobe, map, tracepoint},
    maps::{HashMap, PerCpuArray, PerCpuHashMap, StackTrace},
    programs::{FExitContext, ProbeContext, RetProbeContext, TracePointContext, tracing::StackIdContext},
};
use profiler_common::{
    CallerSlot, CapCounts, CapKey, MAX_CAP_CHECKS, MAX_CAP_STACKS, NO_STACK, PROBE_CALLER_COUNT, PROBE_SITE_STACK, ProbeSites, loss,
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
/// `cap_capable`: the overcommit accounting of every private writable `mmap`, `brk` and of
/// each such mapping a fork copies, which asks for CAP_SYS_ADMIN only to size a reserve. The
/// classic tracepoint only, whose stack starts at `cap_capable` (while only perf-event
/// consumers, such as this program, are on the tracepoint; an ftrace event or a raw or BTF
/// tracepoint program puts its iterator in between, and the check takes its whole stack).
/// fexit and kprobes take the whole stack (before 6.14 they do not see these checks at all).
/// So does every other check.
///
/// The caller is read where `cap_capable` keeps its return address, once this CPU has
/// learnt where that is (`CALLER_SLOT`): three helper reads and a map lookup, 0.5 µs of
/// program time per check here, and a probe only when that word is the very return address
/// learnt there (any other takes the whole stack). Until then the unwinder gives the two
/// innermost frames: 1.8 µs, most of it climbing out of the tracing frames to the
/// tracepoint's caller, where the whole stack took 2.8.
#[inline(always)]
fn probe_site(ctx: &TracePointContext, cap: i32) -> Option<u32> {
    if cap != CAP_SYS_ADMIN {
        return None;
    }
    let sites = PROBE_SITES.load();
    if sites.checker[1] == 0 {
        return None;
    }
    let (ip, frame) = tracepoint_caller(ctx)?;
    let slot = CALLER_SLOT.get_ptr_mut(0)?;
    // SAFETY: this CPU's entry of our own map. Classic tracepoint programs run with
    // preemption off and do not nest on a CPU (the kernel's `bpf_prog_active`), so no other
    // run touches it meanwhile.
    let slot = unsafe { &mut *slot };
    let trusted = slot.confirmed >= CONFIRMATIONS && slot.ip == ip;
    if trusted && !recheck(slot) {
        let held = held_at(frame, slot.offset)?;
        return if held == slot.caller { probe_caller(&sites, held) } else { None };
    }
    let mut frames = [0u64; 2];
    const SIZE: u32 = core::mem::size_of::<[u64; 2]>() as u32;
    // SAFETY: the helper writes at most SIZE bytes into our local.
    if unsafe { bpf_get_stack(ctx.as_ptr(), frames.as_mut_ptr() as *mut c_void, SIZE, 0) } != SIZE as i64 {
        return None;
    }
    let [inner, caller] = frames;
    if inner != ip || !within(inner, sites.checker) {
        return None;
    }
    if trusted {
        // A recheck: the slot must hold what the unwinder names, probe or not.
        if held_at(frame, slot.offset) == Some(caller) {
            return probe_caller(&sites, caller);
        }
        slot.confirmed = 0;
    }
    let site = probe_caller(&sites, caller)?;
    learn_slot(slot, ip, frame, caller);
    Some(site)
}

/// Where the tracepoint was called from: the address in `cap_capable` it returns to, and the
/// frame address of the tracepoint's perf handler, from the registers the handler saved
/// (`perf_fetch_caller_regs`), a pointer to which it put at the start of the record
/// (`perf_trace_run_bpf_submit`, where `bpf_get_stack` finds them too). x86_64 only, as the
/// whole project: elsewhere `ip` would not match the first frame, and every check would take
/// its whole stack.
#[inline(always)]
fn tracepoint_caller(ctx: &TracePointContext) -> Option<(u64, u64)> {
    // SAFETY: checked kernel reads: the record's first word, then `pt_regs` from `ip` to `sp`.
    let regs: u64 = unsafe { ctx.read_at(0) }.ok()?;
    let [ip, _cs, _flags, sp] = unsafe { bpf_probe_read_kernel((regs + REGS_IP) as *const [u64; 4]) }.ok()?;
    Some((ip, sp))
}

/// `struct pt_regs`' `ip` on x86_64 (arch/x86/include/asm/ptrace.h), followed by cs, flags, sp.
const REGS_IP: u64 = 16 * 8;

/// The probe id of a return address in one of the probe callers.
#[inline(always)]
fn probe_caller(sites: &ProbeSites, caller: u64) -> Option<u32> {
    (0..PROBE_CALLER_COUNT).find(|&i| within(caller, sites.callers[i])).map(|i| PROBE_SITE_STACK + i as u32)
}

#[inline(always)]
fn within(ip: u64, range: [u64; 2]) -> bool {
    range[0] <= ip && ip < range[1]
}

/// Where, above the tracepoint handler's frame, `cap_capable` keeps its return address when it
/// calls the tracepoint from `ip`. The compiler fixes a function's frame at each of its
/// instructions (the unwinder relies on it too), so that distance is the same at every call
/// from `ip`. Learnt per CPU from checks the unwinder named: the slot holding the caller it
/// gave, when exactly one slot in reach does; trusted once `CONFIRMATIONS` checks in a row
/// agreed. A return address is written on the stack only by its call, so another word holds it
/// only as a leftover of an earlier call. While the true slot is within reach, it always holds
/// the caller, so a unique match is the true slot; the reach is far more than `cap_capable`'s
/// frame (the slot is 24 bytes up on 6.18). Were it not within reach, a unique leftover could
/// be learnt instead: the README names that limitation, and the recheck below narrows it.
/// Past `GIVE_UP` inconclusive searches in a row (each costs a 256-byte read), a CPU stops
/// searching and stays with the unwinder's two frames; a conclusive one starts the count
/// again, so a soak of days does not give up on a few leftovers a day.
#[map]
static CALLER_SLOT: PerCpuArray<CallerSlot> = PerCpuArray::with_max_entries(1, 0);

const CONFIRMATIONS: u64 = 4;
const GIVE_UP: u64 = 64;
/// Words above the handler's frame searched for the return address: the handler's saved
/// frame pointer and return address, then `cap_capable`'s frame (a few saved registers).
const SLOT_REACH: usize = 32;

/// The words `learn_slot` searches, per CPU: too many for the 512-byte program stack.
#[map]
static SLOT_WINDOW: PerCpuArray<[u64; SLOT_REACH]> = PerCpuArray::with_max_entries(1, 0);

/// The word at `offset` above the tracepoint handler's frame.
#[inline(always)]
fn held_at(frame: u64, offset: u64) -> Option<u64> {
    // SAFETY: a checked kernel read; a bad address fails it.
    unsafe { bpf_probe_read_kernel((frame + offset) as *const u64) }.ok()
}

/// Whether this check, one the slot would answer, goes to the unwinder instead: one in
/// `RECHECK`, so a slot that does not hold the caller the unwinder names is found out and
/// learnt again.
#[inline(always)]
fn recheck(slot: &mut CallerSlot) -> bool {
    slot.reads += 1;
    slot.reads % RECHECK == 0
}

const RECHECK: u64 = 64;

/// Learns from one check the unwinder named: `caller` returned to from `cap_capable`, called
/// at `ip` with the tracepoint handler's frame at `frame`.
#[inline(always)]
fn learn_slot(slot: &mut CallerSlot, ip: u64, frame: u64, caller: u64) {
    if slot.failures >= GIVE_UP {
        return;
    }
    let Some(window) = SLOT_WINDOW.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: a checked kernel read into this CPU's entry of our own map.
    if unsafe { generated::bpf_probe_read_kernel(window as *mut c_void, (8 * SLOT_REACH) as u32, frame as *const c_void) } != 0 {
        return;
    }
    let mut search = SlotSearch { caller, found: 0, matches: 0 };
    // SAFETY: the callback is a static function of this object; the context is our stack.
    unsafe {
        bpf_loop(SLOT_REACH as u32, search_step as *mut c_void, &mut search as *mut SlotSearch as *mut c_void, 0);
    }
    if search.matches != 1 {
        slot.confirmed = 0;
        slot.failures += 1;
        return;
    }
    slot.failures = 0;
    let offset = 8 * search.found;
    if slot.ip == ip && slot.offset == offset && slot.caller == caller {
        slot.confirmed += 1;
    } else {
        (slot.ip, slot.offset, slot.caller, slot.confirmed) = (ip, offset, caller, 1);
    }
}

/// `learn_slot`'s search for `caller` in `SLOT_WINDOW`: which word held it last, and how many
/// did. A `bpf_loop` step per word: unrolled, the verifier would follow every combination of
/// matches.
#[repr(C)]
struct SlotSearch {
    caller: u64,
    found: u64,
    matches: u64,
}

extern "C" fn search_step(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `SlotSearch` that `learn_slot` passed to bpf_loop.
    let search = unsafe { &mut *(ctx as *mut SlotSearch) };
    let Some(window) = SLOT_WINDOW.get_ptr(0) else {
        return 1;
    };
    // SAFETY: this CPU's entry, filled by `learn_slot` before the loop.
    let Some(word) = (unsafe { &*window }).get(index as usize) else {
        return 1;
    };
    if *word == search.caller {
        search.found = index;
        search.matches += 1;
    }
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
