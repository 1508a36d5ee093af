//! systemd's syscall groups (`@file-system`, ...) as the target systemd defines them: parsed
//! from `systemd-analyze syscall-filter` of the target host, or from a table captured from a
//! known systemd version. Groups change between versions, so they are never assumed.

use std::collections::{BTreeMap, BTreeSet};

/// Tables captured verbatim from `systemd-analyze syscall-filter` of released systemd builds.
/// Oldest first. (257's @default takes in @sandbox, new in 254: seccomp and landlock.)
const BUILTIN: &[(&str, &str)] = &[("252", include_str!("groups/systemd-252.txt")), ("257", include_str!("groups/systemd-257.txt"))];

#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    #[error("no built-in syscall group table for systemd {version}; known: {known}")]
    UnknownVersion { version: String, known: String },
    #[error("{source_name} is not a systemd-analyze syscall-filter listing: {reason}")]
    Parse { source_name: String, reason: String },
}

/// Group name -> every syscall it allows, nested groups expanded.
#[derive(Debug, Clone)]
pub struct SyscallGroups {
    /// Where the table came from, for the drop-in's header.
    pub source: String,
    groups: BTreeMap<String, BTreeSet<String>>,
    /// `@default`, kept apart because every filter needs it.
    always: BTreeSet<String>,
}

impl SyscallGroups {
    pub fn builtin(version: &str) -> Result<Self, GroupsError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(v, _)| *v == version)
            .ok_or_else(|| GroupsError::UnknownVersion { version: version.into(), known: Self::builtin_versions().join(", ") })?;
        Self::parse(text, &format!("built-in table of systemd {version}"))
    }

    pub fn builtin_versions() -> Vec<&'static str> {
        BUILTIN.iter().map(|(v, _)| *v).collect()
    }

    /// The built-in table closest to systemd `version` without being newer (a newer table
    /// could name a group or call that systemd lacks); the oldest one for older versions.
    pub fn builtin_for(version: u32) -> Result<Self, GroupsError> {
        let fits = |v: &&str| v.parse::<u32>().is_ok_and(|v| v <= version);
        let chosen = BUILTIN.iter().map(|(v, _)| *v).rfind(fits).or_else(|| BUILTIN.first().map(|(v, _)| *v));
        Self::builtin(chosen.unwrap_or(""))
    }

    /// Parses the listing: a group name at column 0, its members indented below, comments
    /// starting with `#`; a `#` at column 0 starts the trailing "ungrouped" notes.
    pub fn parse(text: &str, source: &str) -> Result<Self, GroupsError> {
        let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with('#') {
                current = None;
                continue;
            }
            if !line.starts_with(char::is_whitespace) {
                if !line.starts_with('@') {
                    return Err(GroupsError::Parse { source_name: source.into(), reason: format!("unexpected line {line:?}") });
                }
                current = Some(line.trim().to_string());
                raw.entry(line.trim().to_string()).or_default();
                continue;
            }
            let entry = line.trim();
            if entry.starts_with('#') {
                continue;
            }
            if let Some(group) = &current {
                raw.entry(group.clone()).or_default().push(entry.to_string());
            }
        }
        let groups: BTreeMap<String, BTreeSet<String>> =
            raw.keys().map(|name| (name.clone(), expand(&raw, name, &mut Vec::new()))).collect();
        let always = groups
            .get("@default")
            .cloned()
            .ok_or_else(|| GroupsError::Parse { source_name: source.into(), reason: "it has no @default group".into() })?;
        Ok(Self { source: source.into(), groups, always })
    }

    pub fn get(&self, group: &str) -> Option<&BTreeSet<String>> {
        self.groups.get(group)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &BTreeSet<String>)> {
        self.groups.iter()
    }

    /// Syscalls systemd allows in every filter without being listed.
    pub fn always_allowed(&self) -> &BTreeSet<String> {
        &self.always
    }

    /// Whether the target systemd can name this syscall in a filter. Without an `@known`
    /// group (systemd < 247) every name is assumed known.
    pub fn knows(&self, syscall: &str) -> bool {
        self.groups.get("@known").is_none_or(|known| known.contains(syscall))
    }
}

fn expand(raw: &BTreeMap<String, Vec<String>>, group: &str, path: &mut Vec<String>) -> BTreeSet<String> {
    if path.iter().any(|g| g == group) {
        return BTreeSet::new();
    }
    path.push(group.to_string());
    let mut members = BTreeSet::new();
    for entry in raw.get(group).into_iter().flatten() {
        if entry.starts_with('@') {
            members.extend(expand(raw, entry, path));
        } else {
            members.insert(entry.clone());
        }
    }
    path.pop();
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "@default\n    # always\n    brk\n    exit_group\n\n\
        @basic-io\n    # io\n    read\n    write\n\n\
        @system-service\n    # svc\n    @basic-io\n    openat\n\n\
        @known\n    brk\n    exit_group\n    read\n    write\n    openat\n\n\
        # Ungrouped System Calls (known but not included in any of the groups except @known):\n\
        #   landlock_add_rule\n";

    #[test]
    fn expands_nested_groups() {
        let groups = SyscallGroups::parse(LISTING, "test").unwrap();
        let service: Vec<_> = groups.get("@system-service").unwrap().iter().map(String::as_str).collect();
        assert_eq!(service, ["openat", "read", "write"]);
        assert!(groups.always_allowed().contains("brk"));
        assert!(groups.knows("openat"));
        assert!(!groups.knows("landlock_add_rule"));
    }

    #[test]
    fn the_builtin_252_table_is_complete() {
        let groups = SyscallGroups::builtin("252").unwrap();
        assert!(groups.get("@file-system").unwrap().contains("openat"));
        assert!(groups.get("@system-service").unwrap().contains("openat"), "nested @file-system expanded");
        assert!(groups.always_allowed().contains("execve"));
        assert!(groups.get("@network-io").unwrap().contains("accept4"));
        assert!(matches!(SyscallGroups::builtin("1"), Err(GroupsError::UnknownVersion { .. })));
    }

    #[test]
    fn a_target_gets_no_group_newer_than_itself() {
        let of = |v: u32| SyscallGroups::builtin_for(v).unwrap();
        assert!(of(252).get("@sandbox").is_none() && of(256).get("@sandbox").is_none(), "@sandbox appeared in 254, 257's table is newer");
        assert!(of(257).get("@sandbox").unwrap().contains("landlock_create_ruleset"));
        assert!(of(257).always_allowed().contains("seccomp"), "257's @default takes in @sandbox");
        assert!(of(260).get("@sandbox").is_some());
        assert!(of(245).source.contains("252"), "older targets get the oldest table");
    }

    #[test]
    fn refuses_what_is_not_a_listing() {
        assert!(SyscallGroups::parse("hello\n", "x").is_err());
        assert!(SyscallGroups::parse("@basic-io\n    read\n", "x").is_err());
    }
}
