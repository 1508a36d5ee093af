//! Numeric observations (families, namespace flags, devices, ports, ...) per executable.
//!
//! Each distinct (kind, sub, value, executable) is one key with a per-CPU count, so the table
//! grows with what is distinct, never with how often it happens.

use aya_ebpf::{macros::map, maps::PerCpuHashMap};
use profiler_common::{MAX_ERRORS, MAX_OBSERVATIONS, MAX_PEERS, ObservationKey, loss, observation};

use crate::filter::count_loss;

#[map]
pub static OBSERVATIONS: PerCpuHashMap<ObservationKey, u64> = PerCpuHashMap::with_max_entries(MAX_OBSERVATIONS, 0);

#[map]
pub static PEERS: PerCpuHashMap<ObservationKey, u64> = PerCpuHashMap::with_max_entries(MAX_PEERS, 0);

#[map]
pub static ERRORS: PerCpuHashMap<ObservationKey, u64> = PerCpuHashMap::with_max_entries(MAX_ERRORS, 0);

/// Counts one observation for the executable in `exe_slot`.
#[inline(always)]
pub fn note(kind: u16, sub: u16, value: u64, exe_slot: u32) {
    count(&OBSERVATIONS, ObservationKey { kind, sub, exe_slot, value }, loss::OBSERVATIONS_FULL);
}

/// Counts one connect to a peer beyond loopback (see `observation::PEER`).
#[inline(always)]
pub fn note_peer(family: u16, address: u64, exe_slot: u32) {
    count(&PEERS, ObservationKey { kind: observation::PEER, sub: family, exe_slot, value: address }, loss::PEERS_FULL);
}

/// Counts one error return of the syscall in `slot` (see `observation::ERROR`).
#[inline(always)]
pub fn note_error(errno: u16, slot: u32, exe_slot: u32) {
    count(&ERRORS, ObservationKey { kind: observation::ERROR, sub: errno, exe_slot, value: slot as u64 }, loss::ERRORS_FULL);
}

#[inline(always)]
fn count(table: &PerCpuHashMap<ObservationKey, u64>, key: ObservationKey, lost: u32) {
    if let Some(count) = table.get_ptr_mut(&key) {
        // SAFETY: this CPU's copy of the value.
        unsafe { *count += 1 };
        return;
    }
    if table.insert(&key, &1, 0).is_err() {
        count_loss(lost);
    }
}
