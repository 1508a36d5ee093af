//! Signs that hardening degraded a service: a run under the drop-in compared with its
//! baseline profile. Causes (a call, a capability check or a write now refused) come first,
//! each with the effects that most likely followed from it (what went quiet, a new place read
//! or written, an error explained by it); documented fallbacks are only information.
//!
//! Like is compared with like: paths by the directories the drop-in works with (`places`),
//! ordinary misses by their rate per call made, capability checks per kernel call site.

mod places;
mod text;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::profile::{ItemUse, PathOp, Profile, names, path_text};
pub use text::{refusals, report};

use places::Places;

/// The unit settings that tell which directive refused a call (`systemctl show -p ...`).
pub const SETTINGS: &str = "SystemCallFilter,SystemCallErrorNumber,CapabilityBoundingSet,RestrictAddressFamilies,ProtectSystem,ReadWritePaths,\
     MemoryDenyWriteExecute";

/// One sign that hardening changed the service's behaviour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Causes: `error`, `capability`, `write-failed`. Effects: `quiet`, `new-read`,
    /// `new-write`, and an `error` that a cause explains. Information: `fallback`.
    pub kind: &'static str,
    /// The executables involved.
    pub process: Vec<String>,
    /// What was done: `mlockall EPERM`, `CAP_NET_RAW at raw_create`, `syscall mlockall`.
    pub operation: String,
    pub baseline: u64,
    pub hardened: u64,
    /// The directive most likely responsible, and why it is suspected.
    pub directive: String,
    /// What most likely followed from this cause: same executable, seen after it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Finding>,
    /// When the hardened run first showed it (a sample time; absent for what went quiet).
    #[serde(skip)]
    first: Option<String>,
}

impl Finding {
    fn new(kind: &'static str, use_: &ItemUse, operation: String, baseline: u64, hardened: u64, directive: String) -> Finding {
        Finding {
            kind,
            process: use_.executables.iter().cloned().collect(),
            operation,
            baseline,
            hardened,
            directive,
            effects: Vec::new(),
            first: use_.seen.as_ref().map(|s| s.first.clone()),
        }
    }

    /// Whether `effect` most likely followed from this cause: one of its executables, and not
    /// seen before it.
    fn explains(&self, effect: &Finding) -> bool {
        let same_process = self.process.iter().any(|p| effect.process.contains(p));
        let not_before = match (&self.first, &effect.first) {
            (Some(cause), Some(effect)) => effect >= cause,
            _ => true,
        };
        same_process && not_before
    }
}

/// What `check` found: causes with their effects, effects no cause explains, and
/// information that is no finding.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Findings {
    /// Causes first, in the order to look at them, each with its effects; then effects that
    /// no cause explains.
    pub findings: Vec<Finding>,
    /// Differences with a known harmless reason (a documented fallback), with that reason.
    pub info: Vec<Finding>,
}

impl Findings {
    /// Findings counted one by one, effects included; information is not counted.
    pub fn count(&self) -> usize {
        self.findings.iter().map(|f| 1 + f.effects.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }
}

/// A new error needs no threshold; a risen one must be this many times the baseline's rate.
const RISE_FACTOR: f64 = 2.0;
/// ... and this many more calls, so a handful of extra failures is not called a rise.
const RISE_MIN: u64 = 10;
/// "In as long a watch": the hardened run must have been watched this share of the baseline's
/// time before what it never did counts as gone quiet.
const QUIET_WATCH_SHARE: f64 = 0.9;
/// Errnos of ordinary life: a probe for a file that may not exist. A sandbox causes them too
/// (a hidden path), so they are judged by their rate per call made, over all calls, not call
/// by call: a daemon that probes a different file this run is not degraded.
const ORDINARY: [&str; 1] = ["ENOENT"];
/// Calls whose ENOENT says only that a path is not there: a probe.
const FILE_PROBES: [&str; 30] = [
    "open",
    "openat",
    "openat2",
    "creat",
    "stat",
    "lstat",
    "newfstatat",
    "fstatat64",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "truncate",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "statfs",
    "chdir",
    "mkdir",
    "mkdirat",
    "inotify_add_watch",
    "name_to_handle_at",
];

/// Every sign in `hardened` that the service behaves differently from `baseline`.
pub fn compare(baseline: &Profile, hardened: &Profile, settings: &BTreeMap<String, String>) -> Findings {
    let mut info = Vec::new();
    let mut causes = capabilities(baseline, hardened);
    let places = Places::of(baseline);
    let (write_failures, mut effects) = paths(baseline, hardened, &places);
    causes.extend(write_failures);
    for (error, filtered) in errors(baseline, hardened, settings, &mut info) {
        // A refused write's or a refused capability's errno is its effect, not a second
        // cause; a call the unit's filter refused is a cause of its own.
        let explained = !filtered && likely_causes(&error).iter().any(|kind| causes.iter().any(|c| c.kind == *kind && c.explains(&error)));
        if explained {
            effects.push(error);
        } else {
            causes.push(error);
        }
    }
    if hardened.recording.seconds >= baseline.recording.seconds * QUIET_WATCH_SHARE {
        effects.extend(gone_quiet(baseline, hardened));
    }
    Findings { findings: group(causes, effects), info }
}

/// The kinds of cause an effect most likely follows from, best first: a read-only path's
/// EROFS from a refused write, a fallback location from one too, an EPERM the directive
/// guess puts on a refused capability from that capability.
fn likely_causes(effect: &Finding) -> &'static [&'static str] {
    let (call, errno) = effect.operation.rsplit_once(' ').unwrap_or(("", ""));
    let on_capability = effect.directive.starts_with("CapabilityBoundingSet=");
    let on_path =
        FILE_PROBES.contains(&call) || matches!(call, "write" | "pwrite64" | "ftruncate" | "chmod" | "chown" | "fchmodat" | "fchownat");
    match (effect.kind, errno) {
        ("error", "EROFS") => &["write-failed"],
        ("error", "EPERM") if on_capability => &["capability"],
        ("error", "EACCES") if on_path => &["write-failed"],
        ("error", "EACCES") if on_capability => &["capability"],
        ("error", _) => &[],
        ("new-write" | "new-read", _) => &["write-failed"],
        _ => &[],
    }
}

/// Causes in the order to look at them (by kind, then first seen), each effect under the cause
/// that most likely explains it (`likely_causes`, else the first that explains it); effects no
/// cause explains follow on their own.
fn group(mut causes: Vec<Finding>, effects: Vec<Finding>) -> Vec<Finding> {
    let rank = |kind: &str| ["capability", "write-failed", "error"].iter().position(|k| *k == kind);
    causes.sort_by(|a, b| (rank(a.kind), &a.first).cmp(&(rank(b.kind), &b.first)));
    let mut alone = Vec::new();
    for effect in effects {
        let likely = likely_causes(&effect).iter().find_map(|kind| causes.iter().position(|c| c.kind == *kind && c.explains(&effect)));
        match likely.or_else(|| causes.iter().position(|c| c.explains(&effect))) {
            Some(i) => causes[i].effects.push(effect),
            None => alone.push(effect),
        }
    }
    causes.extend(alone);
    causes
}

/// Capability checks refused now at a kernel call site that always granted them in the
/// baseline. The same capability refused elsewhere (a check made in another context: after a
/// privilege drop, for another operation) is not the baseline's need refused.
fn capabilities(baseline: &Profile, hardened: &Profile) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (cap, now) in &hardened.capabilities {
        let Some(before) = baseline.capabilities.get(cap).filter(|b| b.needed()) else {
            continue;
        };
        let same_process =
            now.executables.is_empty() || before.executables.is_empty() || now.executables.iter().any(|e| before.executables.contains(e));
        if now.denied == 0 || !same_process {
            continue;
        }
        // Profiles without call sites are compared by capability alone; so is a site the
        // baseline never saw (another kernel names its functions otherwise): refused there
        // and granted nowhere now.
        let by_capability = vec![("", before.granted, now.denied)];
        let sites: Vec<(&str, u64, u64)> = if now.callers.is_empty() || before.callers.is_empty() {
            by_capability
        } else {
            let mut sites: Vec<(&str, u64, u64)> = now
                .callers
                .iter()
                .filter(|(_, c)| c.denied > 0 && !c.probe)
                // A site the baseline also refused at checks in more than one context (a
                // privileged parent and its unprivileged workers): a refusal there is normal,
                // unless nothing is granted there any more.
                .filter_map(|(site, c)| {
                    before
                        .callers
                        .get(site)
                        .filter(|b| b.granted > 0 && (b.denied == 0 || c.granted == 0))
                        .map(|b| (site.as_str(), b.granted, c.denied))
                })
                .collect();
            let unknown_site = now.callers.iter().any(|(site, c)| c.denied > 0 && !c.probe && !before.callers.contains_key(site));
            if sites.is_empty() && unknown_site && now.granted == 0 {
                sites = by_capability;
            }
            sites
        };
        for (site, granted, denied) in sites {
            let at = if site.is_empty() { String::new() } else { format!(" at {site}") };
            let use_ = ItemUse { count: denied, executables: now.executables.clone(), seen: now.seen.clone(), coverage: None };
            findings.push(Finding::new(
                "capability",
                &use_,
                format!("{cap}{at}"),
                granted,
                denied,
                format!("CapabilityBoundingSet= ({cap} was granted here in the baseline and is now refused)"),
            ));
        }
    }
    findings
}

/// Calls made per unit of work: every syscall the profile counted.
fn calls(profile: &Profile) -> f64 {
    profile.syscalls.values().flat_map(|m| m.values()).map(|u| u.count as f64).sum::<f64>().max(1.0)
}

/// All failures with `errno`, whatever the call.
fn with_errno(profile: &Profile, errno: &str) -> u64 {
    profile
        .errors
        .iter()
        .filter(|(name, _)| name.rsplit(' ').next() == Some(errno) && !name.contains("sigreturn "))
        .map(|(_, u)| u.count)
        .sum()
}

/// Whether `now` failures, against `before` in the baseline scaled by `scale` (calls made),
/// are more than the baseline's rate can explain.
fn risen(before: u64, now: u64, scale: f64) -> bool {
    now as f64 > before as f64 * scale * RISE_FACTOR && now >= before + RISE_MIN
}

/// Calls that now fail: new errors, and errors risen well past the baseline's rate per call.
/// Each with whether the unit's own filter refused the call.
fn errors(baseline: &Profile, hardened: &Profile, settings: &BTreeMap<String, String>, info: &mut Vec<Finding>) -> Vec<(Finding, bool)> {
    let mut findings = Vec::new();
    let scale = calls(hardened) / calls(baseline);
    for (name, now) in &hardened.errors {
        let (call, errno) = name.rsplit_once(' ').unwrap_or((name, ""));
        let bare_call = call.rsplit(':').next().unwrap_or(call);
        // Profiles before the recorder knew better took the result rt_sigreturn restores (the
        // interrupted call's) for its own.
        if bare_call.ends_with("sigreturn") {
            continue;
        }
        let before = baseline.errors.get(name).map_or(0, |u| u.count);
        let filtered = refused_by_filter(bare_call, settings.get("SystemCallFilter").map_or("", String::as_str));
        // A new miss is pooled only where missing is what the call asks about (a path probed);
        // a miss of connect or execve the baseline never had is a finding.
        let ordinary = ORDINARY.contains(&errno) && (before > 0 || FILE_PROBES.contains(&bare_call));
        if !filtered && ordinary && !risen(with_errno(baseline, errno), with_errno(hardened, errno), scale) {
            continue;
        }
        if before > 0 && !risen(before, now.count, scale) {
            continue;
        }
        let directive = error_directive(name, hardened, baseline, settings);
        let cloned = hardened
            .syscalls
            .values()
            .filter_map(|calls| calls.get("clone"))
            .any(|c| c.executables.iter().any(|e| now.executables.contains(e)));
        if name == "clone3 ENOSYS" && !filtered && cloned {
            info.push(Finding::new(
                "fallback",
                now,
                name.clone(),
                before,
                now.count,
                "systemd answers clone3 with ENOSYS wherever its seccomp filter must see clone's flags \
                 (RestrictNamespaces=, SystemCallFilter=), and glibc then uses clone, which this run did"
                    .into(),
            ));
            continue;
        }
        findings.push((Finding::new("error", now, name.clone(), before, now.count, directive), filtered));
    }
    findings
}

/// Writes refused where the baseline's succeeded or were never tried (causes), and new places
/// written or read (effects).
fn paths(baseline: &Profile, hardened: &Profile, places: &Places) -> (Vec<Finding>, Vec<Finding>) {
    let (mut causes, mut effects) = (Vec::new(), Vec::new());
    for (path, now) in &hardened.paths {
        let before = baseline.paths.get(path);
        let use_ = ItemUse { count: 1, executables: now.executables.clone(), seen: now.seen.clone(), coverage: None };
        let new_failures: Vec<&String> = now
            .failures
            .iter()
            .filter(|f| REFUSED_WRITE.iter().any(|e| f.ends_with(e)) && before.is_none_or(|b| !b.failures.contains(*f)))
            .collect();
        if !new_failures.is_empty() {
            let wrote_before = before.is_some_and(|b| b.ops.iter().any(|op| op.is_write()));
            causes.push(Finding::new(
                "write-failed",
                &use_,
                format!("{} {path}", new_failures.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")),
                u64::from(wrote_before),
                new_failures.len() as u64,
                write_directive(path, &new_failures, wrote_before),
            ));
        }
        let new_write = now.ops.iter().any(|op| op.is_write()) && !places.wrote_near(path);
        // A path written somewhere new is one finding, whatever else was done to it.
        if !new_write && now.ops.iter().any(|op| !op.is_write()) && !places.read_near(path) {
            effects.push(Finding::new(
                "new-read",
                &use_,
                format!("{} {path}", op_names(now.ops.iter().filter(|op| !op.is_write()))),
                0,
                1,
                "a fallback? The baseline never looked here; look for what failed before it".into(),
            ));
        }
        if new_write {
            effects.push(Finding::new(
                "new-write",
                &use_,
                format!("{} {path}", op_names(now.ops.iter())),
                0,
                1,
                "a fallback location? The baseline never wrote here; look for a write that now fails (EROFS, EACCES)".into(),
            ));
        }
    }
    (causes, effects)
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

/// What the baseline did that the hardened run never did: syscalls, families, namespaces and
/// acts.
fn gone_quiet(baseline: &Profile, hardened: &Profile) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut quiet = |kind: &str, name: &str, use_: &ItemUse, present: bool| {
        if !present {
            let mut finding = Finding::new(
                "quiet",
                use_,
                format!("{kind} {name}"),
                use_.count,
                0,
                "a feature that went quiet? Look for the error or refused capability before it".into(),
            );
            finding.first = None;
            out.push(finding);
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
    let write_exec = matches!(call, "mmap" | "mprotect" | "pkey_mprotect" | "shmat");
    match errno {
        // seccomp answers EPERM; the kernel's own MDWE (prctl, used by systemd 254+ on 6.3+)
        // answers EACCES.
        "EPERM" | "EACCES" if write_exec && setting("MemoryDenyWriteExecute") == "yes" => {
            format!("MemoryDenyWriteExecute= (the unit refuses mappings both writable and executable, and {call} asked for one)")
        }
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
        let found = compare(&base, &hard, &settings).findings;
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
        assert_eq!(compare(&base, &risen, &BTreeMap::new()).findings[0].directive.split(' ').next(), Some("PrivateTmp=,"));
    }

    #[test]
    fn a_capability_granted_before_and_refused_now_is_found() {
        let mut base = watched(10.0);
        base.capabilities.insert("CAP_NET_RAW".into(), CapabilityUse { granted: 1, ..Default::default() });
        let mut hard = watched(10.0);
        hard.capabilities
            .insert("CAP_NET_RAW".into(), CapabilityUse { denied: 1, executables: ["/d".into()].into(), ..Default::default() });
        hard.errors.insert("socket EPERM".into(), item(1, "/d"));
        let found = compare(&base, &hard, &BTreeMap::new()).findings;
        // The refused capability is the cause; socket's EPERM is how it showed.
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].kind, found[0].effects.len()), ("capability", 1), "{found:?}");
        let error = &found[0].effects[0];
        assert_eq!(error.operation, "socket EPERM");
        assert!(error.directive.contains("CapabilityBoundingSet= (CAP_NET_RAW now refused)"), "{}", error.directive);
    }

    #[test]
    fn what_went_quiet_is_judged_only_after_as_long_a_watch() {
        let mut base = watched(100.0);
        base.families.insert("AF_NETLINK".into(), item(1, "/d"));
        assert!(compare(&base, &watched(50.0), &BTreeMap::new()).is_empty());
        let found = compare(&base, &watched(100.0), &BTreeMap::new()).findings;
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
        let found = compare(&base, &hard, &BTreeMap::new()).findings;
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
        let found = compare(&base, &hard, &BTreeMap::new()).findings;
        assert_eq!(found.iter().map(|f| (f.kind, f.operation.as_str())).collect::<Vec<_>>(), [("new-read", "read /tmp/fallback.conf")]);
    }

    #[test]
    fn the_hardened_runs_refusals_are_listed_apart_from_the_findings() {
        let mut hard = watched(10.0);
        hard.syscalls.entry("x86_64".into()).or_default().insert("clock_settime".into(), item(2, "/d"));
        hard.errors.insert("clock_settime EPERM".into(), item(2, "/d"));
        hard.refused.insert("family AF_NETLINK EAFNOSUPPORT".into(), item(1, "/d"));
        assert_eq!(refusals(&hard), ["syscall clock_settime EPERM (2 time(s))", "family AF_NETLINK EAFNOSUPPORT (1 time(s))"]);
        let text = report("x.service", &watched(10.0), &hard, &Findings::default());
        assert!(text.contains("refused in the hardened run") && text.contains("    family AF_NETLINK EAFNOSUPPORT (1 time(s))"), "{text}");
    }

    fn calls(profile: &mut Profile, name: &str, count: u64) {
        profile.syscalls.entry("x86_64".into()).or_default().insert(name.into(), item(count, "/d"));
    }

    #[test]
    fn an_ordinary_miss_at_the_baselines_rate_is_not_a_finding_even_from_another_call() {
        let mut base = watched(10.0);
        calls(&mut base, "openat", 1000);
        base.errors.insert("openat ENOENT".into(), item(40, "/d"));
        let mut hard = watched(10.0);
        calls(&mut hard, "openat", 1000);
        hard.errors.insert("openat ENOENT".into(), item(38, "/d"));
        hard.errors.insert("truncate ENOENT".into(), item(1, "/d"));
        assert_eq!(compare(&base, &hard, &BTreeMap::new()), Findings::default());
        // Ten times as many misses per call made is a finding, call by call.
        hard.errors.insert("stat ENOENT".into(), item(400, "/d"));
        let found = compare(&base, &hard, &BTreeMap::new()).findings;
        assert_eq!(found.iter().map(|f| f.operation.as_str()).collect::<Vec<_>>(), ["stat ENOENT", "truncate ENOENT"]);
        // A miss the unit's filter answers is a finding at any rate.
        let mut filtered = watched(10.0);
        calls(&mut filtered, "openat", 1000);
        filtered.errors.insert("truncate ENOENT".into(), item(1, "/d"));
        let settings = [("SystemCallFilter".to_string(), "~truncate".to_string())].into();
        assert_eq!(compare(&base, &filtered, &settings).count(), 1);
        // A miss that is no probe (a socket hidden by PrivateTmp=) is a finding at any rate.
        let mut hidden = watched(10.0);
        calls(&mut hidden, "openat", 1000);
        hidden.errors.insert("connect ENOENT".into(), item(1, "/d"));
        assert_eq!(compare(&base, &hidden, &BTreeMap::new()).findings[0].operation, "connect ENOENT");
    }

    #[test]
    fn clone3_answered_with_enosys_then_clone_is_information_not_a_finding() {
        let mut base = watched(10.0);
        calls(&mut base, "clone3", 2);
        let mut hard = watched(10.0);
        calls(&mut hard, "clone3", 2);
        hard.errors.insert("clone3 ENOSYS".into(), item(2, "/usr/bin/ctl"));
        // Without the fallback to clone, it is a call that now fails.
        assert_eq!(compare(&base, &hard, &BTreeMap::new()).count(), 1);
        // Nor when another executable is the one that used clone.
        calls(&mut hard, "clone", 2);
        assert_eq!(compare(&base, &hard, &BTreeMap::new()).count(), 1);
        hard.syscalls.get_mut("x86_64").unwrap().get_mut("clone").unwrap().executables.insert("/usr/bin/ctl".into());
        let found = compare(&base, &hard, &BTreeMap::new());
        assert_eq!(found.count(), 0, "{found:?}");
        assert_eq!(found.info.len(), 1);
        assert!(found.info[0].directive.contains("glibc then uses clone"), "{:?}", found.info);
        let text = report("x.service", &base, &hard, &found);
        assert!(text.contains("no sign that hardening changed") && text.contains("information, not findings"), "{text}");
    }

    #[test]
    fn rt_sigreturn_errors_of_older_profiles_are_not_findings() {
        let mut hard = watched(10.0);
        hard.errors.insert("rt_sigreturn EPERM".into(), item(1, "/d"));
        assert!(compare(&watched(10.0), &hard, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_capability_is_compared_per_kernel_call_site() {
        use crate::profile::CallerUse;
        let site = |granted, denied| CallerUse { granted, denied, probe: false };
        let mut base = watched(10.0);
        base.capabilities.insert(
            "CAP_CHOWN".into(),
            CapabilityUse {
                granted: 1,
                executables: ["/d".into()].into(),
                callers: [("chown_common".to_string(), site(1, 0))].into(),
                ..Default::default()
            },
        );
        // Refused at another call site (another operation, in another context): not the
        // baseline's need refused.
        let mut hard = watched(10.0);
        hard.capabilities.insert(
            "CAP_CHOWN".into(),
            CapabilityUse {
                granted: 1,
                denied: 1,
                executables: ["/d".into()].into(),
                callers: [("chown_common".to_string(), site(1, 0)), ("setattr_prepare".to_string(), site(0, 1))].into(),
                ..Default::default()
            },
        );
        assert!(compare(&base, &hard, &BTreeMap::new()).is_empty());
        // Refused where it was granted: found, with the site.
        hard.capabilities.get_mut("CAP_CHOWN").unwrap().callers.insert("chown_common".into(), site(0, 1));
        let found = compare(&base, &hard, &BTreeMap::new()).findings;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].operation, "CAP_CHOWN at chown_common");

        // A site the baseline both granted and refused at: normal while something is still
        // granted there, a finding once nothing is.
        let mut both = base.clone();
        both.capabilities.get_mut("CAP_CHOWN").unwrap().callers.insert("chown_common".into(), site(5, 2));
        let mut still = watched(10.0);
        still.capabilities.insert(
            "CAP_CHOWN".into(),
            CapabilityUse {
                granted: 3,
                denied: 2,
                executables: ["/d".into()].into(),
                callers: [("chown_common".to_string(), site(3, 2))].into(),
                ..Default::default()
            },
        );
        assert!(compare(&both, &still, &BTreeMap::new()).is_empty());
        let mut lost = still.clone();
        lost.capabilities.get_mut("CAP_CHOWN").unwrap().callers.insert("chown_common".into(), site(0, 2));
        assert_eq!(compare(&both, &lost, &BTreeMap::new()).count(), 1);

        // Refused only at a site the baseline never saw (another kernel's name for it) and
        // granted nowhere: compared by capability.
        let mut elsewhere = watched(10.0);
        elsewhere.capabilities.insert(
            "CAP_CHOWN".into(),
            CapabilityUse {
                denied: 1,
                executables: ["/d".into()].into(),
                callers: [("chown_common_v2".to_string(), site(0, 1))].into(),
                ..Default::default()
            },
        );
        assert_eq!(compare(&base, &elsewhere, &BTreeMap::new()).findings[0].operation, "CAP_CHOWN");
    }

    #[test]
    fn the_cause_comes_first_with_what_followed_from_it_underneath() {
        let seen = |first: &str| Some(crate::profile::seen::Seen { first: first.into(), last: first.into(), phase: None });
        let mut base = watched(10.0);
        calls(&mut base, "mlockall", 1);
        base.paths.insert("/var/lib/d/state".into(), crate::profile::PathUse { ops: [PathOp::Create].into(), ..Default::default() });
        let mut hard = watched(10.0);
        hard.paths.insert(
            "/var/lib/d/state".into(),
            crate::profile::PathUse {
                failures: ["create EROFS".into()].into(),
                executables: ["/d".into()].into(),
                seen: seen("t1"),
                ..Default::default()
            },
        );
        hard.paths.insert(
            "/tmp/d-state".into(),
            crate::profile::PathUse {
                ops: [PathOp::Create].into(),
                executables: ["/d".into()].into(),
                seen: seen("t2"),
                ..Default::default()
            },
        );
        let mut erofs = item(1, "/d");
        erofs.seen = seen("t1");
        hard.errors.insert("openat EROFS".into(), erofs);
        let found = compare(&base, &hard, &BTreeMap::new());
        assert_eq!(found.findings.len(), 1, "{found:?}");
        let cause = &found.findings[0];
        assert_eq!(cause.operation, "create EROFS /var/lib/d/state");
        let effects: Vec<&str> = cause.effects.iter().map(|f| f.operation.as_str()).collect();
        assert_eq!(effects, ["create /tmp/d-state", "openat EROFS", "syscall mlockall"]);
        assert_eq!(found.count(), 4);
        let json = serde_json::to_value(&found).unwrap();
        assert_eq!(json["findings"][0]["effects"].as_array().unwrap().len(), 3);
        let text = report("x.service", &base, &hard, &found);
        let first = text.lines().find(|l| l.trim_start().starts_with('[')).unwrap();
        assert!(first.contains("[write-failed] create EROFS /var/lib/d/state"), "{text}");
    }

    #[test]
    fn each_effect_goes_under_the_cause_it_most_likely_follows_from() {
        let mut base = watched(10.0);
        base.capabilities
            .insert("CAP_NET_RAW".into(), CapabilityUse { granted: 1, executables: ["/d".into()].into(), ..Default::default() });
        base.paths.insert("/var/lib/d/state".into(), crate::profile::PathUse { ops: [PathOp::Create].into(), ..Default::default() });
        let mut hard = watched(10.0);
        hard.capabilities
            .insert("CAP_NET_RAW".into(), CapabilityUse { denied: 1, executables: ["/d".into()].into(), ..Default::default() });
        hard.paths.insert(
            "/var/lib/d/state".into(),
            crate::profile::PathUse { failures: ["create EROFS".into()].into(), executables: ["/d".into()].into(), ..Default::default() },
        );
        hard.paths.insert(
            "/tmp/d-state".into(),
            crate::profile::PathUse { ops: [PathOp::Create].into(), executables: ["/d".into()].into(), ..Default::default() },
        );
        for error in ["openat EROFS", "socket EPERM", "setpriority EPERM"] {
            hard.errors.insert(error.into(), item(1, "/d"));
        }
        let settings = [("SystemCallFilter".to_string(), "~setpriority".to_string())].into();
        let found = compare(&base, &hard, &settings).findings;
        let tree: Vec<(&str, Vec<&str>)> =
            found.iter().map(|c| (c.operation.as_str(), c.effects.iter().map(|e| e.operation.as_str()).collect())).collect();
        assert_eq!(
            tree,
            [
                ("CAP_NET_RAW", vec!["socket EPERM"]),
                ("create EROFS /var/lib/d/state", vec!["create /tmp/d-state", "openat EROFS"]),
                ("setpriority EPERM", vec![]),
            ]
        );
    }

    #[test]
    fn a_refused_writable_executable_mapping_names_memorydenywriteexecute() {
        let mut hard = watched(10.0);
        hard.errors.insert("mmap EPERM".into(), item(1, "/jit"));
        let settings: BTreeMap<String, String> = [("MemoryDenyWriteExecute".to_string(), "yes".to_string())].into();
        let found = compare(&watched(10.0), &hard, &settings).findings;
        assert!(found[0].directive.starts_with("MemoryDenyWriteExecute="), "{found:?}");
        // The kernel's own MDWE (systemd 254+ on 6.3+) answers EACCES.
        let mut kernel_mdwe = watched(10.0);
        kernel_mdwe.errors.insert("mmap EACCES".into(), item(1, "/jit"));
        assert!(compare(&watched(10.0), &kernel_mdwe, &settings).findings[0].directive.starts_with("MemoryDenyWriteExecute="));
        // A capability refused in the same executable does not absorb it: it is a cause.
        let mut base = watched(10.0);
        base.capabilities
            .insert("CAP_NET_RAW".into(), CapabilityUse { granted: 1, executables: ["/jit".into()].into(), ..Default::default() });
        hard.capabilities
            .insert("CAP_NET_RAW".into(), CapabilityUse { denied: 1, executables: ["/jit".into()].into(), ..Default::default() });
        let found = compare(&base, &hard, &settings).findings;
        assert_eq!(found.iter().map(|f| f.operation.as_str()).collect::<Vec<_>>(), ["CAP_NET_RAW", "mmap EPERM"], "{found:?}");
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
