//! A unit's effective sandbox settings, as systemd and `systemd-analyze security` see them:
//! read from `systemctl show` output, then changed line by line by a drop-in the way systemd's
//! unit-file parser changes them (an empty assignment resets a list, a list line adds to or
//! removes from it); and whether one set of settings allows anything another did not.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr as _,
};

use crate::{
    harden::{DropIn, Setting, syscall_groups::SyscallGroups},
    profile::names,
};

/// Every capability: the bounding set of a unit that never restricted it.
pub const ALL_CAPABILITIES: u64 = u64::MAX;
/// RestrictNamespaces= never set: systemd's `NAMESPACE_FLAGS_INITIAL`, distinct from "all".
pub const NAMESPACES_UNSET: u64 = u64::MAX;

fn all_namespaces() -> u64 {
    names::NAMESPACES.iter().map(|(flag, _)| flag).fold(0, |a, b| a | b)
}

/// An allow or deny list (SystemCallFilter=, RestrictAddressFamilies=).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub allow_list: bool,
    pub items: BTreeSet<String>,
}

/// An IP address prefix of IPAddressAllow= / IPAddressDeny=.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub address: IpAddr,
    pub length: u8,
}

/// What `systemctl show` says of a unit that sets none of these (where that is not empty).
pub const SHOW_DEFAULTS: [(&str, &str); 11] = [
    ("CapabilityBoundingSet", "all"),
    ("DefaultDependencies", "yes"),
    ("ProtectHome", "no"),
    ("ProtectSystem", "no"),
    ("UMask", "0022"),
    ("KeyringMode", "private"),
    ("ProtectProc", "default"),
    ("ProcSubset", "all"),
    ("NotifyAccess", "none"),
    ("RestrictNamespaces", "no"),
    ("DevicePolicy", "auto"),
];

/// The settings the exposure checks read (systemd's `SecurityInfo`).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitSecurity {
    pub default_dependencies: bool,
    pub user: String,
    pub dynamic_user: bool,
    pub supplementary_groups: Vec<String>,
    pub ambient_capabilities: u64,
    pub capability_bounding_set: u64,
    pub private_devices: bool,
    pub private_mounts: bool,
    pub private_network: bool,
    pub private_tmp: bool,
    pub private_users: bool,
    pub protect_control_groups: bool,
    pub protect_kernel_modules: bool,
    pub protect_kernel_tunables: bool,
    pub protect_kernel_logs: bool,
    pub protect_clock: bool,
    pub protect_hostname: bool,
    /// "no", "yes", "read-only" or "tmpfs".
    pub protect_home: String,
    /// "no", "yes", "full" or "strict".
    pub protect_system: String,
    pub root_directory: String,
    pub root_image: String,
    pub lock_personality: bool,
    pub memory_deny_write_execute: bool,
    pub no_new_privileges: bool,
    pub remove_ipc: bool,
    pub delegate: bool,
    pub restrict_realtime: bool,
    pub restrict_suid_sgid: bool,
    pub umask: u32,
    pub keyring_mode: String,
    pub protect_proc: String,
    pub proc_subset: String,
    pub notify_access: String,
    /// `None`: no RestrictAddressFamilies= at all.
    pub address_families: Option<Filter>,
    /// The CLONE_NEW* flags still allowed.
    pub restrict_namespaces: u64,
    pub system_call_architectures: BTreeSet<String>,
    /// `None`: no SystemCallFilter= at all.
    pub system_call_filter: Option<Filter>,
    pub ip_address_allow: Vec<Prefix>,
    pub ip_address_deny: Vec<Prefix>,
    /// IPIngressFilterPath= or IPEgressFilterPath= set.
    pub ip_custom_filters: bool,
    pub device_policy: String,
    pub device_allow: Vec<String>,
}

impl UnitSecurity {
    /// A service that sets none of these: systemd's defaults.
    pub fn unset() -> Self {
        Self::from_show(&SHOW_DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// From `systemctl show UNIT` (name → value). `systemctl show` leaves out properties whose
    /// value is empty, so a missing name reads as empty; RestrictAddressFamilies= and
    /// SystemCallFilter= are the exceptions that tell "unset" (missing) from "empty".
    pub fn from_show(show: &BTreeMap<String, String>) -> Self {
        let get = |key: &str| show.get(key).map_or("", |v| v.trim());
        let flag = |key: &str| switch(get(key)).unwrap_or(false);
        let words = |key: &str| get(key).split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let list = |key: &str| {
            show.get(key).map(|v| {
                let v = v.trim();
                let (allow_list, rest) = match v.strip_prefix('~') {
                    Some(rest) => (false, rest),
                    None => (true, if v == "none" { "" } else { v }),
                };
                Filter { allow_list, items: rest.split_whitespace().map(|w| strip_errno(w).to_string()).collect() }
            })
        };
        Self {
            // Printed for every unit; a hand-trimmed file without it means the default.
            default_dependencies: parse_boolean(get("DefaultDependencies")).unwrap_or(true),
            user: get("User").to_string(),
            dynamic_user: flag("DynamicUser"),
            supplementary_groups: words("SupplementaryGroups"),
            ambient_capabilities: show_capabilities(get("AmbientCapabilities")),
            capability_bounding_set: show_capabilities(get("CapabilityBoundingSet")),
            private_devices: flag("PrivateDevices"),
            private_mounts: flag("PrivateMounts"),
            private_network: flag("PrivateNetwork"),
            private_tmp: flag("PrivateTmp"),
            private_users: flag("PrivateUsers"),
            protect_control_groups: flag("ProtectControlGroups"),
            protect_kernel_modules: flag("ProtectKernelModules"),
            protect_kernel_tunables: flag("ProtectKernelTunables"),
            protect_kernel_logs: flag("ProtectKernelLogs"),
            protect_clock: flag("ProtectClock"),
            protect_hostname: flag("ProtectHostname"),
            protect_home: mode(get("ProtectHome")),
            protect_system: mode(get("ProtectSystem")),
            root_directory: get("RootDirectory").to_string(),
            root_image: get("RootImage").to_string(),
            lock_personality: flag("LockPersonality"),
            memory_deny_write_execute: flag("MemoryDenyWriteExecute"),
            no_new_privileges: flag("NoNewPrivileges"),
            remove_ipc: flag("RemoveIPC"),
            delegate: flag("Delegate"),
            restrict_realtime: flag("RestrictRealtime"),
            restrict_suid_sgid: flag("RestrictSUIDSGID"),
            umask: u32::from_str_radix(get("UMask"), 8).unwrap_or(0o022),
            keyring_mode: get("KeyringMode").to_string(),
            protect_proc: get("ProtectProc").to_string(),
            proc_subset: get("ProcSubset").to_string(),
            notify_access: get("NotifyAccess").to_string(),
            address_families: list("RestrictAddressFamilies"),
            restrict_namespaces: match get("RestrictNamespaces") {
                "yes" => 0,
                "no" | "" => NAMESPACES_UNSET,
                names => namespace_flags(names.trim_start_matches('~'))
                    .map_or(NAMESPACES_UNSET, |flags| if names.starts_with('~') { !flags & all_namespaces() } else { flags }),
            },
            system_call_architectures: words("SystemCallArchitectures").into_iter().collect(),
            system_call_filter: list("SystemCallFilter").filter(|f| f.allow_list || !f.items.is_empty()),
            ip_address_allow: get("IPAddressAllow").split_whitespace().flat_map(prefixes).collect(),
            ip_address_deny: get("IPAddressDeny").split_whitespace().flat_map(prefixes).collect(),
            ip_custom_filters: !get("IPIngressFilterPath").is_empty() || !get("IPEgressFilterPath").is_empty(),
            device_policy: get("DevicePolicy").to_string(),
            device_allow: show.get("DeviceAllow").filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_string()).into_iter().collect(),
        }
    }

    /// These settings with the drop-in's lines applied after them, as systemd applies a
    /// drop-in after the unit file, then what systemd derives at load time.
    pub fn with_dropin(&self, dropin: &DropIn, groups: &SyscallGroups) -> Self {
        self.with_settings(dropin.settings(), groups)
    }

    /// These settings with `settings` applied after them, in order. Directives the exposure
    /// checks do not read are skipped.
    pub fn with_settings<'a>(&self, settings: impl IntoIterator<Item = &'a Setting>, groups: &SyscallGroups) -> Self {
        let mut s = self.clone();
        for setting in settings {
            s.assign(setting.directive.trim(), setting.value.trim(), groups);
        }
        s.derive();
        s
    }

    /// One `Key=value` line of a unit file.
    fn assign(&mut self, key: &str, value: &str, groups: &SyscallGroups) {
        let boolean = switch(value);
        let target = match key {
            "PrivateDevices" => &mut self.private_devices,
            "PrivateMounts" => &mut self.private_mounts,
            "PrivateNetwork" => &mut self.private_network,
            "PrivateTmp" => &mut self.private_tmp,
            "PrivateUsers" => &mut self.private_users,
            "ProtectControlGroups" => &mut self.protect_control_groups,
            "ProtectKernelModules" => &mut self.protect_kernel_modules,
            "ProtectKernelTunables" => &mut self.protect_kernel_tunables,
            "ProtectKernelLogs" => &mut self.protect_kernel_logs,
            "ProtectClock" => &mut self.protect_clock,
            "ProtectHostname" => &mut self.protect_hostname,
            "LockPersonality" => &mut self.lock_personality,
            "MemoryDenyWriteExecute" => &mut self.memory_deny_write_execute,
            "NoNewPrivileges" => &mut self.no_new_privileges,
            "RemoveIPC" => &mut self.remove_ipc,
            "RestrictRealtime" => &mut self.restrict_realtime,
            "RestrictSUIDSGID" => &mut self.restrict_suid_sgid,
            "DynamicUser" => &mut self.dynamic_user,
            // Delegate= also takes a list of controllers, which means yes.
            "Delegate" => {
                self.delegate = boolean.unwrap_or(!value.is_empty());
                return;
            }
            _ => return self.assign_value(key, value, groups),
        };
        if let Some(b) = boolean {
            *target = b;
        }
    }

    fn assign_value(&mut self, key: &str, value: &str, groups: &SyscallGroups) {
        match key {
            "ProtectHome" => self.protect_home = mode(value),
            "ProtectSystem" => self.protect_system = mode(value),
            "User" => self.user = value.to_string(),
            "RootDirectory" => self.root_directory = value.to_string(),
            "RootImage" => self.root_image = value.to_string(),
            "KeyringMode" => self.keyring_mode = value.to_string(),
            "ProtectProc" => self.protect_proc = value.to_string(),
            "ProcSubset" => self.proc_subset = value.to_string(),
            "NotifyAccess" => self.notify_access = value.to_string(),
            "DevicePolicy" => self.device_policy = value.to_string(),
            "UMask" => {
                if let Ok(mask) = u32::from_str_radix(value, 8) {
                    self.umask = mask;
                }
            }
            "SupplementaryGroups" if value.is_empty() => self.supplementary_groups.clear(),
            "SupplementaryGroups" => self.supplementary_groups.extend(value.split_whitespace().map(str::to_string)),
            "CapabilityBoundingSet" => merge_capabilities(&mut self.capability_bounding_set, value, ALL_CAPABILITIES),
            "AmbientCapabilities" => merge_capabilities(&mut self.ambient_capabilities, value, 0),
            "SystemCallArchitectures" if value.is_empty() => self.system_call_architectures.clear(),
            "SystemCallArchitectures" => self.system_call_architectures.extend(value.split_whitespace().map(str::to_string)),
            "SystemCallFilter" => self.filter_syscalls(value, groups),
            "RestrictAddressFamilies" => self.restrict_families(value),
            "RestrictNamespaces" => self.restrict_namespaces(value),
            "IPAddressAllow" if value.is_empty() => self.ip_address_allow.clear(),
            "IPAddressAllow" => self.ip_address_allow.extend(value.split_whitespace().flat_map(prefixes)),
            "IPAddressDeny" if value.is_empty() => self.ip_address_deny.clear(),
            "IPAddressDeny" => self.ip_address_deny.extend(value.split_whitespace().flat_map(prefixes)),
            "DeviceAllow" if value.is_empty() => self.device_allow.clear(),
            "DeviceAllow" => self.device_allow.push(value.to_string()),
            _ => {}
        }
    }

    /// SystemCallFilter=: the first list line decides allow or deny; an allow list starts
    /// with `@default`; later lines add to it, or take away with `~`.
    fn filter_syscalls(&mut self, value: &str, groups: &SyscallGroups) {
        if value.is_empty() {
            self.system_call_filter = None;
            return;
        }
        let (invert, names) = value.strip_prefix('~').map_or((false, value), |rest| (true, rest));
        let filter = self.system_call_filter.get_or_insert_with(|| Filter {
            allow_list: !invert,
            items: if invert { BTreeSet::new() } else { groups.always_allowed().clone() },
        });
        let add = invert != filter.allow_list;
        for word in names.split_whitespace().map(strip_errno) {
            let members: Vec<String> = match groups.get(word) {
                Some(group) => group.iter().cloned().collect(),
                None => vec![word.to_string()],
            };
            for m in members {
                if add {
                    filter.items.insert(m);
                } else {
                    filter.items.remove(&m);
                }
            }
        }
    }

    /// RestrictAddressFamilies=: like SystemCallFilter=, and `none` is an empty allow list.
    fn restrict_families(&mut self, value: &str) {
        if value.is_empty() {
            self.address_families = None;
            return;
        }
        if value == "none" {
            self.address_families = Some(Filter { allow_list: true, items: BTreeSet::new() });
            return;
        }
        let (invert, names) = value.strip_prefix('~').map_or((false, value), |rest| (true, rest));
        let filter = self.address_families.get_or_insert_with(|| Filter { allow_list: !invert, items: BTreeSet::new() });
        let add = invert != filter.allow_list;
        for name in names.split_whitespace() {
            if add {
                filter.items.insert(name.to_string());
            } else {
                filter.items.remove(name);
            }
        }
    }

    /// RestrictNamespaces=: a boolean replaces; a list replaces the unset value, else merges.
    fn restrict_namespaces(&mut self, value: &str) {
        if value.is_empty() {
            self.restrict_namespaces = NAMESPACES_UNSET;
            return;
        }
        if let Some(b) = parse_boolean(value) {
            self.restrict_namespaces = if b { 0 } else { all_namespaces() };
            return;
        }
        let (invert, names) = value.strip_prefix('~').map_or((false, value), |rest| (true, rest));
        let Some(flags) = namespace_flags(names) else { return };
        self.restrict_namespaces = if self.restrict_namespaces == NAMESPACES_UNSET {
            if invert { !flags & all_namespaces() } else { flags }
        } else if invert {
            self.restrict_namespaces & !flags
        } else {
            self.restrict_namespaces | flags
        };
    }

    /// What systemd derives when it loads the unit (`unit_patch_contexts()`): DynamicUser=
    /// implies a sandbox, PrivateDevices= closes the device policy, and ProtectClock= then
    /// allows the RTC.
    fn derive(&mut self) {
        if self.dynamic_user {
            self.private_tmp = true;
            self.remove_ipc = true;
            self.protect_system = "strict".into();
            if self.protect_home == "no" {
                self.protect_home = "read-only".into();
            }
            self.no_new_privileges = true;
            self.restrict_suid_sgid = true;
        }
        if self.private_devices && self.device_policy == "auto" {
            self.device_policy = "closed".into();
        }
        let rtc = "char-rtc r";
        if (self.device_policy != "auto" || !self.device_allow.is_empty())
            && self.protect_clock
            && !self.device_allow.iter().any(|d| d == rtc)
        {
            self.device_allow.push(rtc.into());
        }
    }
}

impl Filter {
    /// Whether the list lets `name` through.
    pub fn allows(&self, name: &str) -> bool {
        self.items.contains(name) == self.allow_list
    }
}

/// Whether an optional list (absent: everything allowed) lets `name` through.
fn list_allows(list: Option<&Filter>, name: &str) -> bool {
    list.is_none_or(|f| f.allows(name))
}

/// A boolean setting, as true when it restricts.
type Flag = fn(&UnitSecurity) -> bool;
/// A setting with an order of values from least to most strict.
type Mode = fn(&UnitSecurity) -> &str;

impl UnitSecurity {
    /// Whether these settings let the service make syscall `name`.
    pub fn allows_syscall(&self, name: &str) -> bool {
        list_allows(self.system_call_filter.as_ref(), name)
    }

    /// Whether these settings let the service create sockets of family `name` (`AF_INET`).
    pub fn allows_family(&self, name: &str) -> bool {
        list_allows(self.address_families.as_ref(), name)
    }

    /// Whether these settings let the service create or join namespace `kind` (`net`).
    pub fn allows_namespace(&self, kind: &str) -> bool {
        self.restrict_namespaces == NAMESPACES_UNSET || names::namespace_flag(kind).is_some_and(|f| self.restrict_namespaces & f != 0)
    }

    /// Whether capability `name` (`CAP_CHOWN`) is in the bounding set.
    pub fn allows_capability(&self, name: &str) -> bool {
        capability_bit(name).is_some_and(|bit| self.capability_bounding_set & bit != 0)
    }

    /// Whether syscalls of this architecture (`native`, `x86`, `x32`) may be made.
    pub fn allows_architecture(&self, arch: &str) -> bool {
        self.system_call_architectures.is_empty() || self.system_call_architectures.contains(arch)
    }

    /// The directives for which `after` (these settings with a drop-in laid over them) allows
    /// something these did not: empty when the drop-in only tightens. `syscalls` is every
    /// syscall name to judge the filters by (the ones a filter on the target can name).
    pub fn loosened_by(&self, after: &UnitSecurity, syscalls: &BTreeSet<String>) -> Vec<&'static str> {
        let mut loosened = Vec::new();
        let mut check = |directive: &'static str, looser: bool| {
            if looser && !loosened.contains(&directive) {
                loosened.push(directive);
            }
        };
        check("CapabilityBoundingSet", after.capability_bounding_set & !self.capability_bounding_set != 0);
        check("AmbientCapabilities", after.ambient_capabilities & !self.ambient_capabilities != 0);
        let named_in = |f: &Option<Filter>| f.iter().flat_map(|f| f.items.iter().cloned()).collect::<BTreeSet<String>>();
        check("SystemCallFilter", syscalls.iter().any(|c| after.allows_syscall(c) && !self.allows_syscall(c)));
        let mut families: BTreeSet<String> = (0..64).map(names::family_name).collect();
        families.extend(named_in(&self.address_families));
        families.extend(named_in(&after.address_families));
        check("RestrictAddressFamilies", families.iter().any(|f| after.allows_family(f) && !self.allows_family(f)));
        check("RestrictNamespaces", names::NAMESPACES.iter().any(|(_, k)| after.allows_namespace(k) && !self.allows_namespace(k)));
        let arches = ["native", "x86", "x86-64", "x32"];
        check("SystemCallArchitectures", arches.iter().any(|a| after.allows_architecture(a) && !self.allows_architecture(a)));
        let booleans: [(&'static str, Flag); 20] = [
            ("PrivateDevices", |u| u.private_devices),
            ("PrivateMounts", |u| u.private_mounts),
            ("PrivateNetwork", |u| u.private_network),
            ("PrivateTmp", |u| u.private_tmp),
            ("PrivateUsers", |u| u.private_users),
            ("ProtectControlGroups", |u| u.protect_control_groups),
            ("ProtectKernelModules", |u| u.protect_kernel_modules),
            ("ProtectKernelTunables", |u| u.protect_kernel_tunables),
            ("ProtectKernelLogs", |u| u.protect_kernel_logs),
            ("ProtectClock", |u| u.protect_clock),
            ("ProtectHostname", |u| u.protect_hostname),
            ("LockPersonality", |u| u.lock_personality),
            ("MemoryDenyWriteExecute", |u| u.memory_deny_write_execute),
            ("NoNewPrivileges", |u| u.no_new_privileges),
            ("RemoveIPC", |u| u.remove_ipc),
            ("RestrictRealtime", |u| u.restrict_realtime),
            ("RestrictSUIDSGID", |u| u.restrict_suid_sgid),
            ("DynamicUser", |u| u.dynamic_user),
            ("Delegate", |u| !u.delegate),
            ("IPIngressFilterPath", |u| u.ip_custom_filters),
        ];
        for (directive, strict) in booleans {
            check(directive, strict(self) && !strict(after));
        }
        let ordered: [(&'static str, &[&str], Mode); 6] = [
            ("ProtectSystem", &["no", "yes", "full", "strict"], |u| &u.protect_system),
            ("ProtectHome", &["no", "read-only", "tmpfs", "yes"], |u| &u.protect_home),
            ("ProtectProc", &["default", "ptraceable", "invisible", "noaccess"], |u| &u.protect_proc),
            ("ProcSubset", &["all", "pid"], |u| &u.proc_subset),
            ("KeyringMode", &["inherit", "shared", "private"], |u| &u.keyring_mode),
            ("DevicePolicy", &["auto", "closed", "strict"], |u| &u.device_policy),
        ];
        for (directive, order, value) in ordered {
            let rank = |u: &UnitSecurity| order.iter().position(|v| *v == value(u));
            check(directive, matches!((rank(self), rank(after)), (Some(before), Some(now)) if now < before));
        }
        check("UMask", self.umask & !after.umask != 0);
        // A device policy restricts once it is closed or strict, or has entries (`auto` with
        // DeviceAllow= lines allows only those). ProtectClock= makes systemd add read access to
        // the RTC itself; that one implied entry is not the drop-in's doing.
        let restricts = |u: &UnitSecurity| !matches!(u.device_policy.as_str(), "auto" | "") || !u.device_allow.is_empty();
        let implied = |d: &String| after.protect_clock && d == "char-rtc r";
        check("DeviceAllow", restricts(self) && after.device_allow.iter().any(|d| !self.device_allow.contains(d) && !implied(d)));
        // An address allowed now that was denied before: judged on the prefixes as written.
        let denies_any = |u: &UnitSecurity| !u.ip_address_deny.is_empty();
        check(
            "IPAddressAllow",
            denies_any(self) && (!denies_any(after) || after.ip_address_allow.iter().any(|p| !self.ip_address_allow.contains(p))),
        );
        check("IPAddressDeny", self.ip_address_deny.iter().any(|p| !after.ip_address_deny.contains(p)));
        check("User", !self.user.is_empty() && self.user != "root" && after.user != self.user);
        loosened
    }
}

/// systemd's parse_boolean().
pub fn parse_boolean(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// A switch that newer systemd also takes words for, each of which turns it on (as the
/// exposure checks count it): PrivateTmp=connected|disconnected, ProtectControlGroups=
/// private|strict, PrivateUsers=self|identity|full, ProtectHostname=private (257, 258).
fn switch(value: &str) -> Option<bool> {
    parse_boolean(value)
        .or_else(|| ["connected", "disconnected", "private", "strict", "self", "identity", "full"].contains(&value).then_some(true))
}

/// ProtectSystem=/ProtectHome= as systemd stores them: a boolean as "yes"/"no".
fn mode(value: &str) -> String {
    match parse_boolean(value) {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => value.to_string(),
    }
}

/// `name:EPERM` in a filter names `name`.
fn strip_errno(word: &str) -> &str {
    word.split_once(':').map_or(word, |(name, _)| name)
}

fn capability_bit(name: &str) -> Option<u64> {
    caps::Capability::from_str(&name.to_ascii_uppercase()).ok().map(|c| 1u64 << c.index())
}

/// `systemctl show`'s capability list. It lists every capability for a set never
/// restricted; that reads back as the unrestricted set. "all" is this module's own shorthand.
fn show_capabilities(list: &str) -> u64 {
    if list == "all" {
        return ALL_CAPABILITIES;
    }
    let bits = list.split_whitespace().filter_map(capability_bit).fold(0, |a, b| a | b);
    let every = caps::all().iter().map(|c| 1u64 << c.index()).fold(0, |a, b| a | b);
    if bits == every { ALL_CAPABILITIES } else { bits }
}

/// CapabilityBoundingSet=/AmbientCapabilities= (systemd's config_parse_capability_set): an
/// empty or first assignment replaces, later ones merge, `~` takes away.
fn merge_capabilities(set: &mut u64, value: &str, initial: u64) {
    let (invert, names) = value.strip_prefix('~').map_or((false, value), |rest| (true, rest));
    let sum = names.split_whitespace().filter_map(capability_bit).fold(0, |a, b| a | b);
    *set = if sum == 0 || *set == initial {
        if invert { !sum } else { sum }
    } else if invert {
        *set & !sum
    } else {
        *set | sum
    };
}

fn namespace_flags(list: &str) -> Option<u64> {
    list.split_whitespace().map(names::namespace_flag).sum::<Option<u64>>()
}

/// An IPAddressAllow=/IPAddressDeny= word as prefixes: an address with an optional length,
/// or one of systemd's names.
fn prefixes(word: &str) -> Vec<Prefix> {
    let p = |address: IpAddr, length| Prefix { address, length };
    match word {
        "any" => vec![p(Ipv4Addr::UNSPECIFIED.into(), 0), p(Ipv6Addr::UNSPECIFIED.into(), 0)],
        "localhost" => vec![p(Ipv4Addr::new(127, 0, 0, 0).into(), 8), p(Ipv6Addr::LOCALHOST.into(), 128)],
        "link-local" => vec![p(Ipv4Addr::new(169, 254, 0, 0).into(), 16), p(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0).into(), 64)],
        "multicast" => vec![p(Ipv4Addr::new(224, 0, 0, 0).into(), 4), p(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0).into(), 8)],
        _ => {
            let (address, length) = word.split_once('/').map_or((word, None), |(a, l)| (a, Some(l)));
            let Ok(address) = address.parse::<IpAddr>() else { return Vec::new() };
            let full = if address.is_ipv4() { 32 } else { 128 };
            let length = length.map_or(Some(full), |l| l.parse().ok()).unwrap_or(full);
            vec![p(address, length)]
        }
    }
}
