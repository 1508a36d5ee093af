//! What a drop-in is written for, in one place: the unit's current settings, the target
//! systemd's version, build features and syscall groups, and the table of the systemd
//! version each directive appeared in.

use std::collections::BTreeMap;

use super::{syscall_groups::SyscallGroups, unit::UnitSecurity};

/// The unit and the systemd the drop-in is for.
#[derive(Debug, Clone)]
pub struct Target {
    /// The unit's current settings (`systemctl show` names and values); empty when unknown.
    pub unit: BTreeMap<String, String>,
    /// The target systemd's version (directives newer than it are not written).
    pub systemd_version: u32,
    /// Whether the target systemd was built with its BPF framework (`+BPF_FRAMEWORK` in
    /// `systemctl --version`); without it SocketBindAllow= is accepted but not enforced.
    pub bpf_framework: bool,
    /// The target systemd's syscall groups.
    pub groups: SyscallGroups,
    /// The unit's settings as a model, where they are not simply `unit` read as `systemctl
    /// show` output (`apply`, which takes its own installed drop-in out of them).
    pub security: Option<UnitSecurity>,
}

impl Target {
    /// A target that says nothing about the unit: only the systemd version and its groups.
    pub fn systemd(systemd_version: u32, groups: SyscallGroups) -> Self {
        Self { unit: BTreeMap::new(), systemd_version, bpf_framework: false, groups, security: None }
    }
}

impl Target {
    /// The unit's effective settings, when they are known.
    pub fn unit_security(&self) -> Option<UnitSecurity> {
        self.security.clone().or_else(|| (!self.unit.is_empty()).then(|| UnitSecurity::from_show(&self.unit)))
    }
}

/// systemd versions that introduced the directives written here.
pub const INTRODUCED: &[(&str, u32)] = &[
    ("ProtectHostname", 242),
    ("RestrictSUIDSGID", 242),
    ("ProtectKernelLogs", 244),
    ("ProtectClock", 245),
    ("ProtectProc", 247),
    ("ProcSubset", 247),
    ("PrivateIPC", 248),
    ("SocketBindAllow", 249),
];

/// Values from least to most strict, for directives that are not plain booleans.
pub fn strictness(directive: &str) -> &'static [&'static str] {
    match directive {
        "ProtectSystem" => &["no", "yes", "full", "strict"],
        "ProtectHome" => &["no", "read-only", "tmpfs", "yes"],
        "ProtectProc" => &["default", "ptraceable", "invisible", "noaccess"],
        "ProcSubset" => &["all", "pid"],
        "DevicePolicy" => &["auto", "closed", "strict"],
        "KeyringMode" => &["inherit", "shared", "private"],
        _ => &["no", "yes"],
    }
}
