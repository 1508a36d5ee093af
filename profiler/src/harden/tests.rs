//! Snapshot tests of whole drop-ins.

use super::*;
use crate::profile::{CallerUse, CapabilityUse, ExecutableUse, Host, Recording, SyscallUse, TargetKind};
use std::collections::BTreeMap;
use unit::UnitSecurity;

fn profile(syscalls: &[(&str, u64)], caps: &[(&str, CapabilityUse)]) -> Profile {
    let exe = "/usr/sbin/nginx".to_string();
    Profile {
        format: crate::profile::FORMAT.into(),
        version: crate::profile::VERSION,
        target: crate::profile::Target {
            kind: TargetKind::Unit,
            command: None,
            unit: Some("nginx.service".into()),
            cgroup: "/system.slice/nginx.service".into(),
        },
        host: Host { hostname: "web1".into(), kernel: "6.18.44".into(), arch: "x86_64".into() },
        recording: Recording {
            started: "2026-11-22T08:00:00Z".into(),
            ended: "2026-11-22T08:10:05Z".into(),
            seconds: 605.0,
            command_exit: None,
            ..Default::default()
        },
        syscalls: BTreeMap::from([(
            "x86_64".to_string(),
            syscalls
                .iter()
                .map(|(n, c)| (n.to_string(), SyscallUse { count: *c, executables: [exe.clone()].into(), seen: None, coverage: None }))
                .collect(),
        )]),
        capabilities: caps.iter().map(|(n, c)| (n.to_string(), c.clone())).collect(),
        executables: BTreeMap::from([(exe, ExecutableUse { execs: 1, seen: None, coverage: None })]),
        losses: BTreeMap::new(),
        ..Default::default()
    }
}

fn target() -> Target {
    Target::systemd(252, syscall_groups::SyscallGroups::builtin("252").unwrap())
}

fn options() -> Options {
    Options { syscall_action: SyscallAction::Errno("EPERM".into()), profile_name: "nginx.json".into(), pin_peers: false }
}

/// The drop-in as `generate` writes it.
fn text(p: &Profile, target: &Target, options: &Options) -> String {
    render(p, target, options).to_string()
}

fn cap(granted: u64, denied: u64, probes: u64, caller: &str) -> CapabilityUse {
    CapabilityUse {
        granted,
        denied,
        probes,
        executables: ["/usr/sbin/nginx".to_string()].into(),
        callers: BTreeMap::from([(caller.to_string(), CallerUse { granted: granted + probes, denied, probe: probes > 0 })]),
        seen: None,
        coverage: None,
    }
}

#[test]
fn a_web_server_dropin() {
    let p = profile(
        &[
            ("read", 500),
            ("write", 300),
            ("readv", 2),
            ("writev", 40),
            ("pread64", 1),
            ("pwrite64", 1),
            ("preadv", 1),
            ("pwritev", 1),
            ("preadv2", 1),
            ("pwritev2", 1),
            ("close", 90),
            ("close_range", 1),
            ("dup", 1),
            ("dup2", 1),
            ("dup3", 1),
            ("lseek", 3),
            ("openat", 80),
            ("accept4", 30),
            ("epoll_wait", 120),
            ("brk", 4),
            ("exit_group", 1),
        ],
        &[
            ("CAP_NET_BIND_SERVICE", cap(1, 0, 0, "inet_bind_sk")),
            ("CAP_SYS_ADMIN", cap(0, 0, 12, "cap_vm_enough_memory")),
            ("CAP_DAC_OVERRIDE", cap(0, 2, 0, "generic_permission")),
        ],
    );
    insta::assert_snapshot!(text(&p, &target(), &options()));
}

#[test]
fn syscalls_seen_through_fexit_leave_the_filter_open() {
    let mut p = profile(&[("read", 10), ("openat", 2)], &[]);
    p.recording.hooks.insert(crate::profile::SYSCALL_HOOKS.into(), ["fexit".to_string()].into());
    let out = text(&p, &target(), &options());
    assert!(lines_of(&out, "SystemCallFilter=").is_empty(), "{out}");
    assert!(out.contains("#   SystemCallFilter=: syscalls were recorded through fexit"), "{out}");
    p.recording.hooks.insert(crate::profile::SYSCALL_HOOKS.into(), ["tracepoint".to_string()].into());
    assert!(!lines_of(&text(&p, &target(), &options()), "SystemCallFilter=").is_empty());
}

#[test]
fn execs_seen_by_name_only_leave_no_new_privileges_open() {
    let mut p = profile(&[("read", 1)], &[]);
    assert!(!lines_of(&text(&p, &target(), &options()), "NoNewPrivileges=").is_empty());
    p.recording.hooks.insert(crate::profile::EXEC_HOOKS.into(), ["file".to_string(), "name-only".to_string()].into());
    let out = text(&p, &target(), &options());
    assert!(lines_of(&out, "NoNewPrivileges=").is_empty(), "{out}");
    assert!(out.contains("#   NoNewPrivileges=: the recorder could not read the files executed"), "{out}");
}

#[test]
fn nothing_needed_means_an_empty_bounding_set_and_kill() {
    let p = profile(&[("read", 1), ("exit_group", 1)], &[]);
    let dropin = text(&p, &target(), &Options { syscall_action: SyscallAction::Kill, ..options() });
    insta::assert_snapshot!(dropin);
    assert!(dropin.contains("\nCapabilityBoundingSet=\n\n"));
    assert!(!dropin.contains("SystemCallErrorNumber"));
}

#[test]
fn a_hostile_executable_name_stays_inside_its_comment() {
    let mut p = profile(&[("read", 1)], &[]);
    let evil = "/tmp/x\n[Service]\nExecStartPre=/bin/sh -c evil".to_string();
    p.syscalls.get_mut("x86_64").unwrap().get_mut("read").unwrap().executables.insert(evil.clone());
    p.executables.insert(evil, ExecutableUse { execs: 1, seen: None, coverage: None });
    let dropin = text(&p, &target(), &options());
    for line in dropin.lines() {
        assert!(line.is_empty() || line.starts_with('#') || line.starts_with('[') || line.contains('='), "{line:?}");
        assert!(!line.starts_with("ExecStartPre"), "{line:?}");
    }
    // Once as the section; elsewhere only escaped inside comments (the syscall's callers, and
    // PrivateTmp= left open because the program runs from /tmp).
    assert_eq!(dropin.lines().filter(|l| *l == "[Service]").count(), 1, "{dropin}");
    assert_eq!(dropin.matches("[Service]").count(), 1 + dropin.matches("/tmp/x\\n[Service]\\nExecStartPre").count());
    assert!(dropin.contains("/tmp/x\\n[Service]\\nExecStartPre"));
}

#[test]
fn compat_syscalls_keep_their_architecture() {
    let mut p = profile(&[("read", 1)], &[]);
    p.syscalls.insert("i386".into(), BTreeMap::from([("read".to_string(), SyscallUse { count: 1, ..Default::default() })]));
    let dropin = text(&p, &target(), &options());
    assert!(dropin.contains("\nSystemCallArchitectures=native x86\n"), "{dropin}");
    // Their arguments are not decoded: what those would decide is left open, with the reason.
    assert!(lines_of(&dropin, "ProtectSystem=").is_empty() && lines_of(&dropin, "RestrictNamespaces=").is_empty(), "{dropin}");
    assert!(
        dropin.contains("#   RestrictNamespaces=: syscalls were made through the i386 ABI, whose arguments are not decoded"),
        "{dropin}"
    );
}

fn with_paths(paths: &[(&str, &[&str])]) -> crate::profile::Profile {
    let mut p = profile(&[("read", 1)], &[]);
    for (path, ops) in paths {
        p.paths.insert(
            path.to_string(),
            crate::profile::PathUse {
                ops: ops.iter().map(|o| serde_json::from_value(serde_json::json!(o)).unwrap()).collect(),
                failures: Default::default(),
                executables: ["/usr/sbin/app".to_string()].into(),
                incomplete: false,
                seen: None,
                coverage: None,
            },
        );
    }
    p
}

fn lines_of(dropin: &str, key: &str) -> Vec<String> {
    dropin.lines().filter(|l| l.starts_with(key)).map(str::to_string).collect()
}

#[test]
fn read_write_paths_cover_every_write_with_the_fewest_entries() {
    let p = with_paths(&[
        ("/var/lib/app/db", &["write"]),
        ("/var/lib/app/db.tmp", &["create", "rename"]),
        ("/var/log/app/app.log", &["create"]),
        ("/var/log/app/old", &["mkdir"]),
        ("/run/app.pid", &["create", "unlink"]),
        ("/etc/app.conf", &["read"]),
        ("/dev/null", &["write"]),
    ]);
    let dropin = text(&p, &target(), &options());
    assert_eq!(
        lines_of(&dropin, "ReadWritePaths="),
        ["ReadWritePaths=-/run", "ReadWritePaths=-/var/lib/app", "ReadWritePaths=-/var/log/app"]
    );
    assert!(dropin.contains("could be StateDirectory=app"), "{dropin}");
    assert!(lines_of(&dropin, "UMask=").is_empty());
}

#[test]
fn hostile_file_names_cannot_inject_lines() {
    let p = with_paths(&[
        ("/var/lib/app/evil\\x0a[Service]\\x0aExecStartPost=/bin/sh", &["create"]),
        ("/var/lib/app/new\x0aline/ExecStart=x", &["create"]),
        ("/srv/with space/100%n \"q\"/f", &["create"]),
        ("/srv/\\xff\\xfe/f", &["create"]),
    ]);
    let dropin = text(&p, &target(), &options());
    // Every line is a comment, blank, a section header we wrote, or one of our settings.
    for line in dropin.lines() {
        assert!(line.is_empty() || line.starts_with('#') || line == "[Service]" || !line.contains("ExecStart"), "injected line: {line:?}");
    }
    assert_eq!(dropin.lines().filter(|l| *l == "[Service]").count(), 1);
    let rw = lines_of(&dropin, "ReadWritePaths=");
    // The newline-bearing directory is replaced by its plain ancestor, loudly.
    assert!(rw.contains(&"ReadWritePaths=-/var/lib/app".to_string()), "{rw:?}");
    assert!(dropin.contains("WARNING: /var/lib/app/new\\nline has characters"), "{dropin}");
    assert!(rw.contains(&"ReadWritePaths=-/srv".to_string()), "{rw:?}");
}

#[test]
fn unit_file_paths_are_quoted_and_escaped_per_systemd() {
    use super::quoting::unit_path;
    assert_eq!(unit_path("/var/lib/app"), "/var/lib/app");
    assert_eq!(unit_path("/srv/with space/100%n \"q\""), "\"/srv/with space/100%%n \\\"q\\\"\"");
    assert_eq!(unit_path("/srv/back\\\\slash"), "\"/srv/back\\\\slash\"");
}

#[test]
fn the_units_stricter_settings_are_kept_and_new_directives_need_a_new_systemd() {
    let p = with_paths(&[("/home/u/.cache/x", &["read"])]);
    let mut t = target();
    t.unit.insert("ProtectHome".into(), "yes".into());
    t.unit.insert("ProtectSystem".into(), "full".into());
    t.systemd_version = 245;
    let dropin = text(&p, &t, &options());
    assert!(lines_of(&dropin, "ProtectHome=").is_empty(), "read-only would weaken yes: {dropin}");
    assert!(dropin.contains("the unit already sets ProtectHome=yes"));
    assert_eq!(lines_of(&dropin, "ProtectSystem="), ["ProtectSystem=strict"]);
    assert!(lines_of(&dropin, "ProtectProc=").is_empty());
    assert!(dropin.contains("ProtectProc= needs systemd 247"));
}

/// systemd 257's stronger values are written for a 257 target, only where the evidence allows
/// them, and never in place of a unit's own value that is not weaker.
#[test]
fn a_newer_systemd_gets_its_stronger_values_and_an_older_one_never_sees_them() {
    let quiet = with_paths(&[("/var/lib/app/state", &["write"])]);
    let t257 = Target::systemd(257, syscall_groups::SyscallGroups::builtin("257").unwrap());
    let dropin = text(&quiet, &t257, &options());
    assert_eq!(lines_of(&dropin, "ProtectControlGroups="), ["ProtectControlGroups=strict"], "{dropin}");
    assert_eq!(lines_of(&dropin, "PrivateTmp="), ["PrivateTmp=disconnected"]);
    assert!(dropin.contains("#   PrivatePIDs=: the main process would become PID 1"), "257 offers it, the evidence is not there");
    let dropin = text(&quiet, &target(), &options());
    assert!(!dropin.contains("PrivatePIDs"), "252 has no PrivatePIDs=");
    assert_eq!(lines_of(&dropin, "ProtectControlGroups="), ["ProtectControlGroups=yes"]);
    assert_eq!(lines_of(&dropin, "PrivateTmp="), ["PrivateTmp=yes"]);

    // Its own cgroup read: a namespace would show it as the root, so only =yes.
    let reads_cgroup = with_paths(&[("/proc/self/cgroup", &["read"]), ("/tmp/x", &["create"])]);
    let dropin = text(&reads_cgroup, &t257, &options());
    assert_eq!(lines_of(&dropin, "ProtectControlGroups="), ["ProtectControlGroups=yes"]);
    assert!(dropin.contains("not =strict: control groups were read"), "{dropin}");
    assert_eq!(lines_of(&dropin, "PrivateTmp="), ["PrivateTmp=yes"], "/tmp was used");

    // The unit's own =private (a writable cgroup tree of its own) is not replaced by =yes,
    // nor its PrivateTmp=disconnected by =yes; systemd 257 shows the exact value as ...Ex=.
    let mut t = t257.clone();
    t.unit = settings(&[("Id", "app.service"), ("ProtectControlGroups", "yes"), ("ProtectControlGroupsEx", "private")]);
    t.unit.insert("PrivateTmp".into(), "yes".into());
    t.unit.insert("PrivateTmpEx".into(), "disconnected".into());
    let dropin = text(&reads_cgroup, &t, &options());
    assert!(lines_of(&dropin, "ProtectControlGroups=").is_empty(), "{dropin}");
    assert!(lines_of(&dropin, "PrivateTmp=").is_empty(), "{dropin}");
    let dropin = text(&quiet, &t, &options());
    assert_eq!(lines_of(&dropin, "ProtectControlGroups="), ["ProtectControlGroups=strict"], "strict is stronger than private");

    // The host name set: left open before 258, a host name of its own from 258.
    let mut sets_name = profile(&[("sethostname", 1)], &[]);
    sets_name.paths = quiet.paths.clone();
    assert!(lines_of(&text(&sets_name, &t257, &options()), "ProtectHostname=").is_empty());
    let t258 = Target { systemd_version: 258, ..t257.clone() };
    assert_eq!(lines_of(&text(&sets_name, &t258, &options()), "ProtectHostname="), ["ProtectHostname=private"]);
    assert_eq!(lines_of(&text(&quiet, &t258, &options()), "ProtectHostname="), ["ProtectHostname=yes"]);
}

#[test]
fn observed_acts_leave_their_directives_open_with_the_reason() {
    let mut p = with_paths(&[]);
    let exe: std::collections::BTreeSet<String> = ["/usr/bin/node".to_string()].into();
    p.acts.insert("mmap-write-exec".into(), crate::profile::ItemUse { count: 3, executables: exe.clone(), seen: None, coverage: None });
    p.namespaces.insert("mnt".into(), crate::profile::ItemUse { count: 1, executables: exe.clone(), seen: None, coverage: None });
    p.families.insert("AF_INET".into(), crate::profile::ItemUse { count: 1, executables: exe, seen: None, coverage: None });
    let dropin = text(&p, &target(), &options());
    assert!(lines_of(&dropin, "MemoryDenyWriteExecute=").is_empty());
    assert!(dropin.contains("#   MemoryDenyWriteExecute=: seen: mmap-write-exec"));
    assert_eq!(lines_of(&dropin, "RestrictNamespaces="), ["RestrictNamespaces=", "RestrictNamespaces=mnt"]);
    assert_eq!(lines_of(&dropin, "RestrictAddressFamilies="), ["RestrictAddressFamilies=", "RestrictAddressFamilies=AF_INET"]);
    assert!(lines_of(&dropin, "PrivateNetwork=").is_empty());
}

fn socket(op: &str, scope: &str, port: u16) -> crate::profile::SocketUse {
    crate::profile::SocketUse {
        op: op.into(),
        family: "ipv4".into(),
        protocol: "tcp".into(),
        scope: scope.into(),
        port,
        count: 1,
        ..Default::default()
    }
}

#[test]
fn peers_are_pinned_only_on_request_and_never_for_a_listener() {
    let mut p = with_paths(&[]);
    let exe: std::collections::BTreeSet<String> = ["/usr/bin/agent".to_string()].into();
    p.families.insert("AF_INET".into(), crate::profile::ItemUse { count: 2, executables: exe.clone(), seen: None, coverage: None });
    p.sockets.insert("connect ipv4 tcp other:443".into(), socket("connect", "other", 443));
    p.peers.insert("192.0.2.7".into(), crate::profile::ItemUse { count: 2, executables: exe.clone(), seen: None, coverage: None });
    p.peers.insert("2001:db8:1:2::/64".into(), crate::profile::ItemUse { count: 1, executables: exe, seen: None, coverage: None });

    let unpinned = text(&p, &target(), &options());
    assert!(lines_of(&unpinned, "IPAddress").is_empty());
    assert!(unpinned.contains("--pin-peers pins the peers connected to"), "{unpinned}");

    let pinning = Options { pin_peers: true, ..options() };
    let pinned = text(&p, &target(), &pinning);
    assert_eq!(
        lines_of(&pinned, "IPAddress"),
        ["IPAddressDeny=any", "IPAddressAllow=localhost", "IPAddressAllow=192.0.2.7", "IPAddressAllow=2001:db8:1:2::/64"]
    );

    // A listener's clients are not observed: pinning would lock them out.
    p.sockets.insert("bind ipv4 tcp any:80".into(), socket("bind", "any", 80));
    let listener = text(&p, &target(), &pinning);
    assert!(lines_of(&listener, "IPAddress").is_empty());
    assert!(listener.contains("not pinned: it listens beyond loopback (bind ipv4 tcp any:80)"), "{listener}");

    // A lost peer would be locked out too.
    p.sockets.remove("bind ipv4 tcp any:80");
    p.losses.insert("peers_table_full".into(), 5);
    let lossy = text(&p, &target(), &pinning);
    assert!(lines_of(&lossy, "IPAddress").is_empty());
    assert!(lossy.contains("5 connects to new peers were lost"), "{lossy}");
}

fn item(count: u64) -> crate::profile::ItemUse {
    crate::profile::ItemUse { count, executables: ["/usr/bin/d".to_string()].into(), seen: None, coverage: None }
}

/// The case: a unit that refuses the clock, namespaces and netlink, whose process keeps
/// trying all three, each refused.
fn tries_what_it_is_refused() -> Profile {
    let mut p = profile(&[("read", 10), ("clock_settime", 3), ("unshare", 1), ("socket", 2), ("exit_group", 1)], &[]);
    p.errors.insert("clock_settime EPERM".into(), item(3));
    p.errors.insert("unshare EPERM".into(), item(1));
    p.refused.insert("namespace net EPERM".into(), item(1));
    p.refused.insert("family AF_NETLINK EAFNOSUPPORT".into(), item(1));
    p.families.insert("AF_UNIX".into(), item(1));
    p
}

fn settings(lines: &[(&str, &str)]) -> BTreeMap<String, String> {
    lines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn a_refused_attempt_is_no_need() {
    let dropin = text(&tries_what_it_is_refused(), &target(), &options());
    let filter = lines_of(&dropin, "SystemCallFilter=").join(" ");
    assert!(!filter.contains("clock_settime") && !filter.contains("unshare"), "{filter}");
    assert!(dropin.contains("#   clock_settime 3 (EPERM) by /usr/bin/d"), "{dropin}");
    assert_eq!(lines_of(&dropin, "RestrictAddressFamilies="), ["RestrictAddressFamilies=", "RestrictAddressFamilies=AF_UNIX"]);
    assert_eq!(lines_of(&dropin, "RestrictNamespaces="), ["RestrictNamespaces=yes"]);
    assert_eq!(lines_of(&dropin, "ProtectClock="), ["ProtectClock=yes"]);
    assert!(dropin.contains("refused when asked for, so not needed and not allowed: AF_NETLINK EAFNOSUPPORT"), "{dropin}");
}

#[test]
fn nothing_the_unit_refuses_comes_back_even_from_a_profile_that_says_it_succeeded() {
    // A profile of a run elsewhere (or of an older profiler that did not tell refusals apart):
    // it says the clock was set, a net namespace made, netlink used and CAP_SYS_ADMIN granted.
    let mut p = profile(
        &[("read", 10), ("clock_settime", 3), ("unshare", 1), ("socket", 2), ("exit_group", 1)],
        &[("CAP_SYS_ADMIN", cap(2, 0, 0, "ns_capable")), ("CAP_CHOWN", cap(1, 0, 0, "chown_common"))],
    );
    p.namespaces.insert("net".into(), item(1));
    p.families.insert("AF_NETLINK".into(), item(1));
    p.families.insert("AF_UNIX".into(), item(1));
    let mut t = target();
    t.unit = settings(&[
        ("SystemCallFilter", "~adjtimex clock_adjtime clock_settime settimeofday"),
        ("RestrictNamespaces", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_UNIX"),
        ("CapabilityBoundingSet", "cap_chown cap_net_bind_service"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0027"),
    ]);
    let composed = compose(&p, &t, &options());
    let unit = t.unit_security().unwrap();
    let every = filterable_syscalls();
    assert_eq!(unit.loosened_by(&unit.with_dropin(&composed, &t.groups), &every), Vec::<&str>::new(), "{composed}");
    let dropin = composed.to_string();
    assert!(!lines_of(&dropin, "SystemCallFilter=").join(" ").contains("clock_settime"), "{dropin}");
    // The unit's RestrictNamespaces=yes is as strict as it gets: kept, with no line of ours.
    assert!(lines_of(&dropin, "RestrictNamespaces=").is_empty(), "{dropin}");
    assert!(dropin.contains("outside the unit's own RestrictNamespaces=, and kept so: net"), "{dropin}");
    assert_eq!(lines_of(&dropin, "RestrictAddressFamilies="), ["RestrictAddressFamilies=", "RestrictAddressFamilies=AF_UNIX"]);
    assert_eq!(lines_of(&dropin, "CapabilityBoundingSet="), ["CapabilityBoundingSet=", "CapabilityBoundingSet=CAP_CHOWN"]);
    assert_eq!(lines_of(&dropin, "SystemCallArchitectures="), ["SystemCallArchitectures=native"]);
    assert!(dropin.contains("Laid over the unit's own settings"), "{dropin}");
}

#[test]
fn an_abi_the_unit_refuses_stays_refused() {
    let mut p = profile(&[("read", 1)], &[]);
    p.syscalls.insert("i386".into(), BTreeMap::from([("read".to_string(), SyscallUse { count: 1, ..Default::default() })]));
    let mut t = target();
    t.unit = settings(&[("SystemCallArchitectures", "native")]);
    let dropin = text(&p, &t, &options());
    assert_eq!(lines_of(&dropin, "SystemCallArchitectures="), ["SystemCallArchitectures=native"], "{dropin}");
    assert!(dropin.contains("# The unit does not allow i386: kept refused."), "{dropin}");
    // i386 calls were made, whose arguments are not decoded: the namespaces are not judged.
    assert!(dropin.contains("#   RestrictNamespaces=: syscalls were made through the i386 ABI"), "{dropin}");
}

#[test]
fn the_check_in_code_takes_out_a_line_that_would_loosen() {
    let mut t = target();
    t.unit = settings(&[("CapabilityBoundingSet", "cap_chown")]);
    let unit = t.unit_security().unwrap();
    let mut dropin = DropIn::default();
    let mut block = Block::default();
    block.set("CapabilityBoundingSet", "").set("CapabilityBoundingSet", "CAP_CHOWN CAP_SYS_ADMIN").set("ProtectClock", "yes");
    dropin.blocks.push(block);
    never_loosen(&mut dropin, &unit, &t.groups);
    assert_eq!(dropin.settings().map(ToString::to_string).collect::<Vec<_>>(), ["ProtectClock=yes"]);
    assert_eq!(dropin.left_open.iter().map(|o| o.directive.as_str()).collect::<Vec<_>>(), ["CapabilityBoundingSet"]);
}

use crate::test_rng::Rng;

const SYSCALLS: &[&str] = &["read", "write", "openat", "clock_settime", "mount", "unshare", "socket", "bpf", "setuid", "chown", "mlockall"];
const FAMILIES: &[&str] = &["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"];
const NAMESPACES: &[&str] = &["mnt", "net", "user", "pid", "uts"];
const CAPS: &[&str] = &["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETUID"];

/// `systemctl show` settings a unit might have: each list absent, an allow list or a deny list.
/// An allow list holds systemd's `@default`, less perhaps a member the unit took out of it.
fn random_settings(r: &mut Rng, groups: &syscall_groups::SyscallGroups) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    if r.coin() {
        let value = if r.coin() {
            format!("~{}", r.some(SYSCALLS).join(" "))
        } else {
            let taken_out = r.pick(&["execve", "getpid", "none"]);
            let default = groups.always_allowed().iter().map(String::as_str).filter(|c| *c != taken_out);
            default.chain(r.some(SYSCALLS)).collect::<Vec<_>>().join(" ")
        };
        s.insert("SystemCallFilter".to_string(), value);
    }
    let mut list = |r: &mut Rng, key: &str, pool: &[&str]| {
        if r.coin() {
            let deny = if r.coin() { "~" } else { "" };
            s.insert(key.to_string(), format!("{deny}{}", r.some(pool).join(" ")));
        }
    };
    list(r, "RestrictAddressFamilies", FAMILIES);
    if r.coin() {
        let value = if r.coin() { "yes".to_string() } else { r.some(NAMESPACES).join(" ") };
        s.insert("RestrictNamespaces".into(), value);
    }
    if r.coin() {
        s.insert("CapabilityBoundingSet".into(), r.some(CAPS).iter().map(|c| c.to_ascii_lowercase()).collect::<Vec<_>>().join(" "));
    }
    if r.coin() {
        s.insert("SystemCallArchitectures".into(), r.pick(&["native", "native x86"]).into());
    }
    for (key, values) in [
        ("ProtectSystem", &["no", "yes", "full", "strict"][..]),
        ("ProtectHome", &["no", "read-only", "tmpfs", "yes"][..]),
        ("ProtectProc", &["default", "invisible", "noaccess"][..]),
        ("KeyringMode", &["inherit", "shared", "private"][..]),
        ("UMask", &["0022", "0027", "0077", "0277"][..]),
        ("IPAddressDeny", &["", "any"][..]),
        ("IPAddressAllow", &["", "10.0.0.0/8"][..]),
        ("NoNewPrivileges", &["no", "yes"][..]),
        ("PrivateNetwork", &["no", "yes"][..]),
        ("PrivateDevices", &["no", "yes"][..]),
        ("MemoryDenyWriteExecute", &["no", "yes"][..]),
        ("Type", &["simple", "notify"][..]),
        ("PrivateTmp", &["no", "yes", "disconnected"][..]),
        ("ProtectControlGroups", &["no", "yes", "private", "strict"][..]),
        ("ProtectHostname", &["no", "yes", "private"][..]),
    ] {
        if r.coin() {
            s.insert(key.to_string(), r.pick(values).to_string());
        }
    }
    s
}

fn random_profile(r: &mut Rng) -> Profile {
    let calls: Vec<(&str, u64)> = r.some(SYSCALLS).into_iter().map(|c| (c, 1 + r.next() % 5)).collect();
    let caps: Vec<(&str, CapabilityUse)> =
        r.some(CAPS).into_iter().map(|c| (c, cap(r.next() % 3, r.next() % 2, r.next() % 2, "some_caller"))).collect();
    let mut p = profile(&calls, &caps);
    for (name, count) in &calls {
        if r.coin() {
            p.errors.insert(format!("{name} {}", r.pick(&["EPERM", "ENOSYS", "ENOENT"])), item(*count));
        }
    }
    for f in r.some(FAMILIES) {
        p.families.insert(f.into(), item(1));
    }
    for n in r.some(NAMESPACES) {
        p.namespaces.insert(n.into(), item(1));
    }
    if r.coin() {
        p.syscalls.insert("i386".into(), BTreeMap::from([("read".to_string(), SyscallUse { count: 1, ..Default::default() })]));
    }
    if r.coin() {
        p.sockets.insert(
            "connect ipv4 tcp other:443".into(),
            crate::profile::SocketUse {
                op: "connect".into(),
                family: "ipv4".into(),
                protocol: "tcp".into(),
                scope: "other".into(),
                port: 443,
                count: 1,
                ..Default::default()
            },
        );
        p.peers.insert("192.0.2.7".into(), item(1));
    }
    p
}

#[test]
fn laid_over_any_unit_the_dropin_allows_a_subset_of_what_the_unit_allowed() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..400 {
        let version = [252, 257, 258][r.below(3) as usize];
        let mut t = Target::systemd(version, syscall_groups::SyscallGroups::builtin_for(version).unwrap());
        t.unit = random_settings(&mut r, &t.groups);
        t.bpf_framework = r.coin();
        let p = random_profile(&mut r);
        let options = Options { pin_peers: r.coin(), ..options() };
        let unit = t.unit_security().unwrap_or_else(|| UnitSecurity::from_show(&t.unit));
        let every = filterable_syscalls();
        // The generator itself keeps within the unit, without the check in `render`...
        let composed = compose(&p, &t, &options);
        let loosened = unit.loosened_by(&unit.with_dropin(&composed, &t.groups), &every);
        assert!(loosened.is_empty(), "case {case}: {loosened:?} loosened\nunit: {:?}\n{composed}", t.unit);
        // ...and what `render` returns does too.
        let rendered = render(&p, &t, &options);
        assert!(unit.loosened_by(&unit.with_dropin(&rendered, &t.groups), &every).is_empty(), "case {case}");
    }
}

#[test]
fn read_write_paths_never_open_what_the_unit_closed() {
    let p = with_paths(&[("/var/lib/app/db", &["write"]), ("/etc/app/x", &["write"])]);
    let mut t = target();
    t.unit = settings(&[("ProtectSystem", "full")]);
    let dropin = text(&p, &t, &options());
    assert!(lines_of(&dropin, "ReadWritePaths=").is_empty() && lines_of(&dropin, "ProtectSystem=").is_empty(), "{dropin}");
    assert!(dropin.contains("#   ProtectSystem=: written where the unit's own settings do not allow it"), "{dropin}");
    // Where the unit's own ReadWritePaths= (or StateDirectory=) opens it again, it may be named.
    let p = with_paths(&[("/var/lib/app/db", &["write"]), ("/var/log/app/x.log", &["write"])]);
    t.unit = settings(&[("ProtectSystem", "strict"), ("ReadWritePaths", "-/var/lib/app"), ("LogsDirectory", "app")]);
    let dropin = text(&p, &t, &options());
    assert_eq!(lines_of(&dropin, "ReadWritePaths="), ["ReadWritePaths=-/var/lib/app/db", "ReadWritePaths=-/var/log/app/x.log"], "{dropin}");
}
