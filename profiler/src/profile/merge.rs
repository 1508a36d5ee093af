//! Merging profiles of the same target: counts add up, sets unite, sightings span both.
//!
//! Used when a recording resumes on an existing profile, and by `merge`. Merging is
//! commutative and associative, so the order runs and hosts are combined in does not matter.

use std::collections::BTreeMap;

use super::{CallerUse, CapabilityUse, DeviceUse, ExecutableUse, ItemUse, PathUse, Profile, Recording, Seen, SocketUse};

/// Folds `other` into `self`.
pub trait Merge {
    fn merge(&mut self, other: &Self);
}

fn merge_maps<T: Merge + Clone>(into: &mut BTreeMap<String, T>, from: &BTreeMap<String, T>) {
    for (key, value) in from {
        match into.get_mut(key) {
            Some(existing) => existing.merge(value),
            None => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_seen(into: &mut Option<Seen>, from: &Option<Seen>) {
    *into = Seen::combine(into.as_ref(), from.as_ref());
}

/// Coverage adds up in merges; resuming a recording (neither side merged) keeps it absent.
fn merge_coverage(into: &mut Option<u32>, from: &Option<u32>) {
    if into.is_some() || from.is_some() {
        *into = Some(into.unwrap_or(1) + from.unwrap_or(1));
    }
}

impl Merge for ItemUse {
    fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.executables.extend(other.executables.iter().cloned());
        merge_seen(&mut self.seen, &other.seen);
        merge_coverage(&mut self.coverage, &other.coverage);
    }
}

impl Merge for PathUse {
    fn merge(&mut self, other: &Self) {
        self.ops.extend(other.ops.iter().cloned());
        self.failures.extend(other.failures.iter().cloned());
        self.executables.extend(other.executables.iter().cloned());
        self.incomplete |= other.incomplete;
        merge_seen(&mut self.seen, &other.seen);
        merge_coverage(&mut self.coverage, &other.coverage);
    }
}

impl Merge for DeviceUse {
    fn merge(&mut self, other: &Self) {
        self.access = crate::names::merge_access(&self.access, &other.access);
        self.count += other.count;
        self.executables.extend(other.executables.iter().cloned());
        merge_seen(&mut self.seen, &other.seen);
        merge_coverage(&mut self.coverage, &other.coverage);
    }
}

impl Merge for SocketUse {
    fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.executables.extend(other.executables.iter().cloned());
        merge_seen(&mut self.seen, &other.seen);
        merge_coverage(&mut self.coverage, &other.coverage);
    }
}

impl Merge for ExecutableUse {
    fn merge(&mut self, other: &Self) {
        self.execs += other.execs;
        merge_seen(&mut self.seen, &other.seen);
        merge_coverage(&mut self.coverage, &other.coverage);
    }
}

impl Merge for CallerUse {
    fn merge(&mut self, other: &Self) {
        self.granted += other.granted;
        self.denied += other.denied;
        // The same kernel caller is a probe or not whichever run saw it.
        self.probe |= other.probe;
    }
}

impl Merge for CapabilityUse {
    fn merge(&mut self, other: &Self) {
        self.granted += other.granted;
        self.denied += other.denied;
        self.probes += other.probes;
        self.executables.extend(other.executables.iter().cloned());
        merge_maps(&mut self.callers, &other.callers);
        merge_seen(&mut self.seen, &other.seen);
        merge_coverage(&mut self.coverage, &other.coverage);
    }
}

impl Merge for Recording {
    fn merge(&mut self, other: &Self) {
        self.started = self.started.clone().min(other.started.clone());
        // The later recording's end, exit status and checkpoint state describe the whole; a
        // tie goes by those fields in turn, so the order of merging does not matter.
        let key = |r: &Recording| (r.ended.clone(), r.command_exit, r.checkpointed.clone(), r.checkpoint_seconds, r.live);
        let later = if key(other) >= key(self) { other.clone() } else { self.clone() };
        self.ended = later.ended;
        self.command_exit = later.command_exit;
        self.checkpointed = later.checkpointed;
        self.checkpoint_seconds = later.checkpoint_seconds;
        self.live = later.live;
        self.seconds = ((self.seconds + other.seconds) * 1000.0).round() / 1000.0;
        self.restarts += other.restarts;
        self.runs += other.runs;
        merge_coverage(&mut self.inputs, &other.inputs);
        self.hosts.extend(other.hosts.iter().cloned());
    }
}

impl Merge for Profile {
    /// Folds another profile of the same target into this one; the caller checks they are
    /// of the same target (`same_target`).
    fn merge(&mut self, other: &Self) {
        self.version = self.version.max(other.version);
        // Hosts differ only in a merge, which lists them all in `recording.hosts`.
        if (&other.host.hostname, &other.host.kernel, &other.host.arch) < (&self.host.hostname, &self.host.kernel, &self.host.arch) {
            self.host = other.host.clone();
        }
        self.recording.merge(&other.recording);
        for (abi, calls) in &other.syscalls {
            merge_maps(self.syscalls.entry(abi.clone()).or_default(), calls);
        }
        merge_maps(&mut self.capabilities, &other.capabilities);
        merge_maps(&mut self.executables, &other.executables);
        for (kind, lost) in &other.losses {
            *self.losses.entry(kind.clone()).or_default() += lost;
        }
        merge_maps(&mut self.paths, &other.paths);
        merge_maps(&mut self.families, &other.families);
        merge_maps(&mut self.namespaces, &other.namespaces);
        merge_maps(&mut self.devices, &other.devices);
        merge_maps(&mut self.sockets, &other.sockets);
        merge_maps(&mut self.acts, &other.acts);
        merge_maps(&mut self.peers, &other.peers);
        merge_maps(&mut self.errors, &other.errors);
    }
}

impl Profile {
    /// Whether two profiles watched the same thing: the same unit, or the same command line.
    pub fn same_target(&self, other: &Profile) -> bool {
        self.target.kind == other.target.kind
            && match self.target.kind {
                super::TargetKind::Unit => self.target.unit == other.target.unit,
                super::TargetKind::Command => self.target.command == other.target.command,
                super::TargetKind::Cgroup => self.target.cgroup == other.target.cgroup,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::sample;

    #[test]
    fn a_profile_merged_with_itself_doubles_its_counts_and_keeps_its_items() {
        let one = sample();
        let mut two = one.clone();
        two.merge(&one);
        assert_eq!(two.syscalls["x86_64"]["read"].count, 2 * one.syscalls["x86_64"]["read"].count);
        assert_eq!(two.capabilities["CAP_CHOWN"].granted, 2);
        assert_eq!(two.recording.runs, 2);
        assert_eq!(two.recording.seconds, 2.0);
        assert_eq!(two.syscall_names(), one.syscall_names());
    }

    #[test]
    fn merging_unites_what_either_saw() {
        let a = sample();
        let mut b = sample();
        b.syscalls.get_mut("x86_64").unwrap().insert("write".into(), ItemUse { count: 1, ..Default::default() });
        b.losses.insert("signals_table_full".into(), 2);
        b.recording.restarts = 3;
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.syscall_names().into_iter().collect::<Vec<_>>(), ["read", "write"]);
        assert_eq!(ab.losses["signals_table_full"], 2);
        assert_eq!(ab.recording.restarts, 3);
    }
}
