//! When each item of a profile was learned: first and last seen, and the unit's phase then.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CapabilityUse, DeviceUse, ExecutableUse, ItemUse, PathUse, Profile, SocketUse};

/// The sightings of one item. Times are RFC 3339 UTC with whole seconds, so comparing the
/// strings compares the times.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seen {
    /// The sample that first showed it.
    pub first: String,
    /// The latest sample in which it was done again.
    pub last: String,
    /// The unit's phase when it was first seen: `start-up` (until the unit reported ready),
    /// `steady`, `reload` or `stop`; absent where that cannot be told (commands, cgroups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

impl Seen {
    /// Two histories of the same item as one: the earlier first sighting, with its phase, and
    /// the later last one.
    pub fn combine(a: Option<&Seen>, b: Option<&Seen>) -> Option<Seen> {
        match (a, b) {
            (Some(a), Some(b)) => {
                // Ties go to the earlier phase name, so the order of combining does not matter.
                let earlier = if (&b.first, &b.phase) < (&a.first, &a.phase) { b } else { a };
                Some(Seen { first: earlier.first.clone(), last: a.last.clone().max(b.last.clone()), phase: earlier.phase.clone() })
            }
            (a, b) => a.or(b).cloned(),
        }
    }
}

/// An item of a profile whose activity grows each time it is done again.
pub trait Observed {
    /// A number that grows when the item is seen again (a count; for paths, the operations).
    fn activity(&self) -> u64;
    fn seen(&self) -> Option<&Seen>;
    fn seen_mut(&mut self) -> &mut Option<Seen>;
    /// On how many merged profiles it was seen (`None`: not a merge, so one).
    fn coverage_mut(&mut self) -> &mut Option<u32>;
    fn coverage(&self) -> u32;
    /// The executables it is attributed to (none for an executable itself).
    fn used_by(&self) -> Vec<&str>;
}

macro_rules! observed {
    ($ty:ty, |$it:ident| $activity:expr) => {
        observed!($ty, |$it| $activity, |u| u.executables.iter().map(String::as_str).collect());
    };
    ($ty:ty, |$it:ident| $activity:expr, |$who:ident| $used_by:expr) => {
        impl Observed for $ty {
            fn activity(&self) -> u64 {
                let $it = self;
                $activity
            }
            fn seen(&self) -> Option<&Seen> {
                self.seen.as_ref()
            }
            fn seen_mut(&mut self) -> &mut Option<Seen> {
                &mut self.seen
            }
            fn coverage_mut(&mut self) -> &mut Option<u32> {
                &mut self.coverage
            }
            fn coverage(&self) -> u32 {
                self.coverage.unwrap_or(1)
            }
            fn used_by(&self) -> Vec<&str> {
                let $who = self;
                $used_by
            }
        }
    };
}

observed!(ItemUse, |u| u.count);
observed!(DeviceUse, |u| u.count);
observed!(SocketUse, |u| u.count);
observed!(ExecutableUse, |u| u.execs, |_u| Vec::new());
observed!(CapabilityUse, |u| u.granted + u.denied + u.probes);
// The kernel sends a path once until its dedup entry is evicted: a new operation on it is the
// only repeat userspace can count.
observed!(PathUse, |u| u.ops.len() as u64);

/// The kinds of item a profile holds, as its field names.
pub const KINDS: [&str; 12] = [
    "syscalls",
    "capabilities",
    "executables",
    "paths",
    "families",
    "namespaces",
    "devices",
    "sockets",
    "acts",
    "peers",
    "errors",
    "refused",
];

impl Profile {
    /// Calls `f` with every item: its kind (one of `KINDS`), its name, and the item. Syscalls
    /// are named `abi:name`.
    pub fn visit_items(&self, mut f: impl FnMut(&'static str, &str, &dyn Observed)) {
        for (abi, calls) in &self.syscalls {
            for (name, use_) in calls {
                f("syscalls", &format!("{abi}:{name}"), use_);
            }
        }
        fn each<T: Observed>(kind: &'static str, map: &BTreeMap<String, T>, f: &mut dyn FnMut(&'static str, &str, &dyn Observed)) {
            map.iter().for_each(|(k, v)| f(kind, k, v));
        }
        each("capabilities", &self.capabilities, &mut f);
        each("executables", &self.executables, &mut f);
        each("paths", &self.paths, &mut f);
        each("families", &self.families, &mut f);
        each("namespaces", &self.namespaces, &mut f);
        each("devices", &self.devices, &mut f);
        each("sockets", &self.sockets, &mut f);
        each("acts", &self.acts, &mut f);
        each("peers", &self.peers, &mut f);
        each("errors", &self.errors, &mut f);
        each("refused", &self.refused, &mut f);
    }

    /// As `visit_items`, with each item mutable.
    pub fn visit_items_mut(&mut self, mut f: impl FnMut(&'static str, &str, &mut dyn Observed)) {
        for (abi, calls) in &mut self.syscalls {
            for (name, use_) in calls {
                f("syscalls", &format!("{abi}:{name}"), use_);
            }
        }
        fn each<T: Observed>(kind: &'static str, map: &mut BTreeMap<String, T>, f: &mut dyn FnMut(&'static str, &str, &mut dyn Observed)) {
            map.iter_mut().for_each(|(k, v)| f(kind, k, v));
        }
        each("capabilities", &mut self.capabilities, &mut f);
        each("executables", &mut self.executables, &mut f);
        each("paths", &mut self.paths, &mut f);
        each("families", &mut self.families, &mut f);
        each("namespaces", &mut self.namespaces, &mut f);
        each("devices", &mut self.devices, &mut f);
        each("sockets", &mut self.sockets, &mut f);
        each("acts", &mut self.acts, &mut f);
        each("peers", &mut self.peers, &mut f);
        each("errors", &mut self.errors, &mut f);
        each("refused", &mut self.refused, &mut f);
    }

    /// The latest time anything was first seen: when the profile last learned something.
    pub fn last_learned(&self) -> Option<String> {
        let mut latest: Option<String> = None;
        self.visit_items(|_, _, item| {
            if let Some(seen) = item.seen()
                && latest.as_ref().is_none_or(|l| seen.first > *l)
            {
                latest = Some(seen.first.clone());
            }
        });
        latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(first: &str, last: &str, phase: &str) -> Seen {
        Seen { first: first.into(), last: last.into(), phase: Some(phase.into()) }
    }

    #[test]
    fn combining_keeps_the_first_sighting_with_its_phase_and_the_last() {
        let a = seen("2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", "steady");
        let b = seen("2026-11-20T09:00:00Z", "2026-11-20T09:30:00Z", "start-up");
        let both = Seen::combine(Some(&a), Some(&b)).unwrap();
        assert_eq!(both, seen("2026-11-20T09:00:00Z", "2026-11-20T11:00:00Z", "start-up"));
        assert_eq!(Seen::combine(Some(&a), Some(&b)), Seen::combine(Some(&b), Some(&a)));
        assert_eq!(Seen::combine(None, Some(&a)), Some(a.clone()));
        assert_eq!(Seen::combine(None, None), None);
    }
}
