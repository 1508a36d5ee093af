//! The exposure score of `systemd-analyze security`: its checks, weights and arithmetic
//! (src/analyze/analyze-security.c), applied to a unit's settings before and after a drop-in,
//! so a report can say what the drop-in buys without installing it. Debian's 252 and 257 have
//! the same 81 checks and weights (257 differs only in what its syscall groups hold, which
//! comes from the target); the end-to-end suite compares every row with both.

use caps::Capability::{self, *};

use crate::harden::unit::{Filter, Prefix, UnitSecurity};
use crate::harden::{DropIn, syscall_groups::SyscallGroups};

/// The systemd versions whose `systemd-analyze security` judges every check as this table does.
pub const CHECKED_AGAINST: [u32; 2] = [252, 257];

/// Which table scores a unit of systemd `version`, in words for a report.
pub fn table_for(version: u32) -> String {
    let checked = format!("the 81 checks of systemd {} and {}", CHECKED_AGAINST[0], CHECKED_AGAINST[1]);
    if (CHECKED_AGAINST[0]..=CHECKED_AGAINST[1]).contains(&version) {
        checked
    } else {
        format!("{checked}; systemd {version}'s own may differ")
    }
}

/// What a check reads, and how it turns it into badness (0 ..= range).
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Exposed (badness 1) while the setting is off.
    Off(fn(&UnitSecurity) -> bool),
    /// Exposed while any of these capabilities is in the bounding set.
    Capabilities(u64),
    /// Exposed while this namespace type may be created.
    Namespace(&'static str),
    Family(FamilyClass),
    SyscallGroup(&'static str),
    User,
    SupplementaryGroups,
    RemoveIpc,
    ProtectHome,
    ProtectSystem,
    RootDirectory,
    Umask,
    KeyringMode,
    ProtectProc,
    ProcSubset,
    NotifyAccess,
    Delegate,
    Architectures,
    IpAddresses,
    Devices,
    Ambient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FamilyClass {
    Inet,
    Unix,
    Netlink,
    Packet,
    Other,
}

impl FamilyClass {
    fn of(name: &str) -> Self {
        match name {
            "AF_INET" | "AF_INET6" => Self::Inet,
            "AF_UNIX" => Self::Unix,
            "AF_NETLINK" => Self::Netlink,
            "AF_PACKET" => Self::Packet,
            _ => Self::Other,
        }
    }
}

struct Check {
    id: &'static str,
    weight: u64,
    range: u64,
    /// Not judged for units with DefaultDependencies=no (early-boot services).
    default_dependencies_only: bool,
    rule: Rule,
}

const fn check(id: &'static str, weight: u64, range: u64, rule: Rule) -> Check {
    Check { id, weight, range, default_dependencies_only: false, rule }
}

const fn boot_phase_exempt(id: &'static str, weight: u64, range: u64, rule: Rule) -> Check {
    Check { id, weight, range, default_dependencies_only: true, rule }
}

/// Capabilities as bounding-set bits.
const fn caps(set: &[Capability]) -> u64 {
    let mut bits = 0;
    let mut i = 0;
    while i < set.len() {
        bits |= 1 << set[i] as u32;
        i += 1;
    }
    bits
}

/// systemd 252's table, in its order.
const CHECKS: &[Check] = &[
    check("User=/DynamicUser=", 2000, 10, Rule::User),
    check("SupplementaryGroups=", 200, 1, Rule::SupplementaryGroups),
    check("PrivateDevices=", 1000, 1, Rule::Off(|s| s.private_devices)),
    check("PrivateMounts=", 1000, 1, Rule::Off(|s| s.private_mounts)),
    check("PrivateNetwork=", 2500, 1, Rule::Off(|s| s.private_network)),
    boot_phase_exempt("PrivateTmp=", 1000, 1, Rule::Off(|s| s.private_tmp)),
    check("PrivateUsers=", 1000, 1, Rule::Off(|s| s.private_users)),
    check("ProtectControlGroups=", 1000, 1, Rule::Off(|s| s.protect_control_groups)),
    check("ProtectKernelModules=", 1000, 1, Rule::Off(|s| s.protect_kernel_modules)),
    check("ProtectKernelTunables=", 1000, 1, Rule::Off(|s| s.protect_kernel_tunables)),
    check("ProtectKernelLogs=", 1000, 1, Rule::Off(|s| s.protect_kernel_logs)),
    check("ProtectClock=", 1000, 1, Rule::Off(|s| s.protect_clock)),
    boot_phase_exempt("ProtectHome=", 1000, 10, Rule::ProtectHome),
    check("ProtectHostname=", 50, 1, Rule::Off(|s| s.protect_hostname)),
    boot_phase_exempt("ProtectSystem=", 1000, 10, Rule::ProtectSystem),
    boot_phase_exempt("RootDirectory=/RootImage=", 200, 1, Rule::RootDirectory),
    check("LockPersonality=", 100, 1, Rule::Off(|s| s.lock_personality)),
    check("MemoryDenyWriteExecute=", 100, 1, Rule::Off(|s| s.memory_deny_write_execute)),
    check("NoNewPrivileges=", 1000, 1, Rule::Off(|s| s.no_new_privileges)),
    check("CapabilityBoundingSet=~CAP_SYS_ADMIN", 1500, 1, Rule::Capabilities(caps(&[CAP_SYS_ADMIN]))),
    check("CapabilityBoundingSet=~CAP_SET(UID|GID|PCAP)", 1500, 1, Rule::Capabilities(caps(&[CAP_SETUID, CAP_SETGID, CAP_SETPCAP]))),
    check("CapabilityBoundingSet=~CAP_SYS_PTRACE", 1500, 1, Rule::Capabilities(caps(&[CAP_SYS_PTRACE]))),
    check("CapabilityBoundingSet=~CAP_SYS_TIME", 1000, 1, Rule::Capabilities(caps(&[CAP_SYS_TIME]))),
    check("CapabilityBoundingSet=~CAP_NET_ADMIN", 1000, 1, Rule::Capabilities(caps(&[CAP_NET_ADMIN]))),
    check("CapabilityBoundingSet=~CAP_SYS_RAWIO", 1000, 1, Rule::Capabilities(caps(&[CAP_SYS_RAWIO]))),
    check("CapabilityBoundingSet=~CAP_SYS_MODULE", 1000, 1, Rule::Capabilities(caps(&[CAP_SYS_MODULE]))),
    check("CapabilityBoundingSet=~CAP_AUDIT_*", 500, 1, Rule::Capabilities(caps(&[CAP_AUDIT_CONTROL, CAP_AUDIT_READ, CAP_AUDIT_WRITE]))),
    check("CapabilityBoundingSet=~CAP_SYSLOG", 500, 1, Rule::Capabilities(caps(&[CAP_SYSLOG]))),
    check("CapabilityBoundingSet=~CAP_SYS_(NICE|RESOURCE)", 500, 1, Rule::Capabilities(caps(&[CAP_SYS_NICE, CAP_SYS_RESOURCE]))),
    check("CapabilityBoundingSet=~CAP_MKNOD", 500, 1, Rule::Capabilities(caps(&[CAP_MKNOD]))),
    check("CapabilityBoundingSet=~CAP_(CHOWN|FSETID|SETFCAP)", 1000, 1, Rule::Capabilities(caps(&[CAP_CHOWN, CAP_FSETID, CAP_SETFCAP]))),
    check(
        "CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)",
        1000,
        1,
        Rule::Capabilities(caps(&[CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_IPC_OWNER])),
    ),
    check("CapabilityBoundingSet=~CAP_KILL", 500, 1, Rule::Capabilities(caps(&[CAP_KILL]))),
    check(
        "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)",
        500,
        1,
        Rule::Capabilities(caps(&[CAP_NET_BIND_SERVICE, CAP_NET_BROADCAST, CAP_NET_RAW])),
    ),
    check("CapabilityBoundingSet=~CAP_SYS_BOOT", 100, 1, Rule::Capabilities(caps(&[CAP_SYS_BOOT]))),
    check("CapabilityBoundingSet=~CAP_MAC_*", 100, 1, Rule::Capabilities(caps(&[CAP_MAC_ADMIN, CAP_MAC_OVERRIDE]))),
    check("CapabilityBoundingSet=~CAP_LINUX_IMMUTABLE", 75, 1, Rule::Capabilities(caps(&[CAP_LINUX_IMMUTABLE]))),
    check("CapabilityBoundingSet=~CAP_IPC_LOCK", 50, 1, Rule::Capabilities(caps(&[CAP_IPC_LOCK]))),
    check("CapabilityBoundingSet=~CAP_SYS_CHROOT", 50, 1, Rule::Capabilities(caps(&[CAP_SYS_CHROOT]))),
    check("CapabilityBoundingSet=~CAP_BLOCK_SUSPEND", 25, 1, Rule::Capabilities(caps(&[CAP_BLOCK_SUSPEND]))),
    check("CapabilityBoundingSet=~CAP_WAKE_ALARM", 25, 1, Rule::Capabilities(caps(&[CAP_WAKE_ALARM]))),
    check("CapabilityBoundingSet=~CAP_LEASE", 25, 1, Rule::Capabilities(caps(&[CAP_LEASE]))),
    check("CapabilityBoundingSet=~CAP_SYS_TTY_CONFIG", 25, 1, Rule::Capabilities(caps(&[CAP_SYS_TTY_CONFIG]))),
    check("CapabilityBoundingSet=~CAP_SYS_PACCT", 25, 1, Rule::Capabilities(caps(&[CAP_SYS_PACCT]))),
    check("CapabilityBoundingSet=~CAP_BPF", 25, 1, Rule::Capabilities(caps(&[CAP_BPF]))),
    check("UMask=", 100, 10, Rule::Umask),
    check("KeyringMode=", 1000, 1, Rule::KeyringMode),
    check("ProtectProc=", 1000, 3, Rule::ProtectProc),
    check("ProcSubset=", 10, 1, Rule::ProcSubset),
    check("NotifyAccess=", 1000, 1, Rule::NotifyAccess),
    check("RemoveIPC=", 100, 1, Rule::RemoveIpc),
    check("Delegate=", 100, 1, Rule::Delegate),
    check("RestrictRealtime=", 500, 1, Rule::Off(|s| s.restrict_realtime)),
    check("RestrictSUIDSGID=", 1000, 1, Rule::Off(|s| s.restrict_suid_sgid)),
    check("RestrictNamespaces=~user", 1500, 1, Rule::Namespace("user")),
    check("RestrictNamespaces=~mnt", 500, 1, Rule::Namespace("mnt")),
    check("RestrictNamespaces=~ipc", 500, 1, Rule::Namespace("ipc")),
    check("RestrictNamespaces=~pid", 500, 1, Rule::Namespace("pid")),
    check("RestrictNamespaces=~cgroup", 500, 1, Rule::Namespace("cgroup")),
    check("RestrictNamespaces=~net", 500, 1, Rule::Namespace("net")),
    check("RestrictNamespaces=~uts", 100, 1, Rule::Namespace("uts")),
    check("RestrictAddressFamilies=~AF_(INET|INET6)", 1500, 1, Rule::Family(FamilyClass::Inet)),
    check("RestrictAddressFamilies=~AF_UNIX", 25, 1, Rule::Family(FamilyClass::Unix)),
    check("RestrictAddressFamilies=~AF_NETLINK", 200, 1, Rule::Family(FamilyClass::Netlink)),
    check("RestrictAddressFamilies=~AF_PACKET", 1000, 1, Rule::Family(FamilyClass::Packet)),
    check("RestrictAddressFamilies=~…", 1250, 1, Rule::Family(FamilyClass::Other)),
    check("SystemCallArchitectures=", 1000, 10, Rule::Architectures),
    check("SystemCallFilter=~@swap", 1000, 10, Rule::SyscallGroup("@swap")),
    check("SystemCallFilter=~@obsolete", 250, 10, Rule::SyscallGroup("@obsolete")),
    check("SystemCallFilter=~@clock", 1000, 10, Rule::SyscallGroup("@clock")),
    check("SystemCallFilter=~@cpu-emulation", 250, 10, Rule::SyscallGroup("@cpu-emulation")),
    check("SystemCallFilter=~@debug", 1000, 10, Rule::SyscallGroup("@debug")),
    check("SystemCallFilter=~@mount", 1000, 10, Rule::SyscallGroup("@mount")),
    check("SystemCallFilter=~@module", 1000, 10, Rule::SyscallGroup("@module")),
    check("SystemCallFilter=~@raw-io", 1000, 10, Rule::SyscallGroup("@raw-io")),
    check("SystemCallFilter=~@reboot", 1000, 10, Rule::SyscallGroup("@reboot")),
    check("SystemCallFilter=~@privileged", 700, 10, Rule::SyscallGroup("@privileged")),
    check("SystemCallFilter=~@resources", 700, 10, Rule::SyscallGroup("@resources")),
    check("IPAddressDeny=", 1000, 10, Rule::IpAddresses),
    check("DeviceAllow=", 1000, 10, Rule::Devices),
    check("AmbientCapabilities=", 500, 1, Rule::Ambient),
];

/// One judged check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: &'static str,
    pub weight: u64,
    pub range: u64,
    /// 0 (good) ..= range (bad); `None` where the check does not apply.
    pub badness: Option<u64>,
}

/// A unit's exposure: every check and the overall score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub rows: Vec<Row>,
    /// Tenths: 96 is systemd-analyze's "9.6".
    pub tenths: u64,
}

impl Exposure {
    /// "9.6 UNSAFE", as systemd-analyze prints it.
    pub fn label(&self) -> String {
        format!("{} {}", tenths_text(self.tenths), level(self.tenths))
    }

    /// A row's share of the overall score, in tenths (systemd-analyze's EXPOSURE column).
    pub fn share(&self, row: &Row) -> u64 {
        let total: u64 = self.rows.iter().filter(|r| r.badness.is_some()).map(|r| r.weight).sum();
        match row.badness {
            Some(b) if total > 0 => (b * row.weight * 100).div_ceil(row.range).div_ceil(total),
            _ => 0,
        }
    }
}

/// A unit's exposure before and after a drop-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub before: Exposure,
    pub after: Exposure,
}

impl Comparison {
    pub fn new(unit: &UnitSecurity, dropin: &DropIn, groups: &SyscallGroups) -> Self {
        Self { before: assess(unit, groups), after: assess(&unit.with_dropin(dropin, groups), groups) }
    }

    /// The checks the drop-in moved, as (before, after), the largest share first.
    pub fn changed(&self) -> Vec<(&Row, &Row)> {
        let mut moved: Vec<(&Row, &Row)> = self.before.rows.iter().zip(&self.after.rows).filter(|(b, a)| b.badness != a.badness).collect();
        moved.sort_by_key(|(b, a)| (std::cmp::Reverse(self.before.share(b).abs_diff(self.after.share(a))), b.id));
        moved
    }

    /// The checks still exposed with the drop-in, the largest share first.
    pub fn remaining(&self) -> Vec<&Row> {
        let mut left: Vec<&Row> = self.after.rows.iter().filter(|r| r.badness.is_some_and(|b| b > 0)).collect();
        left.sort_by_key(|r| (std::cmp::Reverse(self.after.share(r)), std::cmp::Reverse(r.weight), r.id));
        left
    }
}

impl Row {
    /// "7/10", or "n/a" where the check does not apply.
    pub fn badness_text(&self) -> String {
        self.badness.map_or_else(|| "n/a".to_string(), |b| format!("{b}/{}", self.range))
    }
}

/// Tenths as systemd-analyze prints them: 96 → "9.6".
pub fn tenths_text(tenths: u64) -> String {
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// systemd-analyze's word for a score in tenths.
pub fn level(tenths: u64) -> &'static str {
    match tenths {
        100.. => "DANGEROUS",
        90.. => "UNSAFE",
        75.. => "EXPOSED",
        50.. => "MEDIUM",
        10.. => "OK",
        1.. => "SAFE",
        0 => "PERFECT",
    }
}

/// Judges every check. `groups` are the target systemd's syscall groups.
pub fn assess(unit: &UnitSecurity, groups: &SyscallGroups) -> Exposure {
    let unit = &with_implied_protections(unit);
    let rows: Vec<Row> = CHECKS
        .iter()
        .map(|c| Row {
            id: c.id,
            weight: c.weight,
            range: c.range,
            badness: if c.default_dependencies_only && !unit.default_dependencies { None } else { badness(c.rule, unit, groups) },
        })
        .collect();
    let (mut bad, mut weights) = (0u64, 0u64);
    for row in &rows {
        if let Some(b) = row.badness {
            bad += (b * row.weight).div_ceil(row.range);
            weights += row.weight;
        }
    }
    Exposure { rows, tenths: if weights == 0 { 0 } else { (bad * 100).div_ceil(weights) } }
}

/// What systemd-analyze counts as implied: a private mount namespace by any protection that
/// needs one, and the capabilities some protections take away.
fn with_implied_protections(unit: &UnitSecurity) -> UnitSecurity {
    let mut u = unit.clone();
    u.private_mounts |=
        u.private_devices || u.private_tmp || u.protect_control_groups || u.protect_kernel_tunables || u.protect_kernel_modules;
    u.private_mounts |= u.protect_home != "no" || u.protect_system != "no" || !u.root_image.is_empty();
    let drops = [
        (u.protect_kernel_modules, caps(&[CAP_SYS_MODULE])),
        (u.protect_kernel_logs, caps(&[CAP_SYSLOG])),
        (u.protect_clock, caps(&[CAP_SYS_TIME, CAP_WAKE_ALARM])),
        (u.private_devices, caps(&[CAP_MKNOD, CAP_SYS_RAWIO])),
    ];
    for (on, bits) in drops {
        if on {
            u.capability_bounding_set &= !bits;
        }
    }
    u
}

fn runs_privileged(u: &UnitSecurity) -> bool {
    matches!(u.user.as_str(), "0" | "root") || (!u.dynamic_user && u.user.is_empty())
}

fn badness(rule: Rule, u: &UnitSecurity, groups: &SyscallGroups) -> Option<u64> {
    let b = match rule {
        Rule::Off(on) => u64::from(!on(u)),
        Rule::Capabilities(bits) => u64::from(u.capability_bounding_set & bits != 0),
        Rule::Namespace(name) => u64::from(u.restrict_namespaces & crate::profile::names::namespace_flag(name).unwrap_or(0) != 0),
        Rule::Family(class) => u64::from(!family_restricted(u.address_families.as_ref(), class)),
        Rule::SyscallGroup(group) => syscall_group(u.system_call_filter.as_ref(), groups, group),
        Rule::User => match u.user.as_str() {
            "nobody" => 9,
            "0" | "root" => 10,
            _ if u.dynamic_user => 0,
            "" => 10,
            _ => 0,
        },
        Rule::SupplementaryGroups if runs_privileged(u) => return None,
        Rule::SupplementaryGroups => u64::from(!u.supplementary_groups.is_empty()),
        Rule::RemoveIpc if runs_privileged(u) => return None,
        Rule::RemoveIpc => u64::from(!u.remove_ipc),
        Rule::ProtectHome => match u.protect_home.as_str() {
            "yes" => 0,
            "read-only" => 5,
            "tmpfs" => 1,
            _ => 10,
        },
        Rule::ProtectSystem => match u.protect_system.as_str() {
            "strict" => 0,
            "full" => 3,
            "yes" => 5,
            _ => 10,
        },
        Rule::RootDirectory => u64::from(matches!(u.root_directory.as_str(), "" | "/") && matches!(u.root_image.as_str(), "" | "/")),
        Rule::Umask => match u.umask {
            m if m & 0o002 == 0 => 10,
            m if m & 0o004 == 0 => 5,
            m if m & 0o020 == 0 => 2,
            m if m & 0o040 == 0 => 1,
            _ => 0,
        },
        Rule::KeyringMode => u64::from(u.keyring_mode != "private"),
        Rule::ProtectProc => match u.protect_proc.as_str() {
            "noaccess" => 1,
            "invisible" | "ptraceable" => 0,
            _ => 3,
        },
        Rule::ProcSubset => u64::from(u.proc_subset != "pid"),
        Rule::NotifyAccess => u64::from(u.notify_access == "all"),
        Rule::Delegate => u64::from(u.delegate),
        Rule::Architectures => match u.system_call_architectures.len() {
            0 => 10,
            1 if u.system_call_architectures.contains("native") => 0,
            _ => 8,
        },
        Rule::IpAddresses => ip_addresses(u),
        Rule::Devices => match u.device_policy.as_str() {
            "strict" | "closed" if u.device_allow.is_empty() => 0,
            "strict" | "closed" => 5,
            _ => 10,
        },
        Rule::Ambient => u64::from(u.ambient_capabilities != 0),
    };
    Some(b)
}

/// Whether the unit's RestrictAddressFamilies= keeps this class of families out.
fn family_restricted(filter: Option<&Filter>, class: FamilyClass) -> bool {
    let Some(f) = filter else { return false };
    let named = f.items.iter().any(|name| FamilyClass::of(name) == class);
    if named { !f.allow_list } else { f.allow_list }
}

/// 10 without a filter; with an allow list 9 when any call of the group is allowed; with a
/// deny list 10 when any call of the group is not denied. Calls this architecture does not
/// have are not held against the unit.
fn syscall_group(filter: Option<&Filter>, groups: &SyscallGroups, group: &str) -> u64 {
    let Some(f) = filter.filter(|f| f.allow_list || !f.items.is_empty()) else { return 10 };
    let exists = |name: &&String| name.parse::<syscalls::x86_64::Sysno>().is_ok();
    let offending = groups.get(group).into_iter().flatten().filter(exists).any(|name| f.items.contains(name) == f.allow_list);
    match (offending, f.allow_list) {
        (false, _) => 0,
        (true, true) => 9,
        (true, false) => 10,
    }
}

/// IPAddressDeny=: 10 without deny-all; then 5 if anything beyond localhost is allowed, 2 if
/// localhost is, 0 if nothing is. systemd-analyze counts an allowed IPv4 prefix as localhost
/// only as 127.0.0.0/8 and an IPv6 one only as ::1/128.
fn ip_addresses(u: &UnitSecurity) -> u64 {
    if u.ip_custom_filters {
        return 0;
    }
    let denies_all = |v4: bool| u.ip_address_deny.iter().any(|p| p.length == 0 && p.address.is_ipv4() == v4);
    if !(denies_all(true) && denies_all(false)) {
        return 10;
    }
    let localhost = |p: &Prefix| match p.address {
        std::net::IpAddr::V4(a) => p.length == 8 && a.is_loopback(),
        std::net::IpAddr::V6(a) => p.length == 128 && a.is_loopback(),
    };
    if u.ip_address_allow.iter().any(|p| !localhost(p)) {
        5
    } else if u.ip_address_allow.is_empty() {
        0
    } else {
        2
    }
}

#[cfg(test)]
mod tests;
