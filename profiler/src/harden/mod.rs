//! From a profile to a least-privilege `[Service]` drop-in: a pure function of the profile,
//! the target (the unit's settings, its systemd) and the options, with no I/O. It returns a
//! typed `DropIn`; `Display` writes the unit file.

mod devices;
pub mod dropin;
mod filesystem;
mod kernel;
mod network;
mod process;
pub mod quoting;
pub mod syscall_filter;
pub mod syscall_groups;
pub mod target;
pub mod unit;
mod verdict;

use std::collections::BTreeSet;

pub use dropin::{Block, DropIn, Entry, LeftOpen, Setting};
pub use target::Target;

use crate::{
    output::{duration, thousands},
    profile::{CapabilityUse, Profile, names},
};
use quoting::{comment_safe, some_of};
use verdict::{Evidence, Verdict};

/// The file name `apply` installs a drop-in as: it sorts before `override.conf` (what
/// `systemctl edit` writes), so an administrator's own settings there are read later and win.
pub const DROPIN_NAME: &str = "50-profiler.conf";

/// What a syscall outside the allow-list does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyscallAction {
    /// Fail with this errno name (`EPERM`): the service lives on, and `profiler check` sees it.
    Errno(String),
    /// systemd's default: kill the process with SIGSYS.
    Kill,
}

/// The user's choices about how the drop-in is written.
#[derive(Debug, Clone)]
pub struct Options {
    pub syscall_action: SyscallAction,
    /// How the profile is named in the header (its file name).
    pub profile_name: String,
    /// Pin IPAddressAllow= to the peers the service connected to (`--pin-peers`).
    pub pin_peers: bool,
}

impl Options {
    /// Options for the profile read from `path`: the header names its file.
    pub fn new(path: &std::path::Path, syscall_action: SyscallAction, pin_peers: bool) -> Self {
        let profile_name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Self { syscall_action, profile_name, pin_peers }
    }
}

/// The drop-in `profile` supports on `target`. Where the unit's settings are known, it is
/// laid over them and every directive whose lines would allow anything the unit did not is
/// taken out again (`never_loosen`): the unit keeps its own setting there.
pub fn render(profile: &Profile, target: &Target, options: &Options) -> DropIn {
    let mut dropin = compose(profile, target, options);
    if let Some(unit) = target.unit_security() {
        never_loosen(&mut dropin, &unit, &target.groups);
    }
    dropin
}

/// Takes out the lines of every directive that, laid over `unit`, would allow more than the
/// unit did. `compose` already keeps within the unit's settings; this is the check that a
/// mistake there cannot reach a unit.
fn never_loosen(dropin: &mut DropIn, unit: &unit::UnitSecurity, groups: &syscall_groups::SyscallGroups) {
    let every_syscall = filterable_syscalls();
    let mut taken_out: Vec<&'static str> = Vec::new();
    // Each directive is taken out at most once, so this ends.
    while let Some(directive) =
        unit.loosened_by(&unit.with_dropin(dropin, groups), &every_syscall).into_iter().find(|d| !taken_out.contains(d))
    {
        taken_out.push(directive);
        log::error!("the drop-in would loosen the unit's {directive}=; leaving the unit's own setting (a profiler bug: please report)");
        // Lines that act together go together: an IP or device policy is one decision.
        let family: &[&str] = match directive {
            "IPAddressAllow" | "IPAddressDeny" => &["IPAddressAllow", "IPAddressDeny"],
            "DeviceAllow" | "DevicePolicy" => &["DeviceAllow", "DevicePolicy", "PrivateDevices"],
            // Without our filter, our errno would turn the unit's own kill into a failure.
            "SystemCallFilter" => &["SystemCallFilter", "SystemCallErrorNumber"],
            other => &[other][..],
        };
        for block in &mut dropin.blocks {
            block.entries.retain(|e| !matches!(e, Entry::Setting(s) if family.contains(&s.directive.as_str())));
        }
        dropin.left_open.push(LeftOpen {
            directive: directive.to_string(),
            why: "these lines would have allowed what the unit's own setting refuses: the unit's is kept".into(),
        });
    }
}

/// Every syscall name a filter could name: x86-64's and i386's (the names of both ABIs are
/// judged, as a unit may leave i386 allowed).
fn filterable_syscalls() -> BTreeSet<String> {
    let native = syscalls::x86_64::Sysno::iter().map(|s| s.name());
    native.chain(syscalls::x86::Sysno::iter().map(|s| s.name())).map(str::to_string).collect()
}

/// The drop-in, each directive within what the unit's known settings allow.
fn compose(profile: &Profile, target: &Target, options: &Options) -> DropIn {
    let unit = target.unit_security();
    let mut dropin = DropIn { header: header(profile, target, options), ..Default::default() };
    dropin.blocks.push(architectures(profile, unit.as_ref()));
    // fexit on the syscall tables does not see a number past the table's end: an ENOSYS
    // probe for a call newer than the kernel, which the filter must keep.
    if profile.recording.hooks.get(crate::profile::SYSCALL_HOOKS).is_some_and(|hooks| hooks.contains("fexit")) {
        let why = "syscalls were recorded through fexit on the kernel's syscall tables (PROFILER_SYSCALL_HOOK=fexit), \
                   which does not see a call numbered past the end of the kernel's table; record with the default hook";
        dropin.left_open.push(LeftOpen { directive: "SystemCallFilter".into(), why: why.into() });
    } else {
        dropin.blocks.push(syscall_filter(profile, target, options));
    }
    // Without a hook for capability checks nothing says what the service needed.
    if profile.recording.capability_hooks().contains("none") {
        let why = "no hook for capability checks was there while recording (the kernel had no cap_capable tracepoint, fexit or kprobe)";
        dropin.left_open.push(LeftOpen { directive: "CapabilityBoundingSet".into(), why: why.into() });
    } else {
        dropin.blocks.push(capabilities(profile, unit.as_ref()));
    }
    for verdict in decide(profile, target, options) {
        match verdict {
            Verdict::Set { lines, why } => {
                let mut block = Block::default();
                block.entries.extend(why.into_iter().map(Entry::Comment));
                block.entries.extend(lines.into_iter().map(Entry::Setting));
                dropin.blocks.push(block);
            }
            Verdict::Open { directive, why } => dropin.left_open.push(LeftOpen { directive, why }),
        }
    }
    if profile.recording.capabilities_unseen().is_none() && !profile.capabilities.values().any(CapabilityUse::needed) {
        dropin.notes.push("The service never needed a capability: consider User= (or DynamicUser=yes) so it".into());
        dropin.notes.push("does not run as root at all. Not set here: file ownership would change.".into());
    }
    dropin
}

/// Every sandbox directive beyond syscalls and capabilities, in the order they are written;
/// each set with the observations behind it or left open with the one that prevented it.
fn decide(profile: &Profile, target: &Target, options: &Options) -> Vec<Verdict> {
    let ev = Evidence::new(profile, target);
    let (tmp, private_tmp) = filesystem::private_tmp(&ev, target);
    let mut verdicts = vec![filesystem::protect_system(&ev, target, private_tmp), tmp, filesystem::protect_home(&ev)];
    verdicts.extend(network::network(&ev, target, options.pin_peers));
    verdicts.extend(devices::devices(&ev, target));
    verdicts.extend([
        process::namespaces(&ev, target),
        process::memory_deny_write_execute(&ev),
        process::no_new_privileges(&ev),
        process::restrict_suid_sgid(&ev),
        process::lock_personality(&ev),
        process::restrict_realtime(&ev),
        kernel::protect_clock(&ev),
        kernel::protect_hostname(&ev, target),
        kernel::protect_kernel_modules(&ev),
        kernel::protect_kernel_logs(&ev),
        kernel::protect_kernel_tunables(&ev),
        kernel::protect_control_groups(&ev, target),
    ]);
    verdicts.extend(kernel::proc_view(&ev));
    verdicts.push(kernel::keyring_mode(&ev));
    verdicts.extend(process::ipc(&ev));
    verdicts.extend([process::private_mounts(&ev), filesystem::umask(&ev, target)]);
    verdicts.extend(process::unobserved(target));
    // Blind spots, and the directives each leaves undecided.
    let paths: &[&[&str]] = &[&DECIDED_FROM_PATHS_AND_FAMILIES];
    let arguments: &[&[&str]] = &[&DECIDED_FROM_PATHS_AND_FAMILIES, &DECIDED_FROM_OTHER_ARGUMENTS];
    let blind: Vec<(&[&[&str]], String)> =
        [io_uring_blind_spot(&ev).map(|why| (paths, why)), compat_blind_spot(profile).map(|why| (arguments, why))]
            .into_iter()
            .flatten()
            .collect();
    verdicts
        .into_iter()
        .map(|v| blind.iter().fold(v, |v, (directives, why)| blinded(v, directives, why)))
        .map(|v| verdict::respect_unit(v, target))
        .collect()
}

/// Directives decided from paths and socket families: io_uring submits file and socket
/// operations the syscall hooks never see, so a service that used it is not judged on them.
const DECIDED_FROM_PATHS_AND_FAMILIES: [&str; 14] = [
    "ProtectSystem",
    "PrivateTmp",
    "ProtectHome",
    "UMask",
    "ProtectKernelTunables",
    "ProtectControlGroups",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectProc",
    "ProcSubset",
    "RestrictAddressFamilies",
    "PrivateNetwork",
    "IPAddressDeny",
    "PrivateDevices",
];

/// Directives decided from the other decoded syscall arguments: namespace flags, memory
/// protections, modes, personas and scheduling policies.
const DECIDED_FROM_OTHER_ARGUMENTS: [&str; 5] =
    ["RestrictNamespaces", "MemoryDenyWriteExecute", "RestrictSUIDSGID", "LockPersonality", "RestrictRealtime"];

/// Why the argument evidence is incomplete, if i386 or x32 syscalls were made: their
/// arguments are not decoded.
fn compat_blind_spot(profile: &Profile) -> Option<String> {
    let compat = profile.compat_abis();
    (!compat.is_empty()).then(|| format!("syscalls were made through the {} ABI, whose arguments are not decoded", compat.join(", ")))
}

/// Why the path and family evidence is incomplete, if io_uring was set up.
fn io_uring_blind_spot(ev: &Evidence) -> Option<String> {
    // A ring set up before recording began, or handed over, shows only in the other two.
    let (name, use_) = ["io_uring_setup", "io_uring_enter", "io_uring_register"]
        .into_iter()
        .filter(|name| ev.syscalls.contains(name)) // a call refused every time made no ring
        .find_map(|name| Some((name, ev.profile.syscalls.values().find_map(|calls| calls.get(name))?)))?;
    Some(format!(
        "io_uring was used ({name} {} time(s), by {}): what it submits never passes the syscall hooks, so paths and families are not all known",
        use_.count,
        some_of(use_.executables.iter().map(String::as_str), 2)
    ))
}

/// A verdict on one of `directives`, left open for `why`.
fn blinded(verdict: Verdict, directives: &[&[&str]], why: &str) -> Verdict {
    let directive = match &verdict {
        Verdict::Set { lines, .. } => lines.first().map(|l| l.directive.clone()),
        Verdict::Open { .. } => None,
    };
    match directive {
        Some(d) if directives.iter().any(|list| list.contains(&d.as_str())) => Verdict::Open { directive: d, why: why.to_string() },
        _ => verdict,
    }
}

fn header(profile: &Profile, target: &Target, options: &Options) -> Vec<String> {
    let calls: u64 = profile.syscalls.values().flat_map(|m| m.values()).map(|u| u.count).sum();
    let mut out = vec![
        format!("Least-privilege drop-in for {}", comment_safe(&profile.target_label())),
        format!("generated by profiler {} from {}.", env!("CARGO_PKG_VERSION"), comment_safe(&options.profile_name)),
        format!(
            "Evidence: {} calls of {} syscalls by {} executable(s), watched for {} on {} (kernel {}),",
            thousands(calls),
            profile.syscall_names().len(),
            profile.executables.len(),
            duration(profile.recording.seconds),
            comment_safe(&profile.host.hostname),
            comment_safe(&profile.host.kernel),
        ),
        format!("  {} to {}.", comment_safe(&profile.recording.started), comment_safe(&profile.recording.ended)),
    ];
    if profile.losses.is_empty() {
        out.push("Nothing was lost while recording.".into());
    } else {
        let lost: Vec<String> = profile.losses.iter().map(|(k, v)| format!("{k} {}", thousands(*v))).collect();
        out.push(format!("WARNING: records were lost while recording ({}): this drop-in may be too tight.", lost.join(", ")));
    }
    out.push(format!("Syscall groups as defined by the {}.", comment_safe(&target.groups.source)));
    if target.unit.is_empty() {
        out.push("NOT CHECKED against the unit's own settings (none were given): a line here may allow".into());
        out.push("what the unit refuses today. `profiler apply` reads them; `generate --unit-settings`".into());
        out.push("takes `systemctl show UNIT` output.".into());
    } else {
        out.push("Laid over the unit's own settings, every directive here allows only what they allowed.".into());
    }
    if let Some(unit) = &profile.target.unit {
        let unit = comment_safe(unit);
        out.push(format!("Install as /etc/systemd/system/{unit}.d/{DROPIN_NAME}, then run"));
        out.push(format!("  systemctl daemon-reload && systemctl restart {unit}"));
    }
    out.push("Whatever the service did not do while watched will be refused: watch it through".into());
    out.push("start-up, reload, log rotation and shutdown before relying on this.".into());
    out
}

fn architectures(profile: &Profile, unit: Option<&unit::UnitSecurity>) -> Block {
    let compat = profile.compat_abis();
    let mut block = Block::default();
    if compat.is_empty() {
        block.comment("Only native x86-64 syscalls were made: no i386 or x32 entry points are needed.");
        block.set("SystemCallArchitectures", "native");
        return block;
    }
    let (allowed, refused): (Vec<&str>, Vec<&str>) =
        compat.iter().partition(|abi| unit.is_none_or(|u| u.allows_architecture(names::systemd_arch(abi))));
    block.comment(format!("Syscalls were also made through the {} ABI(s).", compat.join(", ")));
    if !refused.is_empty() {
        block.comment(format!("The unit does not allow {}: kept refused.", refused.join(", ")));
    }
    let arches: Vec<&str> = allowed.iter().map(|a| names::systemd_arch(a)).collect();
    block.set("SystemCallArchitectures", ["native"].into_iter().chain(arches).collect::<Vec<_>>().join(" "));
    block
}

/// Every syscall name that exists for the ABIs the profile used (x86_64 always).
fn arch_syscalls(profile: &Profile) -> BTreeSet<&'static str> {
    let mut names: BTreeSet<&'static str> = syscalls::x86_64::Sysno::iter().map(|s| s.name()).collect();
    if profile.compat_abis().contains(&"i386") {
        names.extend(syscalls::x86::Sysno::iter().map(|s| s.name()));
    }
    names
}

fn syscall_filter(profile: &Profile, target: &Target, options: &Options) -> Block {
    let groups = &target.groups;
    let unit = target.unit_security();
    let needed = profile.needed_syscall_names();
    // A call the unit's own filter refuses stays refused, whatever was attempted.
    let (mut used, unit_refused): (BTreeSet<&str>, BTreeSet<&str>) =
        needed.into_iter().partition(|name| unit.as_ref().is_none_or(|u| u.allows_syscall(name)));
    // glibc creates threads and processes with clone3 and falls back to clone only on ENOSYS.
    // A service seen using only clone ran where clone3 failed that way (systemd answers clone3
    // with ENOSYS under RestrictNamespaces=); under our EPERM it would not fall back.
    let clone3_fallback = used.contains("clone") && !used.contains("clone3") && unit.as_ref().is_none_or(|u| u.allows_syscall("clone3"));
    if clone3_fallback {
        used.insert("clone3");
    }
    let plan = syscall_filter::condense(&used, &arch_syscalls(profile), groups);
    let usage = |name: &str| {
        let (mut count, mut exes) = (0, BTreeSet::new());
        for calls in profile.syscalls.values() {
            if let Some(u) = calls.get(name) {
                count += u.count;
                exes.extend(u.executables.iter().map(String::as_str));
            }
        }
        (count, exes)
    };

    let mut block = Block::default();
    // A unit with an allow list of its own keeps it, narrowed: a reset and a list of ours would
    // start again from @default, and bring back what the unit had taken out of it.
    let unit_allow_list = unit.as_ref().and_then(|u| u.system_call_filter.as_ref()).filter(|f| f.allow_list);
    if unit_allow_list.is_some() {
        block.comment("The unit's own allow list stays; what of it the service never used is taken out below.");
    } else {
        block.comment("Allow-list of the syscalls the service made. The empty assignment first drops the unit's");
        block.comment("own list; what that list refused is left out below, so nothing it refused comes back.");
    }
    let refused = profile.refused_syscalls();
    if !refused.is_empty() {
        block.comment("Refused every time they were tried, so no need and not allowed:");
        for ((abi, name), refusal) in &refused {
            let abi = if *abi == names::NATIVE_ABI { String::new() } else { format!("{abi}:") };
            let by = some_of(refusal.executables.iter().map(String::as_str), 2);
            block.comment(format!("  {abi}{name} {} ({}) by {by}", thousands(refusal.count), refusal.errnos.join(", ")));
        }
    }
    if !unit_refused.is_empty() {
        block.comment(format!("Refused by the unit's own SystemCallFilter=, and kept so: {}.", some_of(unit_refused.iter().copied(), 8)));
    }
    if clone3_fallback {
        block.comment("clone3 is allowed though unseen: glibc falls back to the clone seen here only when");
        block.comment("clone3 fails with ENOSYS, and the errno below is not ENOSYS.");
    }
    match unit_allow_list {
        Some(list) => narrow(&mut block, list, &used, groups),
        None => allow_list(&mut block, &plan, &used, groups, unit.as_ref(), &usage),
    }
    action(&mut block, &options.syscall_action);
    block
}

/// Narrows the unit's own allow list to what was used: one `~` line per eight unused names
/// (systemd's always-allowed `@default` stays).
fn narrow(block: &mut Block, list: &unit::Filter, used: &BTreeSet<&str>, groups: &syscall_groups::SyscallGroups) {
    let unused: Vec<&str> =
        list.items.iter().map(String::as_str).filter(|c| !used.contains(c) && !groups.always_allowed().contains(*c)).collect();
    block.comment(format!("{} of the unit's allowed syscalls were never made: taken out.", unused.len()));
    for chunk in unused.chunks(8) {
        block.set("SystemCallFilter", format!("~{}", chunk.join(" ")));
    }
}

/// A reset and an allow list of what was used: groups used whole, then single names.
fn allow_list<'p>(
    block: &mut Block,
    plan: &syscall_filter::SyscallPlan,
    used: &BTreeSet<&str>,
    groups: &syscall_groups::SyscallGroups,
    unit: Option<&unit::UnitSecurity>,
    usage: &dyn Fn(&str) -> (u64, BTreeSet<&'p str>),
) {
    if !plan.implicit.is_empty() {
        block.comment(format!("Always allowed by systemd (@default), so not listed: {}.", plan.implicit.join(", ")));
    }
    block.set("SystemCallFilter", "");
    if plan.groups.is_empty() && plan.singles.is_empty() {
        // Only the reset would leave no filter at all: name @default, so the list is one.
        block.comment("Nothing beyond what systemd always allows (@default) was made:");
        block.set("SystemCallFilter", "@default");
    }
    for group in &plan.groups {
        let members: Vec<&str> = groups.get(group).into_iter().flatten().map(String::as_str).filter(|m| used.contains(m)).collect();
        let calls: u64 = members.iter().map(|m| usage(m).0).sum();
        let mut busiest: Vec<(u64, &str)> = members.iter().map(|m| (usage(m).0, *m)).collect();
        busiest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let top: Vec<String> = busiest.iter().take(4).map(|(c, m)| format!("{m} {}", thousands(*c))).collect();
        let more = if busiest.len() > 4 { ", ..." } else { "" };
        block.comment(format!("{group}: every member that exists here was used, {} calls ({}{more})", thousands(calls), top.join(", ")));
        block.set("SystemCallFilter", group.as_str());
    }
    if !plan.singles.is_empty() {
        block.comment("Used on their own (the rest of their groups was not), with calls and callers:");
        let width = plan.singles.iter().map(String::len).max().unwrap_or(0);
        for name in &plan.singles {
            let (count, exes) = usage(name);
            block.comment(format!("  {name:<width$} {:>9}  {}", thousands(count), some_of(exes, 3)));
        }
        for chunk in plan.singles.chunks(8) {
            block.set("SystemCallFilter", chunk.join(" "));
        }
    }
    // systemd adds @default to every allow list; what of it the unit's deny list refused
    // stays refused.
    let default_refused: Vec<&str> = match unit.and_then(|u| u.system_call_filter.as_ref()) {
        Some(filter) if !filter.allow_list => {
            groups.always_allowed().iter().map(String::as_str).filter(|c| filter.items.contains(*c)).collect()
        }
        _ => Vec::new(),
    };
    if !default_refused.is_empty() {
        block.comment("systemd allows @default in every allow list; the unit refused these of it, so they stay out:");
        block.set("SystemCallFilter", format!("~{}", default_refused.join(" ")));
    }
    for name in &plan.unknown {
        block.comment(format!("WARNING: {name} was used but the target systemd cannot name it in a filter; it will be refused."));
    }
}

/// What a syscall outside the list does.
fn action(block: &mut Block, action: &SyscallAction) {
    match action {
        SyscallAction::Errno(errno) => {
            block.comment(format!("A syscall outside the list fails with {errno} instead of killing the process: a rare"));
            block.comment("path degrades instead of crashing the service, and `profiler check` reports it.");
            block.set("SystemCallErrorNumber", errno.as_str());
        }
        SyscallAction::Kill => {
            block.comment("A syscall outside the list kills the process with SIGSYS (systemd's default).");
        }
    }
}

fn capabilities(profile: &Profile, unit: Option<&unit::UnitSecurity>) -> Block {
    let bounded = |name: &str| unit.is_none_or(|u| u.allows_capability(name));
    let needed: Vec<(&String, &CapabilityUse)> = profile.capabilities.iter().filter(|(n, c)| c.needed() && bounded(n)).collect();
    // Kept though unseen: the hooks could not see every check of these (`capabilities_unseen`).
    let unseen: Vec<&str> = profile
        .recording
        .capabilities_unseen()
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|c| bounded(c) && !needed.iter().any(|(n, _)| n.as_str() == *c))
        .collect();
    let outside: Vec<&str> = profile.capabilities.iter().filter(|(n, c)| c.needed() && !bounded(n)).map(|(n, _)| n.as_str()).collect();
    let unneeded: Vec<(&String, &CapabilityUse)> = profile.capabilities.iter().filter(|(_, c)| !c.needed()).collect();
    let callers =
        |cap: &CapabilityUse, probe: bool| some_of(cap.callers.iter().filter(|(_, c)| c.probe == probe).map(|(name, _)| name.as_str()), 3);
    let mut block = Block::default();
    let hooks = profile.recording.capability_hooks();
    if hooks.contains("kprobe") {
        block.comment("Checks seen through a kprobe/kretprobe pair on cap_capable (the kernel had no tracepoint or");
        block.comment("fexit for it): a check whose return the kretprobe missed (too many at once) is not counted.");
    } else if hooks.contains("fexit") {
        block.comment("Checks seen through fexit on cap_capable (the kernel had no cap_capable tracepoint).");
    }
    if !unseen.is_empty() {
        block.comment(format!("Kept without evidence, because such a hook cannot see all of their checks: {}", unseen.join(", ")));
        block.comment("  (commoncap.c calls cap_capable directly for capset's inheritable set and prctl's securebits,");
        block.comment("  CAP_SETPCAP, and for mmap below mmap_min_addr, CAP_SYS_RAWIO; inlined there before 6.14)");
    }
    if needed.is_empty() {
        block.comment("No capability check was granted for a need: the empty set drops them all.");
    } else {
        block.comment("Capabilities the kernel granted because an operation needed them:");
        for (name, cap) in &needed {
            let by = some_of(cap.executables.iter().map(String::as_str), 3);
            block.comment(format!("  {name}: {} granted in {} by {by}", thousands(cap.granted), callers(cap, false)));
        }
    }
    if !unneeded.is_empty() {
        block.comment("Checked but not kept:");
        for (name, cap) in &unneeded {
            let mut why = Vec::new();
            if cap.probes > 0 {
                why.push(format!("{} probe(s) in {} that only choose a behaviour", thousands(cap.probes), callers(cap, true)));
            }
            if cap.denied > 0 {
                why.push(format!("{} denied in {}: the service already ran without it", thousands(cap.denied), callers(cap, false)));
            }
            block.comment(format!("  {name}: {}", why.join("; ")));
        }
    }
    if !outside.is_empty() {
        block.comment(format!("Granted here but outside the unit's own bounding set, so kept out: {}.", outside.join(", ")));
    }
    block.set("CapabilityBoundingSet", "");
    if !needed.is_empty() || !unseen.is_empty() {
        let mut names: Vec<&str> = needed.iter().map(|(n, _)| n.as_str()).chain(unseen.iter().copied()).collect();
        names.sort_unstable();
        block.set("CapabilityBoundingSet", names.join(" "));
    }
    block
}

#[cfg(test)]
mod tests;
