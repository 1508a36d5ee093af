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
    /// What the unit's manager said when it could not load its socket-bind program on this
    /// host (its kernel refuses it): SocketBindAllow= would not be enforced there either.
    pub socket_bind_failure: Option<String>,
    /// The target systemd's syscall groups.
    pub groups: SyscallGroups,
    /// The unit's settings as a model, where they are not simply `unit` read as `systemctl
    /// show` output (`apply`, which takes its own installed drop-in out of them).
    pub security: Option<UnitSecurity>,
}

impl Target {
    /// A target that says nothing about the unit: only the systemd version and its groups.
    pub fn systemd(systemd_version: u32, groups: SyscallGroups) -> Self {
        Self { unit: BTreeMap::new(), systemd_version, bpf_framework: false, socket_bind_failure: None, groups, security: None }
    }
}

impl Target {
    /// The unit's effective settings, when they are known.
    pub fn unit_security(&self) -> Option<UnitSecurity> {
        self.security.clone().or_else(|| (!self.unit.is_empty()).then(|| UnitSecurity::from_show(&self.unit)))
    }
}

impl Target {
    /// Whether the target systemd knows `item`: a directive (`PrivatePIDs`), one of its values
    /// (`ProtectControlGroups=strict`) or a syscall group (`@sandbox`).
    pub fn offers(&self, item: &str) -> bool {
        introduced(item).is_none_or(|since| self.systemd_version >= since)
    }
}

/// The systemd version in which each directive, value and syscall group the drop-in may name
/// first appeared (systemd's NEWS and man pages): a drop-in never names one its target lacks.
pub const INTRODUCED: &[(&str, u32)] = &[
    ("ProtectHostname", 242),
    ("RestrictSUIDSGID", 242),
    ("ProtectKernelLogs", 244),
    ("ProtectClock", 245),
    ("ProtectProc", 247),
    ("ProcSubset", 247),
    ("@known", 247),
    ("PrivateIPC", 248),
    ("SocketBindAllow", 249),
    ("SocketBindDeny", 249),
    ("RestrictFileSystems", 250),
    ("RestrictNetworkInterfaces", 250),
    ("@sandbox", 254),
    ("PrivatePIDs", 257),
    ("PrivateTmp=disconnected", 257),
    ("ProtectControlGroups=private", 257),
    ("ProtectControlGroups=strict", 257),
    ("PrivateUsers=self", 257),
    ("PrivateUsers=identity", 257),
    ("ProtectHostname=private", 258),
];

/// The version `item` appeared in; `None` for what every supported systemd has.
pub fn introduced(item: &str) -> Option<u32> {
    INTRODUCED.iter().find(|(name, _)| *name == item).map(|(_, since)| *since)
}

/// Values from least to most strict, for directives that are not plain booleans. A value that
/// is not simply stronger than a weaker one sits above it, so it is never replaced by it:
/// ProtectControlGroups=private (a writable cgroup tree of its own) is kept over =yes.
pub fn strictness(directive: &str) -> &'static [&'static str] {
    match directive {
        "PrivateTmp" => &["no", "yes", "connected", "disconnected"],
        "ProtectControlGroups" => &["no", "yes", "private", "strict"],
        "ProtectHostname" => &["no", "private", "yes"],
        "ProtectSystem" => &["no", "yes", "full", "strict"],
        "ProtectHome" => &["no", "read-only", "tmpfs", "yes"],
        "ProtectProc" => &["default", "ptraceable", "invisible", "noaccess"],
        "ProcSubset" => &["all", "pid"],
        "DevicePolicy" => &["auto", "closed", "strict"],
        "KeyringMode" => &["inherit", "shared", "private"],
        _ => &["no", "yes"],
    }
}
