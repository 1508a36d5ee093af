//! Every sandbox directive the evidence can decide beyond syscalls and capabilities: the file
//! system view, networking, devices, namespaces and the kernel-protection switches.
//!
//! Each directive is either set, with the observations behind it, or left open with the
//! observation that prevented it. Nothing the unit already restricts more is loosened.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    path_events::{changes_directory, is_write},
    path_text::{self, is_under},
    profile::Profile,
};

use super::text::{comment_safe, some_of, thousands};

/// What the drop-in is written for.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The unit's current settings (`systemctl show` names and values); empty when unknown.
    pub unit: BTreeMap<String, String>,
    /// The target systemd's version (directives newer than it are not written).
    pub systemd_version: u32,
    /// Whether the target systemd was built with its BPF framework (`+BPF_FRAMEWORK` in
    /// `systemctl --version`); without it SocketBindAllow= is accepted but not enforced.
    pub bpf_framework: bool,
    /// Pin IPAddressAllow= to the peers the service connected to (`--pin-peers`).
    pub pin_peers: bool,
}

/// One decided directive.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Lines to write, and the evidence for them (comment lines).
    Set { lines: Vec<String>, why: Vec<String> },
    /// Not written, and why.
    Open { directive: String, why: String },
}

fn set(lines: &[&str], why: impl Into<String>) -> Verdict {
    Verdict::Set { lines: lines.iter().map(|l| l.to_string()).collect(), why: vec![why.into()] }
}

fn open(directive: &str, why: impl Into<String>) -> Verdict {
    Verdict::Open { directive: directive.into(), why: why.into() }
}

/// systemd versions that introduced the directives written here.
const INTRODUCED: &[(&str, u32)] = &[
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
fn strictness(directive: &str) -> &'static [&'static str] {
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

/// Facts drawn from the profile once.
struct Evidence<'a> {
    profile: &'a Profile,
    syscalls: BTreeSet<&'a str>,
}

impl<'a> Evidence<'a> {
    fn used(&self, names: &[&'static str]) -> Vec<&'static str> {
        names.iter().copied().filter(|n| self.syscalls.contains(n)).collect()
    }

    /// Paths with any op matching `pred`, under `dir`.
    fn paths_under(&self, dir: &str, pred: impl Fn(&str) -> bool) -> Vec<&'a str> {
        self.profile
            .paths
            .iter()
            .filter(|(p, u)| is_under(p, dir) && u.ops.iter().any(|o| pred(o)))
            .map(|(p, _)| p.as_str())
            .collect()
    }

    fn touched(&self, dir: &str) -> Vec<&'a str> {
        self.paths_under(dir, |_| true)
    }

    fn written(&self, dir: &str) -> Vec<&'a str> {
        self.paths_under(dir, is_write)
    }

    fn acts(&self, prefix: &str) -> Vec<&'a str> {
        self.profile.acts.keys().filter(|k| k.starts_with(prefix)).map(String::as_str).collect()
    }

    fn families(&self) -> BTreeSet<&'a str> {
        self.profile.families.keys().map(String::as_str).collect()
    }
}

/// Decides every directive of this module, in the order they are written.
pub fn decide(profile: &Profile, target: &Target) -> Vec<Verdict> {
    let ev = Evidence { profile, syscalls: profile.syscall_names() };
    let mut verdicts = Vec::new();
    let (tmp_verdict, private_tmp) = private_tmp(&ev);
    verdicts.push(protect_system(&ev, private_tmp));
    verdicts.push(tmp_verdict);
    verdicts.push(protect_home(&ev));
    verdicts.extend(network(&ev, target));
    verdicts.extend(devices(&ev));
    verdicts.push(namespaces(&ev));
    verdicts.push(absent_or("MemoryDenyWriteExecute=yes", &ev.acts("mmap-write-exec").into_iter().chain(ev.acts("mprotect-exec")).collect::<Vec<_>>(), "no writable-and-executable mapping was made"));
    verdicts.push(no_new_privileges(&ev));
    verdicts.push(absent_or("RestrictSUIDSGID=yes", &ev.acts("setuid-mode"), "no file was given a set-user-ID or set-group-ID mode"));
    verdicts.push(absent_or("LockPersonality=yes", &ev.acts("personality").into_iter().filter(|p| *p != "personality 0x0").collect::<Vec<_>>(), "the execution domain was never changed"));
    verdicts.push(absent_or("RestrictRealtime=yes", &ev.acts("realtime"), "no realtime scheduling policy was requested"));
    verdicts.push(absent_or("ProtectClock=yes", &ev.used(&["adjtimex", "clock_adjtime", "clock_settime", "settimeofday", "stime"]), "the clock was never set or adjusted"));
    verdicts.push(absent_or("ProtectHostname=yes", &ev.used(&["sethostname", "setdomainname"]), "the host name was never set"));
    let modules: Vec<&str> = ev.used(&["init_module", "finit_module", "delete_module"]).into_iter().chain(ev.touched("/usr/lib/modules")).chain(ev.touched("/lib/modules")).collect();
    verdicts.push(absent_or("ProtectKernelModules=yes", &modules, "no module was loaded and the module tree was not read"));
    let logs: Vec<&str> = ev.used(&["syslog"]).into_iter().chain(ev.touched("/dev/kmsg")).chain(ev.touched("/proc/kmsg")).collect();
    verdicts.push(absent_or("ProtectKernelLogs=yes", &logs, "neither syslog(2) nor /dev/kmsg was used"));
    let tunables: Vec<&str> = ev.written("/proc/sys").into_iter().chain(ev.written("/sys")).filter(|p| !is_under(p, "/sys/fs/cgroup")).collect();
    verdicts.push(absent_or("ProtectKernelTunables=yes", &tunables, "nothing under /proc/sys or /sys was written"));
    verdicts.push(absent_or("ProtectControlGroups=yes", &ev.written("/sys/fs/cgroup"), "nothing under /sys/fs/cgroup was written"));
    verdicts.extend(proc_view(&ev));
    verdicts.push(absent_or("KeyringMode=private", &ev.used(&["add_key", "keyctl", "request_key"]), "no kernel keyring was used"));
    let ipc = ev.used(&["shmget", "shmat", "semget", "msgget", "mq_open"]);
    verdicts.push(absent_or("PrivateIPC=yes", &ipc, "no System V or POSIX message-queue IPC object was used"));
    verdicts.push(absent_or("RemoveIPC=yes", &ipc, "no System V or POSIX message-queue IPC object was used"));
    verdicts.push(absent_or("PrivateMounts=yes", &ev.used(&["mount", "umount2", "move_mount", "fsmount", "pivot_root"]), "nothing was mounted"));
    verdicts.push(umask(&ev));
    verdicts.into_iter().map(|v| respect_unit(v, target)).collect()
}

/// `line` when none of `seen` happened; otherwise the directive stays open, naming them.
fn absent_or(line: &str, seen: &[&str], because: &str) -> Verdict {
    let directive = line.split('=').next().unwrap_or(line);
    if seen.is_empty() {
        set(&[line], because)
    } else {
        open(directive, format!("seen: {}", some_of(seen.iter().copied(), 4)))
    }
}

/// Drops our line where the unit is already as strict, and a directive the target does not know.
fn respect_unit(verdict: Verdict, target: &Target) -> Verdict {
    let Verdict::Set { lines, mut why } = verdict else { return verdict };
    let mut kept = Vec::new();
    for line in lines {
        let (directive, value) = line.split_once('=').unwrap_or((&line, ""));
        if let Some((_, since)) = INTRODUCED.iter().find(|(d, _)| *d == directive)
            && target.systemd_version < *since
        {
            why.push(format!("{directive}= needs systemd {since}; the target is {}, so it is not written", target.systemd_version));
            continue;
        }
        let order = strictness(directive);
        if let (Some(current), Some(ours)) =
            (target.unit.get(directive), order.iter().position(|v| *v == value))
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

/// PrivateTmp=yes unless something outside the service must meet it in /tmp (a socket bound
/// there).
fn private_tmp(ev: &Evidence) -> (Verdict, bool) {
    let shared: Vec<&str> = ["/tmp", "/var/tmp"]
        .iter()
        .flat_map(|d| ev.paths_under(d, |op| op == "bind-unix"))
        .collect();
    if !shared.is_empty() {
        return (open("PrivateTmp", format!("a socket other processes reach was bound in a temporary directory: {}", some_of(shared.iter().copied(), 3))), false);
    }
    // A private /tmp starts empty: a write into a directory there that the service did not
    // make itself expects something put there by others.
    let made: BTreeSet<&str> = ev.paths_under("/", |op| op == "mkdir").into_iter().collect();
    let foreign: Vec<&str> = ["/tmp", "/var/tmp"]
        .iter()
        .flat_map(|d| ev.written(d))
        .filter(|p| {
            let dir = path_text::parent(p.trim_end_matches("/*"));
            dir != "/tmp" && dir != "/var/tmp" && !made.contains(dir)
        })
        .collect();
    if !foreign.is_empty() {
        return (open("PrivateTmp", format!("written in temporary directories the service did not create: {}", some_of(foreign.iter().copied(), 3))), false);
    }
    let used: Vec<&str> = ev.touched("/tmp").into_iter().chain(ev.touched("/var/tmp")).collect();
    let why = if used.is_empty() {
        "/tmp and /var/tmp were not used".to_string()
    } else {
        format!("/tmp and /var/tmp become the service's own ({} path(s) used, e.g. {})", used.len(), some_of(used.iter().copied(), 2))
    };
    (set(&["PrivateTmp=yes"], why), true)
}

/// ProtectSystem=strict with the fewest ReadWritePaths= that cover every write.
fn protect_system(ev: &Evidence, private_tmp: bool) -> Verdict {
    let mut needed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut notes = Vec::new();
    for (path, use_) in &ev.profile.paths {
        let writes: Vec<&str> = use_.ops.iter().map(String::as_str).filter(|o| is_write(o)).collect();
        if writes.is_empty() || ["/dev", "/proc", "/sys"].iter().any(|d| is_under(path, d)) {
            continue;
        }
        if private_tmp && ["/tmp", "/var/tmp"].iter().any(|d| is_under(path, d)) {
            continue;
        }
        let folded = path.strip_suffix("/*");
        let mut dir = match folded {
            Some(dir) => dir.to_string(),
            None if use_.incomplete || writes.iter().any(|o| changes_directory(o)) => path_text::parent(path).to_string(),
            None => path.clone(),
        };
        if use_.incomplete {
            notes.push(format!("{} was written but its full name is unknown (cut by the kernel): its directory is allowed", comment_safe(path)));
        }
        if !path_text::is_plain(&dir) {
            let unsafe_dir = dir.clone();
            while !path_text::is_plain(&dir) {
                dir = path_text::parent(&dir).to_string();
            }
            notes.push(format!("WARNING: {} has characters a unit file cannot carry safely; its nearest plain ancestor {} is allowed instead", comment_safe(&unsafe_dir), dir));
            log::warn!("a written path with control or non-UTF-8 bytes ({unsafe_dir}) is covered by {dir} in ReadWritePaths=");
        }
        let evidence = format!("{} {}", writes.join(","), comment_safe(path));
        needed.entry(dir).or_default().push(evidence);
    }
    // Keep only the outermost of nested paths.
    let all: Vec<String> = needed.keys().cloned().collect();
    let mut lines = vec!["ProtectSystem=strict".to_string()];
    let mut why = vec!["the whole file system is read-only for the service, except what it was seen writing:".to_string()];
    for dir in &all {
        if all.iter().any(|other| other != dir && is_under(dir, other)) {
            continue;
        }
        let covered: Vec<String> = needed.iter().filter(|(d, _)| is_under(d, dir)).flat_map(|(_, e)| e.clone()).collect();
        why.push(format!("  {}: {} ({})", comment_safe(dir), some_of(covered.iter().map(String::as_str), 3), thousands(covered.len() as u64)));
        if let Some(hint) = directory_hint(dir) {
            why.push(format!("    {hint}"));
        }
        lines.push(format!("ReadWritePaths={}", unit_path(dir)));
    }
    if all.is_empty() {
        why.push("  nothing outside /dev, /proc, /sys and the private /tmp was written".to_string());
    }
    why.extend(notes);
    Verdict::Set { lines, why }
}

/// StateDirectory= and friends, where a path is a service's own directory: systemd then creates
/// and owns it, and the drop-in needs no ReadWritePaths= for it.
fn directory_hint(dir: &str) -> Option<String> {
    for (base, directive) in
        [("/var/lib", "StateDirectory"), ("/var/log", "LogsDirectory"), ("/run", "RuntimeDirectory"), ("/var/cache", "CacheDirectory")]
    {
        if let Some(rest) = dir.strip_prefix(base).and_then(|r| r.strip_prefix('/')) {
            return Some(format!("could be {directive}={} instead (systemd creates it and makes it writable)", comment_safe(rest)));
        }
    }
    None
}

/// A path as a unit file value: quoted, with `"` and `\` escaped and `%` doubled (specifiers).
pub fn unit_path(path: &str) -> String {
    let decoded = path.replace("\\\\", "\\");
    if decoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@,".contains(&b)) {
        return decoded;
    }
    let mut out = String::from("\"");
    for c in decoded.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn protect_home(ev: &Evidence) -> Verdict {
    let homes = ["/home", "/root", "/run/user"];
    let written: Vec<&str> = homes.iter().flat_map(|d| ev.written(d)).collect();
    let touched: Vec<&str> = homes.iter().flat_map(|d| ev.touched(d)).collect();
    if !written.is_empty() {
        open("ProtectHome", format!("home directories were written: {}", some_of(written.iter().copied(), 3)))
    } else if !touched.is_empty() {
        set(&["ProtectHome=read-only"], format!("home directories were only read: {}", some_of(touched.iter().copied(), 3)))
    } else {
        set(&["ProtectHome=yes"], "/home, /root and /run/user were never touched")
    }
}

fn network(ev: &Evidence, target: &Target) -> Vec<Verdict> {
    let families = ev.families();
    let mut verdicts = Vec::new();
    let mut listed: Vec<&str> = families.iter().copied().filter(|f| *f != "AF_UNSPEC").collect();
    let mut why = vec![if listed.is_empty() {
        "no socket was created".to_string()
    } else {
        format!("socket() families: {}", listed.iter().map(|f| format!("{f} ({})", some_of(ev.profile.families[*f].executables.iter().map(String::as_str), 2))).collect::<Vec<_>>().join(", "))
    }];
    if target.unit.get("Type").is_some_and(|t| t == "notify" || t == "notify-reload") && !listed.contains(&"AF_UNIX") {
        listed.push("AF_UNIX");
        why.push("AF_UNIX added: the unit is Type=notify and sd_notify needs it".into());
    }
    let line = if listed.is_empty() { "RestrictAddressFamilies=none".to_string() } else { format!("RestrictAddressFamilies={}", listed.join(" ")) };
    why.push("the empty assignment first resets the list; families the unit refused never reached the probes".into());
    verdicts.push(Verdict::Set { lines: vec!["RestrictAddressFamilies=".into(), line], why });

    let inet = families.contains("AF_INET") || families.contains("AF_INET6");
    let outward: Vec<&str> = ev.profile.sockets.iter().filter(|(_, s)| s.scope != "loopback").map(|(k, _)| k.as_str()).collect();
    if !inet && !families.contains("AF_NETLINK") && !families.contains("AF_PACKET") {
        verdicts.push(set(&["PrivateNetwork=yes"], "no inet, netlink or packet socket was created"));
        verdicts.push(set(&["IPAddressDeny=any"], "no inet socket was created"));
    } else {
        verdicts.push(open("PrivateNetwork", format!("the service uses the host network ({})", some_of(families.iter().copied().filter(|f| ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"].contains(f)), 4))));
        if outward.is_empty() {
            verdicts.push(Verdict::Set {
                lines: vec!["IPAddressDeny=any".into(), "IPAddressAllow=localhost".into()],
                why: vec!["every bind and connect was on a loopback address".into()],
            });
        } else {
            verdicts.push(pinned_peers(ev, target, &outward));
        }
    }
    verdicts.push(socket_bind(ev, target));
    verdicts
}

/// IPAddressAllow= for a service that reaches beyond loopback: only on request, and only when
/// every peer is known. Inbound clients are not observed, so a service listening beyond loopback
/// is never pinned: it would lock its own clients out.
fn pinned_peers(ev: &Evidence, target: &Target, outward: &[&str]) -> Verdict {
    let listening: Vec<&str> = ev.profile.sockets.iter().filter(|(_, s)| s.op == "bind" && s.scope != "loopback" && s.port != 0).map(|(k, _)| k.as_str()).collect();
    if !target.pin_peers {
        let hint = if listening.is_empty() { " (--pin-peers pins the peers connected to)" } else { "" };
        return open("IPAddressDeny", format!("binds or connects beyond loopback: {}{hint}", some_of(outward.iter().copied(), 3)));
    }
    if !listening.is_empty() {
        return open("IPAddressDeny", format!("not pinned: it listens beyond loopback ({}) and its clients' addresses are not observed", some_of(listening.iter().copied(), 3)));
    }
    if let Some(lost) = ev.profile.losses.get("peers_table_full") {
        return open("IPAddressDeny", format!("not pinned: {lost} connects to new peers were lost (table full)"));
    }
    let mut lines = vec!["IPAddressDeny=any".to_string(), "IPAddressAllow=localhost".to_string()];
    lines.extend(ev.profile.peers.keys().map(|peer| format!("IPAddressAllow={peer}")));
    let why = ev.profile.peers.iter().map(|(peer, u)| format!("{peer}: {} connects ({})", thousands(u.count), some_of(u.executables.iter().map(String::as_str), 2))).collect();
    Verdict::Set { lines, why }
}

fn socket_bind(ev: &Evidence, target: &Target) -> Verdict {
    let binds: Vec<_> = ev.profile.sockets.values().filter(|s| s.op == "bind").collect();
    if !target.bpf_framework {
        return open("SocketBindAllow", "the target systemd lacks +BPF_FRAMEWORK: it would accept the directive without enforcing it");
    }
    if binds.iter().any(|s| s.port == 0) {
        return open("SocketBindAllow", "a socket was bound to port 0 (an ephemeral port)");
    }
    let mut allows: BTreeSet<String> = BTreeSet::new();
    for b in &binds {
        allows.insert(format!("SocketBindAllow={}:{}:{}", b.family, b.protocol, b.port));
    }
    let mut lines = vec!["SocketBindDeny=any".to_string()];
    lines.extend(allows);
    let why = if binds.is_empty() { "no inet socket was bound".to_string() } else { format!("ports bound: {}", binds.iter().map(|b| format!("{}/{} {}", b.protocol, b.port, b.family)).collect::<Vec<_>>().join(", ")) };
    Verdict::Set { lines, why: vec![why] }
}

/// Devices PrivateDevices= keeps (drivers/char/mem.c and tty numbers): null, zero, full, random,
/// urandom, tty, ptmx, and the pts range.
fn private_devices_keeps(kind: &str, major: u32, minor: u32) -> bool {
    kind == "char" && ((major == 1 && [3, 5, 7, 8, 9].contains(&minor)) || (major == 5 && [0, 2].contains(&minor)) || (136..=143).contains(&major))
}

fn devices(ev: &Evidence) -> Vec<Verdict> {
    let devices = &ev.profile.devices;
    let others: Vec<&str> = devices.iter().filter(|(_, d)| !private_devices_keeps(&d.kind, d.major, d.minor)).map(|(k, _)| k.as_str()).collect();
    let caps: Vec<&str> = ["CAP_MKNOD", "CAP_SYS_RAWIO"].into_iter().filter(|c| ev.profile.capabilities.get(*c).is_some_and(|u| u.needed())).collect();
    if others.is_empty() && caps.is_empty() {
        let seen = if devices.is_empty() { "no device node was opened".to_string() } else { format!("only pseudo devices were opened ({})", some_of(devices.keys().map(String::as_str), 4)) };
        return vec![set(&["PrivateDevices=yes"], format!("{seen}; implies DevicePolicy=closed")) ];
    }
    let mut lines = vec!["DevicePolicy=closed".to_string()];
    let mut why = vec![format!("devices beyond the pseudo ones were opened: {}", some_of(others.iter().copied(), 4))];
    for (name, d) in devices {
        lines.push(format!("DeviceAllow=/dev/{}/{}:{} {}", d.kind, d.major, d.minor, d.access));
        why.push(format!("  {name} {} by {}", d.access, some_of(d.executables.iter().map(String::as_str), 2)));
    }
    vec![open("PrivateDevices", format!("{} opened", some_of(others.iter().copied().chain(caps), 4))), Verdict::Set { lines, why }]
}

fn namespaces(ev: &Evidence) -> Verdict {
    let kinds: Vec<&str> = ev.profile.namespaces.keys().map(String::as_str).collect();
    if kinds.contains(&"setns-any") {
        return open("RestrictNamespaces", "setns(2) was called without naming a namespace type");
    }
    if kinds.is_empty() {
        set(&["RestrictNamespaces=yes"], "no namespace was created or joined")
    } else {
        let line = format!("RestrictNamespaces={}", kinds.join(" "));
        Verdict::Set { lines: vec![line], why: vec![format!("namespaces created or joined: {}", kinds.join(", "))] }
    }
}

fn no_new_privileges(ev: &Evidence) -> Verdict {
    let setuid = ev.profile.acts.get("setuid-exec");
    match setuid {
        None => set(&["NoNewPrivileges=yes"], "no set-user-ID or set-group-ID program was executed"),
        Some(u) => open(
            "NoNewPrivileges",
            format!(
                "set-user-ID/set-group-ID programs ran ({}); note that SystemCallFilter= and the other seccomp-based lines imply it anyway once CAP_SYS_ADMIN is not kept",
                some_of(u.executables.iter().map(String::as_str), 3)
            ),
        ),
    }
}

fn proc_view(ev: &Evidence) -> Vec<Verdict> {
    let pids: Vec<&str> = ev.profile.paths.keys().filter(|p| p.strip_prefix("/proc/").is_some_and(|r| r.bytes().all(|b| b.is_ascii_digit()))).map(String::as_str).collect();
    let non_pid: Vec<&str> = ev
        .touched("/proc")
        .into_iter()
        .filter(|p| {
            let first = p.split('/').nth(2).unwrap_or("");
            !(first.is_empty() || first == "self" || first == "thread-self" || first.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    let mut out = vec![if pids.is_empty() {
        set(&["ProtectProc=invisible"], "no other process was looked up in /proc by number")
    } else {
        open("ProtectProc", format!("/proc entries of processes were read by number: {}", some_of(pids.iter().copied(), 3)))
    }];
    out.push(if non_pid.is_empty() {
        set(&["ProcSubset=pid"], "only per-process /proc entries were read")
    } else {
        open("ProcSubset", format!("system-wide /proc files were read: {}", some_of(non_pid.iter().copied(), 3)))
    });
    out
}

fn umask(ev: &Evidence) -> Verdict {
    let created: Vec<&str> = ev
        .profile
        .paths
        .iter()
        .filter(|(p, u)| u.ops.iter().any(|o| ["create", "mkdir", "mknod"].contains(&o.as_str())) && !["/dev", "/proc", "/sys"].iter().any(|d| is_under(p, d)))
        .map(|(p, _)| p.as_str())
        .collect();
    if created.is_empty() && !ev.syscalls.contains("umask") {
        set(&["UMask=0077"], "no file or directory was created")
    } else {
        open("UMask", format!("files were created ({}), and their modes for other users depend on it", some_of(created.iter().copied(), 2)))
    }
}
