//! What one profile needs that the other does not, kind by kind, and how the drop-ins the two
//! would produce differ (`profiler diff`).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::Path,
};

use serde::Serialize;

use super::{Profile, path_text::is_proc_pid};
use crate::harden::{DropIn, Setting};

/// One item only one side has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub name: String,
    /// Calls, checks, execs, or operations on a path.
    pub count: u64,
    pub executables: Vec<String>,
}

/// What differs between A and B.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Difference {
    /// What B needs that A did not, by kind.
    pub added: BTreeMap<&'static str, Vec<Item>>,
    /// What A needed that B does not.
    pub removed: BTreeMap<&'static str, Vec<Item>>,
    /// Directive lines of A's drop-in that B's lacks, and the reverse.
    pub dropin_removed: Vec<String>,
    pub dropin_added: Vec<String>,
}

impl Difference {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.dropin_added.is_empty() && self.dropin_removed.is_empty()
    }
}

/// Items by kind and name, as needs: capabilities only where a check was granted.
fn needs(profile: &Profile) -> BTreeMap<(&'static str, String), Item> {
    let mut out = BTreeMap::new();
    profile.visit_items(|kind, name, item| {
        if kind == "capabilities" && !profile.capabilities.get(name).is_some_and(|c| c.needed()) {
            return;
        }
        // Each run reads its own /proc/PID: one name for them all.
        let name = if kind == "paths" && is_proc_pid(name) { "/proc/[pid]" } else { name };
        let executables = item.used_by().into_iter().map(str::to_string).collect();
        out.insert((kind, name.to_string()), Item { name: name.to_string(), count: item.activity(), executables });
    });
    out
}

/// The directive lines of a drop-in (its comments carry counts, which always differ).
fn directive_lines(dropin: &DropIn) -> BTreeSet<&Setting> {
    dropin.settings().collect()
}

pub fn compare(a: &Profile, b: &Profile, dropin_a: &DropIn, dropin_b: &DropIn) -> Difference {
    let (needs_a, needs_b) = (needs(a), needs(b));
    let mut difference = Difference::default();
    for ((kind, name), item) in &needs_b {
        if !needs_a.contains_key(&(*kind, name.clone())) {
            difference.added.entry(kind).or_default().push(item.clone());
        }
    }
    for ((kind, name), item) in &needs_a {
        if !needs_b.contains_key(&(*kind, name.clone())) {
            difference.removed.entry(kind).or_default().push(item.clone());
        }
    }
    let (lines_a, lines_b) = (directive_lines(dropin_a), directive_lines(dropin_b));
    difference.dropin_removed = lines_a.difference(&lines_b).map(|l| l.to_string()).collect();
    difference.dropin_added = lines_b.difference(&lines_a).map(|l| l.to_string()).collect();
    difference
}

/// The difference for people: each side's needs by kind, then the drop-in lines.
pub fn report(a: &Path, b: &Path, d: &Difference) -> String {
    let mut out = String::new();
    if d.is_empty() {
        let _ = writeln!(out, "{} and {} need the same, and give the same drop-in", a.display(), b.display());
        return out;
    }
    let mut side = |title: String, items: &BTreeMap<&'static str, Vec<Item>>| {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(out, "{title}");
        for (kind, list) in items {
            let _ = writeln!(out, "  {kind}:");
            for item in list {
                let by = if item.executables.is_empty() { String::new() } else { format!(", by {}", item.executables.join(", ")) };
                let _ = writeln!(out, "    {} ({}{by})", item.name, item.count);
            }
        }
    };
    side(format!("{} needs what {} did not:", b.display(), a.display()), &d.added);
    side(format!("{} needed what {} does not:", a.display(), b.display()), &d.removed);
    if !d.dropin_added.is_empty() || !d.dropin_removed.is_empty() {
        let _ = writeln!(out, "drop-in ({} -> {}):", a.display(), b.display());
        for line in &d.dropin_removed {
            let _ = writeln!(out, "  - {line}");
        }
        for line in &d.dropin_added {
            let _ = writeln!(out, "  + {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        harden::Block,
        profile::{CapabilityUse, ItemUse},
    };

    /// A drop-in of these `Directive=value` lines, in one block with a comment.
    fn dropin(lines: &[&str]) -> DropIn {
        let mut block = Block::default();
        block.comment("a comment");
        block.entries.extend(lines.iter().map(|l| crate::harden::Entry::Setting(Setting::parse(l))));
        DropIn { blocks: vec![block], ..Default::default() }
    }

    fn with_syscalls(names: &[&str]) -> Profile {
        let mut p = Profile::default();
        for name in names {
            let use_ = ItemUse { count: 2, executables: ["/usr/bin/d".to_string()].into(), ..Default::default() };
            p.syscalls.entry("x86_64".into()).or_default().insert(name.to_string(), use_);
        }
        p
    }

    #[test]
    fn each_side_lists_what_only_it_needs_by_kind() {
        let a = with_syscalls(&["read", "write"]);
        let mut b = with_syscalls(&["read", "mlockall"]);
        b.capabilities.insert("CAP_IPC_LOCK".into(), CapabilityUse { granted: 1, ..Default::default() });
        // A probe only is not a need.
        b.capabilities.insert("CAP_SYS_ADMIN".into(), CapabilityUse { probes: 4, ..Default::default() });
        let d = compare(&a, &b, &dropin(&["X=1"]), &dropin(&["X=1"]));
        let names = |m: &BTreeMap<&str, Vec<Item>>, k: &str| m.get(k).map(|v| v.iter().map(|i| i.name.clone()).collect::<Vec<_>>());
        assert_eq!(names(&d.added, "syscalls"), Some(vec!["x86_64:mlockall".to_string()]));
        assert_eq!(names(&d.added, "capabilities"), Some(vec!["CAP_IPC_LOCK".to_string()]));
        assert_eq!(names(&d.removed, "syscalls"), Some(vec!["x86_64:write".to_string()]));
        assert_eq!(d.added["syscalls"][0].executables, ["/usr/bin/d"]);
        assert!(d.dropin_added.is_empty() && d.dropin_removed.is_empty());
    }

    #[test]
    fn the_same_profile_differs_in_nothing() {
        let a = with_syscalls(&["read"]);
        assert!(compare(&a, &a, &dropin(&["X=1"]), &dropin(&["X=1"])).is_empty());
        let d = compare(&a, &a, &dropin(&["X=1", "Y=2"]), &dropin(&["X=1", "Y=3"]));
        assert_eq!((d.dropin_removed, d.dropin_added), (vec!["Y=2".to_string()], vec!["Y=3".to_string()]));
    }
}
