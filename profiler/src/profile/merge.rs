//! Merging profiles of the same target: counts add up (saturating, so a merge of merges
//! cannot wrap), sets unite, sightings span both.
//!
//! Used when a recording resumes on an existing profile, and by `merge`. Merging is
//! commutative and associative, so the order runs and hosts are combined in does not matter.

use std::collections::{BTreeMap, BTreeSet};

use super::{CallerUse, CapabilityUse, DeviceUse, ExecutableUse, ItemUse, PathUse, Profile, Recording, Seen, SocketUse, hook_before};

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
        self.count = self.count.saturating_add(other.count);
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
        self.access = crate::profile::names::merge_access(&self.access, &other.access);
        self.count = self.count.saturating_add(other.count);
        self.executables.extend(other.executables.iter().cloned());
        merge_seen(&mut self.seen, &other.seen);
        merge_coverage(&mut self.coverage, &other.coverage);
    }
}

impl Merge for SocketUse {
    fn merge(&mut self, other: &Self) {
        self.count = self.count.saturating_add(other.count);
        self.executables.extend(other.executables.iter().cloned());
        merge_seen(&mut self.seen, &other.seen);
        merge_coverage(&mut self.coverage, &other.coverage);
    }
}

impl Merge for ExecutableUse {
    fn merge(&mut self, other: &Self) {
        self.execs = self.execs.saturating_add(other.execs);
        merge_seen(&mut self.seen, &other.seen);
        merge_coverage(&mut self.coverage, &other.coverage);
    }
}

impl Merge for CallerUse {
    fn merge(&mut self, other: &Self) {
        self.granted = self.granted.saturating_add(other.granted);
        self.denied = self.denied.saturating_add(other.denied);
        // The same kernel caller is a probe or not whichever run saw it.
        self.probe |= other.probe;
    }
}

impl Merge for CapabilityUse {
    fn merge(&mut self, other: &Self) {
        self.granted = self.granted.saturating_add(other.granted);
        self.denied = self.denied.saturating_add(other.denied);
        self.probes = self.probes.saturating_add(other.probes);
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
        self.restarts = self.restarts.saturating_add(other.restarts);
        self.runs = self.runs.saturating_add(other.runs);
        merge_coverage(&mut self.inputs, &other.inputs);
        self.hosts.extend(other.hosts.iter().cloned());
        // A recording that names no hook for a kind used the only one there was then.
        let kinds: BTreeSet<String> = self.hooks.keys().chain(other.hooks.keys()).cloned().collect();
        for kind in kinds {
            let of = |r: &Recording| r.hooks.get(&kind).cloned().unwrap_or_else(|| BTreeSet::from([hook_before(&kind).to_string()]));
            let used = of(self).union(&of(other)).cloned().collect();
            self.hooks.insert(kind, used);
        }
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
            let total = self.losses.entry(kind.clone()).or_default();
            *total = total.saturating_add(*lost);
        }
        merge_maps(&mut self.paths, &other.paths);
        merge_maps(&mut self.families, &other.families);
        merge_maps(&mut self.namespaces, &other.namespaces);
        merge_maps(&mut self.devices, &other.devices);
        merge_maps(&mut self.sockets, &other.sockets);
        merge_maps(&mut self.acts, &other.acts);
        merge_maps(&mut self.peers, &other.peers);
        merge_maps(&mut self.errors, &other.errors);
        merge_maps(&mut self.refused, &other.refused);
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

/// One profile as a merge input: each of its items counts as seen once, unless it is itself
/// a merge and says how often.
pub fn as_input(mut profile: Profile) -> Profile {
    profile.visit_items_mut(|_, _, item| {
        item.coverage_mut().get_or_insert(1);
    });
    profile.recording.inputs.get_or_insert(1);
    if profile.recording.hosts.is_empty() {
        profile.recording.hosts.insert(profile.host.hostname.clone());
    }
    profile
}

/// The merge of every profile; `None` for none. Associative and commutative (for profiles of
/// one target), so the grouping and order of inputs do not matter.
pub fn merge_all(profiles: impl IntoIterator<Item = Profile>) -> Option<Profile> {
    profiles.into_iter().map(as_input).reduce(|mut into, other| {
        into.merge(&other);
        into
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::sample;

    #[test]
    fn hooks_add_up_and_a_profile_without_them_came_from_the_tracepoint() {
        let old = Profile::default();
        let mut fexit = Profile::default();
        fexit.recording.hooks.insert(crate::profile::CAPABILITY_HOOKS.into(), ["fexit".to_string()].into());
        let mut merged = fexit.clone();
        merged.merge(&old);
        assert_eq!(merged.recording.capability_hooks(), ["fexit", "tracepoint"].into());
        let mut other_way = old.clone();
        other_way.merge(&fexit);
        assert_eq!(other_way.recording.hooks, merged.recording.hooks);
        let mut blind = Profile::default();
        blind.recording.hooks.insert(crate::profile::EXEC_HOOKS.into(), ["name-only".to_string()].into());
        blind.merge(&old);
        assert_eq!(blind.recording.hooks[crate::profile::EXEC_HOOKS], ["file".to_string(), "name-only".to_string()].into());
        assert!(blind.recording.set_id_execs_unseen());
        let mut both_old = old.clone();
        both_old.merge(&old);
        assert!(both_old.recording.hooks.is_empty(), "nothing is invented for old profiles");
    }

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

/// The merge laws: commutative and associative over random profiles of one target.
#[cfg(test)]
mod laws {
    use std::collections::BTreeMap;

    use super::*;
    use crate::profile::{CallerUse, CapabilityUse, DeviceUse, ExecutableUse, ItemUse, PathOp, PathUse, Seen, SocketUse, TargetKind};

    use crate::test_rng::Rng;

    /// What a random profile is made of.
    impl Rng {
        fn time(&mut self) -> String {
            format!("2026-11-22T08:{:02}:{:02}Z", self.below(60), self.below(60))
        }
        fn seen(&mut self) -> Option<Seen> {
            if self.coin() {
                return None;
            }
            let (a, b) = (self.time(), self.time());
            let phase = self.coin().then(|| self.pick(&["start-up", "steady", "reload"]).to_string());
            Some(Seen { first: a.clone().min(b.clone()), last: a.max(b), phase })
        }
        fn item(&mut self) -> ItemUse {
            ItemUse { count: self.below(1000), executables: self.subset(EXES), seen: self.seen(), coverage: None }
        }
        /// A map over a random subset of `names`, each value made by `make`.
        fn map<T>(&mut self, names: &[&str], mut make: impl FnMut(&mut Self, &str) -> T) -> BTreeMap<String, T> {
            let mut out = BTreeMap::new();
            for name in names {
                if self.coin() {
                    let value = make(self, name);
                    out.insert(name.to_string(), value);
                }
            }
            out
        }
    }

    const EXES: &[&str] = &["/usr/sbin/d", "/usr/bin/helper", "/bin/sh"];

    fn random_profile(rng: &mut Rng) -> Profile {
        let mut p = Profile { format: crate::profile::FORMAT.into(), version: 3 + rng.below(2) as u32, ..Default::default() };
        p.target.kind = TargetKind::Unit;
        p.target.unit = Some("d.service".into());
        p.host.hostname = rng.pick(&["web1", "web2", "web3"]).into();
        p.host.kernel = rng.pick(&["6.1", "6.18"]).into();
        let (a, b) = (rng.time(), rng.time());
        p.recording.started = a.clone().min(b.clone());
        p.recording.ended = a.max(b);
        p.recording.seconds = rng.below(100_000) as f64 / 1000.0;
        p.recording.command_exit = rng.coin().then(|| rng.below(3) as i32);
        p.recording.restarts = rng.below(3);
        p.recording.runs = 1 + rng.below(2);
        p.recording.checkpointed = rng.coin().then(|| rng.time());
        p.recording.live = rng.coin();
        for abi in ["x86_64", "i386"] {
            let calls = rng.map(&["read", "write", "openat", "mlockall"], |r, _| r.item());
            if !calls.is_empty() {
                p.syscalls.insert(abi.into(), calls);
            }
        }
        p.capabilities = rng.map(&["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"], |r, _| CapabilityUse {
            granted: r.below(5),
            denied: r.below(5),
            probes: r.below(5),
            executables: r.subset(EXES),
            callers: r.map(&["chown_common", "sk_alloc"], |r, _| CallerUse { granted: r.below(5), denied: r.below(3), probe: r.coin() }),
            seen: r.seen(),
            coverage: None,
        });
        p.executables = rng.map(EXES, |r, _| ExecutableUse { execs: r.below(9), seen: r.seen(), coverage: None });
        p.losses = rng.map(&["tasks_table_full", "path_records_lost"], |r, _| r.below(50));
        p.paths = rng.map(&["/var/lib/d/state", "/tmp/x", "/proc/1"], |r, _| PathUse {
            ops: [PathOp::Write, PathOp::Create, PathOp::Read].into_iter().filter(|_| r.coin()).collect(),
            failures: r.subset(&["create EROFS"]),
            executables: r.subset(EXES),
            incomplete: r.coin(),
            seen: r.seen(),
            coverage: None,
        });
        p.families = rng.map(&["AF_INET", "AF_UNIX"], |r, _| r.item());
        p.namespaces = rng.map(&["mnt", "net"], |r, _| r.item());
        p.acts = rng.map(&["mmap-write-exec"], |r, _| r.item());
        p.peers = rng.map(&["192.0.2.7"], |r, _| r.item());
        p.errors = rng.map(&["openat ENOENT", "socket EPERM"], |r, _| r.item());
        p.refused = rng.map(&["family AF_NETLINK EAFNOSUPPORT", "namespace net EPERM"], |r, _| r.item());
        // What a key names (a device's numbers, a socket's port) is the same on every side.
        p.devices = rng.map(&["char 1:3", "char 1:5"], |r, name| DeviceUse {
            kind: "char".into(),
            major: 1,
            minor: name.rsplit(':').next().and_then(|m| m.parse().ok()).unwrap_or(0),
            access: r.subset(&["r", "w", "m"]).into_iter().collect(),
            count: r.below(9),
            executables: r.subset(EXES),
            seen: r.seen(),
            coverage: None,
        });
        p.sockets = rng.map(&["bind ipv4 tcp any:80"], |r, _| SocketUse {
            op: "bind".into(),
            family: "ipv4".into(),
            protocol: "tcp".into(),
            scope: "any".into(),
            port: 80,
            count: r.below(9),
            executables: r.subset(EXES),
            seen: r.seen(),
            coverage: None,
        });
        p
    }

    fn merged(profiles: &[&Profile]) -> Profile {
        merge_all(profiles.iter().map(|p| (*p).clone())).unwrap()
    }

    #[test]
    fn merging_is_commutative_and_associative() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for round in 0..500 {
            let (a, b, c) = (random_profile(&mut rng), random_profile(&mut rng), random_profile(&mut rng));
            assert_eq!(merged(&[&a, &b]), merged(&[&b, &a]), "not commutative in round {round}");
            let left = merged(&[&merged(&[&a, &b]), &c]);
            let right = merged(&[&a, &merged(&[&b, &c])]);
            assert_eq!(left, right, "not associative in round {round}");
        }
    }

    #[test]
    fn coverage_counts_the_inputs_that_saw_an_item() {
        let mut rng = Rng(7);
        let (mut a, mut b, mut c) = (random_profile(&mut rng), random_profile(&mut rng), random_profile(&mut rng));
        for p in [&mut a, &mut b, &mut c] {
            p.families.clear();
        }
        a.families.insert("AF_INET".into(), ItemUse { count: 1, ..Default::default() });
        b.families.insert("AF_INET".into(), ItemUse { count: 2, ..Default::default() });
        c.families.insert("AF_UNIX".into(), ItemUse { count: 4, ..Default::default() });
        let m = merged(&[&a, &b, &c]);
        assert_eq!(m.recording.inputs, Some(3));
        assert_eq!((m.families["AF_INET"].coverage, m.families["AF_INET"].count), (Some(2), 3));
        assert_eq!(m.families["AF_UNIX"].coverage, Some(1));
        assert_eq!(m.recording.hosts, [&a, &b, &c].iter().map(|p| p.host.hostname.clone()).collect());
    }

    #[test]
    fn resuming_a_recording_leaves_coverage_absent() {
        let mut a = Profile::default();
        a.families.insert("AF_INET".into(), ItemUse { count: 1, ..Default::default() });
        let b = a.clone();
        a.merge(&b);
        assert_eq!(a.families["AF_INET"].coverage, None);
        assert_eq!(a.recording.inputs, None);
    }
}
