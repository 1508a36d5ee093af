//! Numeric observations (families, namespace flags, devices, ports, ...) per executable.
//!
//! Each distinct (signal, sub, value, executable) is one key with a per-CPU count, so the table
//! grows with what is distinct, never with how often it happens.

use aya_ebpf::{macros::map, maps::PerCpuHashMap};
use profiler_common::{MAX_SIGNALS, SignalKey, loss};

use crate::filter::count_loss;

#[map]
pub static SIGNALS: PerCpuHashMap<SignalKey, u64> = PerCpuHashMap::with_max_entries(MAX_SIGNALS, 0);

/// Counts one observation for the executable in `exe_slot`.
#[inline(always)]
pub fn note(signal: u16, sub: u16, value: u64, exe_slot: u32) {
    let key = SignalKey { signal, sub, exe_slot, value };
    if let Some(count) = SIGNALS.get_ptr_mut(&key) {
        // SAFETY: this CPU's copy of the value.
        unsafe { *count += 1 };
        return;
    }
    if SIGNALS.insert(&key, &1, 0).is_err() {
        count_loss(loss::SIGNALS_FULL);
    }
}
