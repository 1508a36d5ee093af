//! Snapshot tests of whole drop-ins.

use super::*;
use crate::profile::{CallerUse, CapabilityUse, ExecutableUse, Host, Recording, SyscallUse, Target, TargetKind};
use std::collections::BTreeMap;

fn profile(syscalls: &[(&str, u64)], caps: &[(&str, CapabilityUse)]) -> Profile {
    let exe = "/usr/sbin/nginx".to_string();
    Profile {
        format: crate::profile::FORMAT.into(),
        version: crate::profile::VERSION,
        target: Target { kind: TargetKind::Unit, command: None, unit: Some("nginx.service".into()), cgroup: "/system.slice/nginx.service".into() },
        host: Host { hostname: "web1".into(), kernel: "6.18.44".into(), arch: "x86_64".into() },
        recording: Recording {
            started: "2026-11-22T08:00:00Z".into(),
            ended: "2026-11-22T08:10:05Z".into(),
            seconds: 605.0,
            command_exit: None,
        },
        syscalls: BTreeMap::from([(
            "x86_64".to_string(),
            syscalls
                .iter()
                .map(|(n, c)| (n.to_string(), SyscallUse { count: *c, executables: [exe.clone()].into() }))
                .collect(),
        )]),
        capabilities: caps.iter().map(|(n, c)| (n.to_string(), c.clone())).collect(),
        executables: BTreeMap::from([(exe, ExecutableUse { execs: 1 })]),
        losses: BTreeMap::new(),
    }
}

fn options() -> Options {
    Options { syscall_action: SyscallAction::Errno("EPERM".into()), profile_name: "nginx.json".into() }
}

fn cap(granted: u64, denied: u64, probes: u64, caller: &str) -> CapabilityUse {
    CapabilityUse {
        granted,
        denied,
        probes,
        executables: ["/usr/sbin/nginx".to_string()].into(),
        callers: BTreeMap::from([(caller.to_string(), CallerUse { granted: granted + probes, denied, probe: probes > 0 })]),
    }
}

#[test]
fn a_web_server_dropin() {
    let p = profile(
        &[
            ("read", 500), ("write", 300), ("readv", 2), ("writev", 40), ("pread64", 1), ("pwrite64", 1),
            ("preadv", 1), ("pwritev", 1), ("preadv2", 1), ("pwritev2", 1), ("close", 90), ("close_range", 1),
            ("dup", 1), ("dup2", 1), ("dup3", 1), ("lseek", 3),
            ("openat", 80), ("accept4", 30), ("epoll_wait", 120), ("brk", 4), ("exit_group", 1),
        ],
        &[
            ("CAP_NET_BIND_SERVICE", cap(1, 0, 0, "inet_bind_sk")),
            ("CAP_SYS_ADMIN", cap(0, 0, 12, "cap_vm_enough_memory")),
            ("CAP_DAC_OVERRIDE", cap(0, 2, 0, "generic_permission")),
        ],
    );
    let groups = SyscallGroups::builtin("252").unwrap();
    insta::assert_snapshot!(render(&p, &groups, &options()));
}

#[test]
fn nothing_needed_means_an_empty_bounding_set_and_kill() {
    let p = profile(&[("read", 1), ("exit_group", 1)], &[]);
    let groups = SyscallGroups::builtin("252").unwrap();
    let dropin = render(&p, &groups, &Options { syscall_action: SyscallAction::Kill, ..options() });
    insta::assert_snapshot!(dropin);
    assert!(dropin.ends_with("CapabilityBoundingSet=\n"));
    assert!(!dropin.contains("SystemCallErrorNumber"));
}

#[test]
fn a_hostile_executable_name_stays_inside_its_comment() {
    let mut p = profile(&[("read", 1)], &[]);
    let evil = "/tmp/x\n[Service]\nExecStartPre=/bin/sh -c evil".to_string();
    p.syscalls.get_mut("x86_64").unwrap().get_mut("read").unwrap().executables.insert(evil.clone());
    p.executables.insert(evil, ExecutableUse { execs: 1 });
    let dropin = render(&p, &SyscallGroups::builtin("252").unwrap(), &options());
    for line in dropin.lines() {
        assert!(line.is_empty() || line.starts_with('#') || line.starts_with('[') || line.contains('='), "{line:?}");
        assert!(!line.starts_with("ExecStartPre"), "{line:?}");
    }
    assert_eq!(dropin.matches("[Service]").count(), 2, "once as the section, once escaped in a comment");
    assert!(dropin.contains("/tmp/x\\n[Service]\\nExecStartPre"));
}

#[test]
fn compat_syscalls_keep_their_architecture() {
    let mut p = profile(&[("read", 1)], &[]);
    p.syscalls.insert("i386".into(), BTreeMap::from([("read".to_string(), SyscallUse { count: 1, executables: Default::default() })]));
    let dropin = render(&p, &SyscallGroups::builtin("252").unwrap(), &options());
    assert!(dropin.contains("\nSystemCallArchitectures=native x86\n"), "{dropin}");
}
