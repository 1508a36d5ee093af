//! The target a drop-in is rendered for, learned from where it will run: the unit's systemd
//! (version, build features, syscall groups, the unit's current settings), or from files and
//! versions named on the command line for another host.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use super::{Systemd, dropin_file, unit::properties, version::major_or_default};
use crate::harden::{Target, syscall_groups::SyscallGroups};

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
            None => major_or_default(Systemd::default().version().as_ref()),
        };
        Ok(Target { unit, systemd_version, bpf_framework: self.bpf_framework, groups })
    }
}

/// `systemctl show` output saved in a file: `Name=value` lines.
fn unit_settings(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading unit settings from {}", path.display()))?;
    let settings = properties(&text);
    if settings.is_empty() {
        anyhow::bail!("{} holds no Name=value lines; expected the output of `systemctl show UNIT`", path.display());
    }
    Ok(settings)
}

/// The target of `apply`: the unit's own systemd and its current settings. What an installed
/// drop-in of ours sets shows up as the unit's own setting; it is left out, so the new drop-in
/// does not leave a line out as "already as strict" because of the old one.
pub fn of_unit(systemd: &Systemd, unit: &str, installed: Option<&str>) -> anyhow::Result<Target> {
    let groups = systemd.syscall_groups()?;
    let version = systemd.version();
    let mut settings = properties(&systemd.systemctl_ok(&["show", "--", unit])?);
    for directive in installed.map(dropin_file::directives).unwrap_or_default() {
        settings.remove(&directive);
    }
    Ok(Target {
        unit: settings,
        systemd_version: major_or_default(version.as_ref()),
        bpf_framework: version.is_some_and(|v| v.bpf_framework()),
        groups,
    })
}
