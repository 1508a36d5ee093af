//! `profiler merge`: the union of profiles of one service across hosts and runs, keeping for
//! every item on how many of them it was seen (its coverage, "3 of 5").

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::profile::{self, Merge as _, Profile};

#[derive(Debug, Clone)]
pub struct MergeOptions {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    /// Merge profiles of different services too.
    pub any_target: bool,
}

pub fn run(options: &MergeOptions) -> anyhow::Result<()> {
    if options.inputs.len() < 2 {
        bail!("merge needs two profiles or more");
    }
    let mut profiles = Vec::new();
    for path in &options.inputs {
        profiles.push((path, profile::load(path)?));
    }
    let (first_path, first) = &profiles[0];
    for (path, other) in &profiles[1..] {
        if !options.any_target && !first.same_target(other) {
            bail!(
                "{} is a profile of {}, but {} is one of {}: merging them would mix two services' needs \
                 (--any-target merges them anyway)",
                path.display(),
                other.target_label(),
                first_path.display(),
                first.target_label()
            );
        }
    }
    let merged = merge_all(profiles.into_iter().map(|(_, p)| p)).context("nothing to merge")?;
    profile::save(&merged, &options.output)?;
    let inputs = merged.recording.inputs.unwrap_or(1);
    let (mut items, mut everywhere) = (0, 0);
    merged.visit_items(|_, _, item| {
        items += 1;
        everywhere += u32::from(item.coverage() == inputs);
    });
    println!(
        "merged {inputs} profiles ({}) into {}: {items} items, {everywhere} of them seen in all {inputs}",
        merged.recording.hosts.iter().cloned().collect::<Vec<_>>().join(", "),
        options.output.display()
    );
    Ok(())
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
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::profile::{CallerUse, CapabilityUse, DeviceUse, ExecutableUse, ItemUse, PathUse, Seen, SocketUse, TargetKind};

    /// xorshift64: reproducible random profiles without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn coin(&mut self) -> bool {
            self.below(2) == 0
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len() as u64) as usize]
        }
        fn subset(&mut self, from: &[&str]) -> BTreeSet<String> {
            from.iter().filter(|_| self.coin()).map(|s| s.to_string()).collect()
        }
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
        let mut p = Profile { format: profile::FORMAT.into(), version: 3 + rng.below(2) as u32, ..Default::default() };
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
            ops: r.subset(&["write", "create", "read"]),
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
