//! The target a drop-in is rendered for, learned from where it will run: the unit's systemd
//! (version, build features, syscall groups, the unit's current settings), or from files and
//! versions named on the command line for another host.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use super::{
    Systemd, dropin_file,
    unit::properties,
    version::{DEFAULT_SYSTEMD, major_or_default},
};
use crate::harden::{
    DROPIN_NAME, Setting, Target,
    syscall_groups::SyscallGroups,
    unit::{SHOW_DEFAULTS, UnitSecurity},
};

/// Where the syscall groups come from.
#[derive(Debug, Clone)]
pub enum GroupSource {
    /// This host's `systemd-analyze syscall-filter` (the newest built-in table if it cannot say).
    Host,
    /// A built-in table (`--systemd-version 252`).
    Builtin(String),
    /// A saved `systemd-analyze syscall-filter` listing of the target host.
    File(PathBuf),
}

/// A target as the command line describes it (`generate`, `report`).
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub groups: GroupSource,
    /// `systemctl show UNIT` output saved from the target host.
    pub unit_settings: Option<PathBuf>,
    pub systemd_version: Option<u32>,
    pub bpf_framework: bool,
}

impl TargetSpec {
    pub fn resolve(&self) -> anyhow::Result<Target> {
        let groups = match &self.groups {
            GroupSource::Builtin(version) => SyscallGroups::builtin(version)?,
            GroupSource::File(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading syscall groups from {}", path.display()))?;
                SyscallGroups::parse(&text, &format!("listing in {}", path.display()))?
            }
            GroupSource::Host => Systemd::default().syscall_groups()?,
        };
        let unit = match &self.unit_settings {
            Some(path) => unit_settings(path)?,
            None => BTreeMap::new(),
        };
        let systemd_version = match self.systemd_version {
            Some(major) => major,
            // Groups or settings from another host: this host's systemd says nothing about
            // that one, and a value newer than the target would be ignored there.
            None if matches!(self.groups, GroupSource::File(_)) || self.unit_settings.is_some() => {
                log::warn!(
                    "the target's syscall groups or unit settings come from a file: assuming systemd {DEFAULT_SYSTEMD} \
                     (pass --target-version for newer directives)"
                );
                DEFAULT_SYSTEMD
            }
            None => major_or_default(Systemd::default().version().as_ref()),
        };
        Ok(Target { unit, systemd_version, bpf_framework: self.bpf_framework, socket_bind_failure: None, groups, security: None })
    }
}

/// `systemctl show` output saved in a file: `Name=value` lines.
fn unit_settings(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading unit settings from {}", path.display()))?;
    let settings = properties(&text);
    // A trimmed list (`systemctl show -p ...`) would read every missing setting as unrestricted.
    // (An empty setting is left out even of the whole output, so only these two are sure.)
    if !settings.contains_key("Id") || !settings.contains_key("LoadState") {
        anyhow::bail!(
            "{} is not the whole output of `systemctl show UNIT` (it lacks Id= or LoadState=): \
             a setting missing from it would be taken for one the unit does not restrict",
            path.display()
        );
    }
    // Settings captured under our own drop-in are not the unit's: laid over them, a new drop-in
    // could undo what only the old one restricted.
    if settings.get("DropInPaths").is_some_and(|p| p.contains(&format!("/{DROPIN_NAME}"))) {
        anyhow::bail!(
            "{} was captured with the profiler's drop-in installed ({DROPIN_NAME}); `profiler apply --dry-run` \
             compares with the unit without it",
            path.display()
        );
    }
    Ok(settings)
}

/// The target of `apply`: the unit's own systemd and its settings without the drop-in of
/// ours that may be installed. What that drop-in sets shows up in `systemctl show` as the
/// unit's own; for those directives the unit's other files (`systemctl cat`) say what the unit
/// has without it, so a re-apply judges against the unit, not against its last drop-in.
pub fn of_unit(systemd: &Systemd, unit: &str, installed: Option<&str>) -> anyhow::Result<Target> {
    let groups = systemd.syscall_groups()?;
    let version = systemd.version();
    let mut settings = properties(&systemd.systemctl_ok(&["show", "--", unit])?);
    let mut security = None;
    if let Some(ours) = installed {
        let mut ours: BTreeSet<String> = dropin_file::directives(ours).into_iter().collect();
        // What systemd derives from them shows up as set too (unit_patch_contexts()).
        for (directive, implied) in IMPLIED {
            if ours.contains(*directive) {
                ours.extend(implied.iter().map(|d| d.to_string()));
            }
        }
        let others = others_lines(&systemd.systemctl_ok(&["cat", "--", unit])?, unit, &ours);
        for directive in &ours {
            settings.remove(directive);
            // 257's exact form of a switch that takes words (PrivateTmpEx=) is ours too.
            settings.remove(&format!("{directive}Ex"));
            if let Some((_, default)) = SHOW_DEFAULTS.iter().find(|(k, _)| k == directive) {
                settings.insert(directive.clone(), default.to_string());
            }
        }
        let model = UnitSecurity::from_show(&settings).with_settings(&others, &groups);
        // Scalar directives read as the last value the unit's own files give.
        for line in &others {
            settings.insert(line.directive.clone(), line.value.clone());
        }
        security = Some(model);
    }
    Ok(Target {
        unit: settings,
        systemd_version: major_or_default(version.as_ref()),
        bpf_framework: version.is_some_and(|v| v.bpf_framework()),
        socket_bind_failure: None,
        groups,
        security,
    })
}

/// Settings systemd derives from a directive when it loads the unit.
const IMPLIED: &[(&str, &[&str])] = &[("PrivateDevices", &["DevicePolicy", "DeviceAllow"]), ("ProtectClock", &["DeviceAllow"])];

/// The `[Service]` lines setting one of `directives` in the unit's files as `systemctl cat`
/// shows them (each file after a `# /path` line), leaving out the drop-in `apply` installs.
fn others_lines(cat: &str, unit: &str, directives: &BTreeSet<String>) -> Vec<Setting> {
    let ours = format!("/{unit}.d/{DROPIN_NAME}");
    // A header names the unit file or one of its drop-ins; any other `# /...` is a comment.
    let header = |line: &str| {
        line.strip_prefix("# /")
            .map(|p| format!("/{p}"))
            .filter(|p| p.ends_with(&format!("/{unit}")) || (p.contains(".d/") && p.ends_with(".conf")))
    };
    let (mut skipping, mut in_service) = (false, false);
    let mut lines = Vec::new();
    let mut pending = String::new();
    for raw in cat.lines() {
        // A line ending in `\` goes on in the next one.
        if let Some(start) = raw.trim_end().strip_suffix('\\') {
            pending.push_str(start);
            pending.push(' ');
            continue;
        }
        let joined = std::mem::take(&mut pending) + raw;
        let line = joined.trim();
        if let Some(path) = header(line) {
            skipping = path.ends_with(&ours);
            in_service = false;
            continue;
        }
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if skipping || !in_service || line.starts_with(['#', ';']) {
            continue;
        }
        let setting = Setting::parse(line);
        if directives.contains(setting.directive.trim()) {
            lines.push(Setting::new(setting.directive.trim(), setting.value.trim()));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_own_files_are_read_without_our_dropin() {
        let cat = "# /etc/systemd/system/x.service\n[Unit]\nDescription=x\n[Service]\nExecStart=/bin/x\n# /run/x is made by tmpfiles\nCapabilityBoundingSet=CAP_CHOWN \\\n  CAP_KILL\n\n\
                   # /etc/systemd/system/x.service.d/50-profiler.conf\n# Installed by `profiler apply`.\n[Service]\nCapabilityBoundingSet=\nCapabilityBoundingSet=CAP_CHOWN\nProtectHome=yes\n\n\
                   # /etc/systemd/system/x.service.d/override.conf\n[Service]\nProtectHome=read-only\n";
        let wanted: BTreeSet<String> = ["CapabilityBoundingSet", "ProtectHome"].map(String::from).into();
        let lines: Vec<String> = others_lines(cat, "x.service", &wanted).iter().map(ToString::to_string).collect();
        assert_eq!(lines, ["CapabilityBoundingSet=CAP_CHOWN    CAP_KILL", "ProtectHome=read-only"]);
    }
}
