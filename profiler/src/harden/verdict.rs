//! One decided sandbox directive, the evidence the deciders share, and the rule every verdict
//! passes last: nothing the unit already restricts more is loosened, and nothing the target
//! systemd does not know is written.

use std::collections::BTreeSet;

use super::{
    dropin::Setting,
    quoting::some_of,
    target::{Target, introduced, strictness},
};
use crate::profile::{PathOp, Profile, path_text::is_under};

/// One decided directive.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Lines to write, and the evidence for them (comment lines).
    Set { lines: Vec<Setting>, why: Vec<String> },
    /// Not written, and why.
    Open { directive: String, why: String },
}

/// Settings from `(directive, value)` pairs.
pub fn settings(lines: &[(&str, &str)]) -> Vec<Setting> {
    lines.iter().map(|(d, v)| Setting::new(*d, *v)).collect()
}

pub fn set(lines: &[(&str, &str)], why: impl Into<String>) -> Verdict {
    Verdict::Set { lines: settings(lines), why: vec![why.into()] }
}

pub fn open(directive: &str, why: impl Into<String>) -> Verdict {
    Verdict::Open { directive: directive.into(), why: why.into() }
}

/// `line` when none of `seen` happened; otherwise the directive stays open, naming them.
pub fn absent_or(line: (&str, &str), seen: &[&str], because: &str) -> Verdict {
    if seen.is_empty() { set(&[line], because) } else { open(line.0, format!("seen: {}", some_of(seen.iter().copied(), 4))) }
}

/// Facts drawn from the profile once.
pub struct Evidence<'a> {
    pub profile: &'a Profile,
    pub syscalls: BTreeSet<&'a str>,
    /// The unit's `WorkingDirectory=`, where known.
    pub working_directory: Option<&'a str>,
}

impl<'a> Evidence<'a> {
    pub fn new(profile: &'a Profile, target: &'a Target) -> Self {
        let working_directory =
            target.unit.get("WorkingDirectory").map(|d| d.trim_start_matches(['-', '!', '~'])).filter(|d| d.starts_with('/'));
        Self { profile, syscalls: profile.needed_syscall_names(), working_directory }
    }

    /// The executables that ran (absolute ones) and the unit's working directory: where the
    /// service runs from, which a mount it cannot see would take away.
    pub fn executables_and_directory(&self) -> Vec<&'a str> {
        self.profile.executables.keys().map(String::as_str).filter(|e| e.starts_with('/')).chain(self.working_directory).collect()
    }

    pub fn used(&self, names: &[&'static str]) -> Vec<&'static str> {
        names.iter().copied().filter(|n| self.syscalls.contains(n)).collect()
    }

    /// Paths with any op matching `pred`, under `dir`.
    pub fn paths_under(&self, dir: &str, pred: impl Fn(PathOp) -> bool) -> Vec<&'a str> {
        self.profile.paths.iter().filter(|(p, u)| is_under(p, dir) && u.ops.iter().any(|o| pred(*o))).map(|(p, _)| p.as_str()).collect()
    }

    pub fn touched(&self, dir: &str) -> Vec<&'a str> {
        self.paths_under(dir, |_| true)
    }

    pub fn written(&self, dir: &str) -> Vec<&'a str> {
        self.paths_under(dir, PathOp::is_write)
    }

    pub fn acts(&self, prefix: &str) -> Vec<&'a str> {
        self.profile.acts.keys().filter(|k| k.starts_with(prefix)).map(String::as_str).collect()
    }

    pub fn families(&self) -> BTreeSet<&'a str> {
        self.profile.families.keys().map(String::as_str).collect()
    }

    /// Attempts of this kind (`family`, `namespace`) that were refused, as `AF_NETLINK EAFNOSUPPORT`.
    pub fn refused(&self, kind: &str) -> Vec<&'a str> {
        self.profile.refused.keys().filter_map(|k| k.strip_prefix(kind)?.strip_prefix(' ')).collect()
    }

    /// The evidence lines for a list directive: what of `kind` was refused when asked for, and
    /// what was used but lies outside the unit's own `directive=`.
    pub fn refusal_notes(&self, kind: &str, directive: &str, outside: &[&str]) -> Vec<String> {
        let refused = self.refused(kind);
        let mut notes = Vec::new();
        if !refused.is_empty() {
            notes.push(format!("refused when asked for, so not needed and not allowed: {}", some_of(refused.iter().copied(), 4)));
        }
        if !outside.is_empty() {
            notes.push(format!("outside the unit's own {directive}=, and kept so: {}", outside.join(", ")));
        }
        notes
    }
}

/// Drops our line where the unit is already as strict, and a directive the target does not know.
pub fn respect_unit(verdict: Verdict, target: &Target) -> Verdict {
    let Verdict::Set { lines, mut why } = verdict else { return verdict };
    let mut kept = Vec::new();
    for line in lines {
        let (directive, value) = (line.directive.as_str(), line.value.as_str());
        let newer = [directive.to_string(), format!("{directive}={value}")].into_iter().find(|item| !target.offers(item));
        if let Some(item) = newer {
            let since = introduced(&item).unwrap_or_default();
            let shown = if item.contains('=') { item } else { format!("{item}=") };
            why.push(format!("{shown} needs systemd {since}; the target is {}, so it is not written", target.systemd_version));
            continue;
        }
        let order = strictness(directive);
        // systemd 257 shows a switch that takes words twice: `PrivateTmp=yes` and, exactly,
        // `PrivateTmpEx=disconnected`.
        let current = target.unit.get(&format!("{directive}Ex")).or_else(|| target.unit.get(directive));
        if let (Some(current), Some(ours)) = (current, order.iter().position(|v| *v == value))
            && let Some(theirs) = order.iter().position(|v| v == current)
            && theirs >= ours
        {
            why.push(format!("the unit already sets {directive}={current}, as strict or stricter: kept"));
            continue;
        }
        kept.push(line);
    }
    Verdict::Set { lines: kept, why }
}
