//! Signs that hardening degraded a service: a run under the drop-in compared with its
//! baseline profile: calls that now fail, capability checks that now fail, things that went
//! quiet, and new places it writes, each with the directive most likely responsible.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use serde::Serialize;

use crate::profile::{
    ItemUse, PathOp, Profile, names,
    path_text::{self, is_proc_pid},
};

/// The unit settings that tell which directive refused a call (`systemctl show -p ...`).
pub const SETTINGS: &str =
    "SystemCallFilter,SystemCallErrorNumber,CapabilityBoundingSet,RestrictAddressFamilies,ProtectSystem,ReadWritePaths";

/// One sign that hardening changed the service's behaviour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// `error`, `capability`, `write-failed`, `new-write`, `new-read` or `quiet`.
    pub kind: &'static str,
    /// The executables involved.
    pub process: Vec<String>,
    /// What was done: `mlockall EPERM`, `CAP_NET_RAW`, `syscall mlockall`, `/tmp/x`.
    pub operation: String,
    pub baseline: u64,
    pub hardened: u64,
    /// The directive most likely responsible, and why it is suspected.
    pub directive: String,
}

/// A new error needs no threshold; a risen one must be this many times the baseline's rate.
const RISE_FACTOR: f64 = 2.0;
/// ... and this many more calls, so a handful of extra failures is not called a rise.
const RISE_MIN: u64 = 10;
/// "In as long a watch": the hardened run must have been watched this share of the baseline's
/// time before what it never did counts as gone quiet.
const QUIET_WATCH_SHARE: f64 = 0.9;

/// Every sign in `hardened` that the service behaves differently from `baseline`.
pub fn compare(baseline: &Profile, hardened: &Profile, settings: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let scale = hardened.recording.seconds.max(1.0) / baseline.recording.seconds.max(1.0);
    for (name, now) in &hardened.errors {
        let before = baseline.errors.get(name).map_or(0, |u| u.count);
        let expected = before as f64 * scale;
        let risen = before > 0 && now.count as f64 > expected * RISE_FACTOR && now.count >= before + RISE_MIN;
        if before == 0 || risen {
            findings.push(Finding {
                kind: "error",
                process: now.executables.iter().cloned().collect(),
                operation: name.clone(),
                baseline: before,
                hardened: now.count,
                directive: error_directive(name, hardened, baseline, settings),
            });
        }
    }
    for (cap, now) in &hardened.capabilities {
        if now.denied > 0 && baseline.capabilities.get(cap).is_some_and(|b| b.needed()) {
            findings.push(Finding {
                kind: "capability",
                process: now.executables.iter().cloned().collect(),
                operation: cap.clone(),
                baseline: baseline.capabilities[cap].granted,
                hardened: now.denied,
                directive: format!("CapabilityBoundingSet= ({cap} was granted in the baseline and is now refused)"),
            });
        }
    }
    if hardened.recording.seconds >= baseline.recording.seconds * QUIET_WATCH_SHARE {
        findings.extend(gone_quiet(baseline, hardened));
    }
    findings.extend(paths(baseline, hardened));
    // Causes first (what failed), then their likely effects (fallbacks, silence).
    let rank = |kind: &str| ["error", "capability", "write-failed", "new-write", "new-read", "quiet"].iter().position(|k| *k == kind);
    findings.sort_by_key(|f| rank(f.kind));
    findings
}

/// Writes refused where the baseline's succeeded or were never tried, and new places written
/// or read.
fn paths(baseline: &Profile, hardened: &Profile) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (path, now) in &hardened.paths {
        let before = baseline.paths.get(path);
        let new_failures: Vec<&String> = now
            .failures
            .iter()
            .filter(|f| REFUSED_WRITE.iter().any(|e| f.ends_with(e)) && before.is_none_or(|b| !b.failures.contains(*f)))
            .collect();
        if !new_failures.is_empty() {
            let wrote_before = before.is_some_and(|b| b.ops.iter().any(|op| op.is_write()));
            findings.push(Finding {
                kind: "write-failed",
                process: now.executables.iter().cloned().collect(),
                operation: format!("{} {path}", new_failures.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")),
                baseline: u64::from(wrote_before),
                hardened: new_failures.len() as u64,
                directive: write_directive(path, &new_failures, wrote_before),
            });
        }
        let read = now.ops.iter().any(|op| !op.is_write());
        if read && before.is_none() && !is_proc_pid(path) {
            findings.push(Finding {
                kind: "new-read",
                process: now.executables.iter().cloned().collect(),
                operation: format!("{} {path}", op_names(now.ops.iter().filter(|op| !op.is_write()))),
                baseline: 0,
                hardened: 1,
                directive: "a fallback? The baseline never looked here; look for what failed before it".into(),
            });
        }
        let written = now.ops.iter().any(|op| op.is_write());
        if written && before.is_none() {
            findings.push(Finding {
                kind: "new-write",
                process: now.executables.iter().cloned().collect(),
                operation: format!("{} {path}", op_names(now.ops.iter())),
                baseline: 0,
                hardened: 1,
                directive: "a fallback location? The baseline never wrote here; look for a write that now fails (EROFS, EACCES)".into(),
            });
        }
    }
    findings
}

/// `create,write`.
fn op_names<'a>(ops: impl Iterator<Item = &'a PathOp>) -> String {
    ops.map(|op| op.name()).collect::<Vec<_>>().join(",")
}

/// The errnos a sandbox refuses a write with.
const REFUSED_WRITE: [&str; 3] = [" EROFS", " EACCES", " EPERM"];

/// The directive behind writes to `path` that now fail.
fn write_directive(path: &str, failures: &[&String], wrote_before: bool) -> String {
    // A folded `dir/*` stands for names inside dir; a plain path's directory is its parent.
    let parent = path.strip_suffix("/*").unwrap_or_else(|| path_text::parent(path));
    let before = if wrote_before { "the baseline wrote here" } else { "the baseline did not try" };
    if failures.iter().any(|f| f.ends_with(" EROFS")) {
        format!("ProtectSystem= or ReadOnlyPaths= made it read-only ({before}); ReadWritePaths={parent} would allow it")
    } else {
        format!("ProtectHome=, InaccessiblePaths=, ReadOnlyPaths= or a dropped capability (CAP_DAC_OVERRIDE, CAP_FOWNER) ({before})")
    }
}

/// What the baseline did that the hardened run never did: syscalls, families, sockets,
/// namespaces, acts and devices.
fn gone_quiet(baseline: &Profile, hardened: &Profile) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut quiet = |kind: &str, name: &str, use_: &ItemUse, present: bool| {
        if !present {
            out.push(Finding {
                kind: "quiet",
                process: use_.executables.iter().cloned().collect(),
                operation: format!("{kind} {name}"),
                baseline: use_.count,
                hardened: 0,
                directive: "a feature that went quiet? Look for the error or refused capability before it".into(),
            });
        }
    };
    let hardened_calls = hardened.syscall_names();
    for calls in baseline.syscalls.values() {
        for (name, use_) in calls {
            quiet("syscall", name, use_, hardened_calls.contains(name.as_str()));
        }
    }
    for (kind, before, now) in [
        ("family", &baseline.families, &hardened.families),
        ("namespace", &baseline.namespaces, &hardened.namespaces),
        ("act", &baseline.acts, &hardened.acts),
    ] {
        for (name, use_) in before {
            quiet(kind, name, use_, now.contains_key(name));
        }
    }
    out
}

/// The directive most likely behind a new `syscall ERRNO`.
fn error_directive(name: &str, hardened: &Profile, baseline: &Profile, settings: &BTreeMap<String, String>) -> String {
    let (call, errno) = name.rsplit_once(' ').unwrap_or((name, ""));
    let call = call.rsplit(':').next().unwrap_or(call);
    let setting = |key: &str| settings.get(key).map(String::as_str).unwrap_or("");
    if refused_by_filter(call, setting("SystemCallFilter")) {
        // systemctl show gives the errno as a number.
        let number = match setting("SystemCallErrorNumber") {
            "" => String::new(),
            n => match n.parse() {
                Ok(number) => format!(", SystemCallErrorNumber={}", names::errno_name(number)),
                Err(_) => format!(", SystemCallErrorNumber={n}"),
            },
        };
        return format!("SystemCallFilter= ({call} is not allowed by the unit's filter{number})");
    }
    let newly_refused: BTreeSet<&str> = hardened
        .capabilities
        .iter()
        .filter(|(cap, u)| u.denied > 0 && baseline.capabilities.get(*cap).is_none_or(|b| b.denied == 0))
        .map(|(cap, _)| cap.as_str())
        .collect();
    match errno {
        "EPERM" | "EACCES" if !newly_refused.is_empty() => {
            format!("CapabilityBoundingSet= ({} now refused)", newly_refused.into_iter().collect::<Vec<_>>().join(", "))
        }
        "SIGSYS" => "SystemCallFilter= (a seccomp filter killed the caller with SIGSYS)".into(),
        "EROFS" => "ProtectSystem= or ReadOnlyPaths= (a write to a read-only path: is its ReadWritePaths= line missing?)".into(),
        "EAFNOSUPPORT" => format!("RestrictAddressFamilies= (the unit allows {})", or_none(setting("RestrictAddressFamilies"))),
        "EACCES" => "ProtectHome=, InaccessiblePaths= or ReadWritePaths= (a path made inaccessible or read-only)".into(),
        "ENOENT" => "PrivateTmp=, PrivateDevices=, ProtectHome= or TemporaryFileSystem= (a path hidden from the service)".into(),
        "ENOSYS" => "SystemCallFilter= with SystemCallErrorNumber=ENOSYS, or SystemCallArchitectures=".into(),
        _ => "NoNewPrivileges=, CapabilityBoundingSet= or a seccomp-based directive (RestrictNamespaces=, LockPersonality=, \
              RestrictRealtime=, MemoryDenyWriteExecute=, ...)"
            .into(),
    }
}

fn or_none(value: &str) -> &str {
    if value.is_empty() { "every family" } else { value }
}

/// Whether `systemctl show`'s SystemCallFilter= value refuses `call`: an allow list that
/// does not name it, or a deny list (`~...`) that does.
fn refused_by_filter(call: &str, filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    match filter.strip_prefix('~') {
        Some(denied) => denied.split_whitespace().any(|c| c == call),
        None => !filter.split_whitespace().any(|c| c == call),
    }
}

/// The findings for people: a summary line, then each finding with its likely directive.
pub fn report(unit: &str, baseline: &Profile, hardened: &Profile, findings: &[Finding]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{unit}: hardened run watched {:.0} s, baseline {:.0} s: {}",
        hardened.recording.seconds,
        baseline.recording.seconds,
        match findings.len() {
            0 => "no sign that hardening changed what it does".to_string(),
            n => format!("{n} finding(s)"),
        }
    );
    if hardened.recording.seconds < baseline.recording.seconds * QUIET_WATCH_SHARE {
        out.push_str("  (watched for less time than the baseline: what went quiet is not judged)\n");
    }
    for f in findings {
        let _ = writeln!(
            out,
            "\n  [{}] {} by {}\n      baseline {} time(s), hardened {} time(s)\n      likely: {}",
            f.kind,
            f.operation,
            if f.process.is_empty() { "?".to_string() } else { f.process.join(", ") },
            f.baseline,
            f.hardened,
            f.directive
        );
    }
    let refused = refusals(hardened);
    if !refused.is_empty() {
        out.push_str("\n  refused in the hardened run (the sandbox at work; a finding above says where that hurt):\n");
        for line in refused {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// The hardened run's refused attempts, one line each: refused syscalls and the families and
/// namespaces asked for and not given.
pub fn refusals(profile: &Profile) -> Vec<String> {
    let syscalls = profile.refused_syscalls().into_iter().map(|((abi, name), r)| {
        let abi = if abi == names::NATIVE_ABI { String::new() } else { format!("{abi}:") };
        format!("syscall {abi}{name} {} ({} time(s))", r.errnos.join(","), r.count)
    });
    syscalls.chain(profile.refused.iter().map(|(what, u)| format!("{what} ({} time(s))", u.count))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::CapabilityUse;

    fn item(count: u64, exe: &str) -> ItemUse {
        ItemUse { count, executables: [exe.to_string()].into(), seen: None, coverage: None }
    }

    fn watched(seconds: f64) -> Profile {
        let mut p = Profile::default();
        p.recording.seconds = seconds;
        p
    }

    #[test]
    fn a_new_error_names_the_process_the_call_and_the_filter() {
        let mut base = watched(60.0);
        base.syscalls.entry("x86_64".into()).or_default().insert("mlockall".into(), item(1, "/usr/bin/d"));
        let mut hard = watched(60.0);
        hard.syscalls.entry("x86_64".into()).or_default().insert("mlockall".into(), item(1, "/usr/bin/d"));
        hard.errors.insert("mlockall EPERM".into(), item(1, "/usr/bin/d"));
        let settings =
            [("SystemCallFilter".to_string(), "read write".to_string()), ("SystemCallErrorNumber".into(), "EPERM".into())].into();
        let found = compare(&base, &hard, &settings);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].kind, found[0].operation.as_str(), found[0].process.as_slice()),
            ("error", "mlockall EPERM", &["/usr/bin/d".to_string()][..])
        );
        assert!(found[0].directive.starts_with("SystemCallFilter="), "{}", found[0].directive);
    }

    #[test]
    fn an_error_as_common_as_in_the_baseline_is_not_a_finding_and_a_rise_is() {
        let mut base = watched(100.0);
        base.errors.insert("openat ENOENT".into(), item(50, "/d"));
        let mut same = watched(100.0);
        same.errors.insert("openat ENOENT".into(), item(60, "/d"));
        assert!(compare(&base, &same, &BTreeMap::new()).is_empty());
        let mut risen = watched(100.0);
        risen.errors.insert("openat ENOENT".into(), item(500, "/d"));
        assert_eq!(compare(&base, &risen, &BTreeMap::new())[0].directive.split(' ').next(), Some("PrivateTmp=,"));
    }

    #[test]
    fn a_capability_granted_before_and_refused_now_is_found() {
        let mut base = watched(10.0);
        base.capabilities.insert("CAP_NET_RAW".into(), CapabilityUse { granted: 1, ..Default::default() });
        let mut hard = watched(10.0);
        hard.capabilities.insert("CAP_NET_RAW".into(), CapabilityUse { denied: 1, ..Default::default() });
        hard.errors.insert("socket EPERM".into(), item(1, "/d"));
        let found = compare(&base, &hard, &BTreeMap::new());
        let kinds: Vec<&str> = found.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["error", "capability"]);
        assert!(found[0].directive.contains("CapabilityBoundingSet= (CAP_NET_RAW now refused)"), "{}", found[0].directive);
    }

    #[test]
    fn what_went_quiet_is_judged_only_after_as_long_a_watch() {
        let mut base = watched(100.0);
        base.families.insert("AF_NETLINK".into(), item(1, "/d"));
        assert!(compare(&base, &watched(50.0), &BTreeMap::new()).is_empty());
        let found = compare(&base, &watched(100.0), &BTreeMap::new());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].operation, "family AF_NETLINK");
    }

    #[test]
    fn a_write_refused_where_the_baseline_wrote_names_the_path_and_readwritepaths() {
        let mut base = watched(10.0);
        base.paths.insert("/var/lib/d/state".into(), crate::profile::PathUse { ops: [PathOp::Create].into(), ..Default::default() });
        let mut hard = watched(10.0);
        hard.paths.insert(
            "/var/lib/d/state".into(),
            crate::profile::PathUse { failures: ["create EROFS".to_string()].into(), ..Default::default() },
        );
        let found = compare(&base, &hard, &BTreeMap::new());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].operation, "create EROFS /var/lib/d/state");
        assert!(found[0].directive.contains("ReadWritePaths=/var/lib/d would allow it"), "{}", found[0].directive);
        // A folded directory's failures point at the directory itself.
        let folded = ["create EROFS".to_string()];
        assert!(write_directive("/var/spool/d/*", &folded.iter().collect::<Vec<_>>(), false).contains("ReadWritePaths=/var/spool/d would"));
    }

    #[test]
    fn a_new_place_read_is_found_but_another_pid_in_proc_is_not() {
        let read = || crate::profile::PathUse { ops: [PathOp::Read].into(), ..Default::default() };
        let mut base = watched(10.0);
        base.paths.insert("/proc/100".into(), read());
        let mut hard = watched(10.0);
        hard.paths.insert("/proc/200".into(), read());
        hard.paths.insert("/tmp/fallback.conf".into(), read());
        let found = compare(&base, &hard, &BTreeMap::new());
        assert_eq!(found.iter().map(|f| (f.kind, f.operation.as_str())).collect::<Vec<_>>(), [("new-read", "read /tmp/fallback.conf")]);
    }

    #[test]
    fn the_hardened_runs_refusals_are_listed_apart_from_the_findings() {
        let mut hard = watched(10.0);
        hard.syscalls.entry("x86_64".into()).or_default().insert("clock_settime".into(), item(2, "/d"));
        hard.errors.insert("clock_settime EPERM".into(), item(2, "/d"));
        hard.refused.insert("family AF_NETLINK EAFNOSUPPORT".into(), item(1, "/d"));
        assert_eq!(refusals(&hard), ["syscall clock_settime EPERM (2 time(s))", "family AF_NETLINK EAFNOSUPPORT (1 time(s))"]);
        let text = report("x.service", &watched(10.0), &hard, &[]);
        assert!(text.contains("refused in the hardened run") && text.contains("    family AF_NETLINK EAFNOSUPPORT (1 time(s))"), "{text}");
    }

    #[test]
    fn filters_are_read_as_systemctl_show_prints_them() {
        assert!(refused_by_filter("mlockall", "read write"));
        assert!(!refused_by_filter("read", "read write"));
        assert!(refused_by_filter("mlockall", "~mlockall mlock"));
        assert!(!refused_by_filter("read", "~mlockall"));
        assert!(!refused_by_filter("anything", ""));
    }
}
