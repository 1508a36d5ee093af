//! Condenses the syscalls a service made into a `SystemCallFilter=` allow-list.
//!
//! Strategy: a group is used only when every member that exists on this architecture was
//! seen, so a group never allows more than was observed; groups are picked greedily, the one
//! covering most not-yet-covered syscalls first, while a group still covers at least two; the
//! rest are listed by name. `@default` is implicit in every systemd filter and never listed.

use std::collections::BTreeSet;

use super::syscall_groups::SyscallGroups;

/// The allow-list, in the order it is rendered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyscallPlan {
    /// Groups used whole.
    pub groups: Vec<String>,
    /// Syscalls listed by name.
    pub singles: Vec<String>,
    /// Syscalls covered by `@default`.
    pub implicit: Vec<String>,
    /// Syscalls the target systemd cannot name: they stay refused.
    pub unknown: Vec<String>,
}

/// `arch_syscalls`: every syscall name that exists for the ABIs the filter will apply to.
pub fn condense(used: &BTreeSet<&str>, arch_syscalls: &BTreeSet<&str>, groups: &SyscallGroups) -> SyscallPlan {
    let always = groups.always_allowed();
    let mut plan = SyscallPlan::default();
    let mut uncovered: BTreeSet<&str> = BTreeSet::new();
    for &name in used {
        if always.contains(name) {
            plan.implicit.push(name.to_string());
        } else if !groups.knows(name) {
            plan.unknown.push(name.to_string());
        } else {
            uncovered.insert(name);
        }
    }

    // Relevant members: those that exist here and are not allowed anyway.
    let candidates: Vec<(&String, BTreeSet<&str>)> = groups
        .iter()
        .filter(|(name, _)| name.as_str() != "@default")
        .map(|(name, members)| {
            let relevant = members.iter().map(String::as_str).filter(|m| arch_syscalls.contains(m) && !always.contains(*m)).collect();
            (name, relevant)
        })
        .filter(|(_, relevant): &(&String, BTreeSet<&str>)| !relevant.is_empty() && relevant.iter().all(|m| used.contains(m)))
        .collect();

    loop {
        let best = candidates
            .iter()
            .map(|(name, relevant)| (relevant.iter().filter(|m| uncovered.contains(*m)).count(), *name, relevant))
            // Most newly covered first; on a tie the smaller group, then the name, for stable output.
            .max_by(|a, b| a.0.cmp(&b.0).then(b.2.len().cmp(&a.2.len())).then(b.1.cmp(a.1)));
        match best {
            Some((covers, name, relevant)) if covers >= 2 => {
                plan.groups.push(name.clone());
                for m in relevant {
                    uncovered.remove(m);
                }
            }
            _ => break,
        }
    }
    plan.groups.sort();
    plan.singles = uncovered.into_iter().map(str::to_string).collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> SyscallGroups {
        SyscallGroups::parse(
            "@default\n    brk\n    exit_group\n\
             @basic-io\n    read\n    write\n    _llseek\n\
             @file-system\n    openat\n    close\n    mkdir\n\
             @io-both\n    @basic-io\n    pread64\n\
             @known\n    brk\n    exit_group\n    read\n    write\n    _llseek\n    openat\n    close\n    mkdir\n    pread64\n    socket\n",
            "test",
        )
        .unwrap()
    }

    fn arch() -> BTreeSet<&'static str> {
        ["brk", "exit_group", "read", "write", "openat", "close", "mkdir", "pread64", "socket", "fancy_new_call"].into()
    }

    #[test]
    fn uses_only_groups_that_were_used_whole() {
        let used: BTreeSet<&str> = ["brk", "read", "write", "openat", "close", "socket"].into();
        let plan = condense(&used, &arch(), &groups());
        assert_eq!(plan.groups, ["@basic-io"], "_llseek does not exist on x86_64, so @basic-io is whole");
        assert_eq!(plan.singles, ["close", "openat", "socket"], "@file-system lacks mkdir");
        assert_eq!(plan.implicit, ["brk"]);
        assert!(plan.unknown.is_empty());
    }

    #[test]
    fn prefers_the_group_covering_most() {
        let used: BTreeSet<&str> = ["read", "write", "pread64"].into();
        let plan = condense(&used, &arch(), &groups());
        assert_eq!(plan.groups, ["@io-both"]);
        assert!(plan.singles.is_empty());
    }

    #[test]
    fn names_the_target_cannot_express_are_kept_apart() {
        let used: BTreeSet<&str> = ["read", "fancy_new_call"].into();
        let plan = condense(&used, &arch(), &groups());
        assert_eq!(plan.unknown, ["fancy_new_call"]);
        assert_eq!(plan.singles, ["read"], "a group covering one syscall is no shorter than its name");
    }
}
