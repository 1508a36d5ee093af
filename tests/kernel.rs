//! Root integration tests: the real eBPF object in the running kernel, known workloads in a
//! fresh cgroup, exact assertions on what the profile says.

use profiler_tests::{has_syscall, is_root_or_skip, needed_capabilities, record_command};

const WORKLOAD: &str = env!("CARGO_BIN_EXE_workload");

#[test]
fn chown_needs_cap_chown_and_a_chown_syscall() {
    if !is_root_or_skip("chown_needs_cap_chown_and_a_chown_syscall") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let profile = record_command(&[WORKLOAD, "chown", file.to_str().unwrap()]);
    assert!(has_syscall(&profile, "chown") || has_syscall(&profile, "fchownat"), "{:?}", profile.syscall_names());
    assert_eq!(needed_capabilities(&profile), ["CAP_CHOWN"]);
    let chown = &profile.capabilities["CAP_CHOWN"];
    // One check for the owner, one for the group (setattr_prepare's chown_ok and chgrp_ok).
    assert_eq!(chown.granted, 2);
    assert!(chown.executables.contains(WORKLOAD), "{:?}", chown.executables);
    assert_eq!(profile.recording.command_exit, Some(0));
    assert!(profile.losses.is_empty(), "{:?}", profile.losses);
}

#[test]
fn a_raw_icmp_socket_needs_cap_net_raw() {
    if !is_root_or_skip("a_raw_icmp_socket_needs_cap_net_raw") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "raw-icmp"]);
    assert!(has_syscall(&profile, "socket"));
    assert_eq!(needed_capabilities(&profile), ["CAP_NET_RAW"]);
}

#[test]
fn ordinary_work_on_own_files_needs_no_capability() {
    if !is_root_or_skip("ordinary_work_on_own_files_needs_no_capability") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = record_command(&[WORKLOAD, "own-files", dir.path().to_str().unwrap()]);
    assert!(needed_capabilities(&profile).is_empty(), "{:#?}", profile.capabilities);
    // The kernel did check CAP_SYS_ADMIN (overcommit accounting on mmap): a probe, not a need.
    let sys_admin = profile.capabilities.get("CAP_SYS_ADMIN").expect("mmap's overcommit probe was seen");
    assert!(sys_admin.probes > 0 && sys_admin.granted == 0, "{sys_admin:?}");
    for name in ["openat", "write", "read", "rename", "unlink", "mmap"] {
        assert!(has_syscall(&profile, name), "{name} missing from {:?}", profile.syscall_names());
    }
}

#[test]
fn a_process_outside_the_cgroup_contributes_nothing() {
    if !is_root_or_skip("a_process_outside_the_cgroup_contributes_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outside");
    std::fs::write(&file, b"x").unwrap();
    // Chowns and calls sysinfo(2) every 5 ms throughout the recording, from outside.
    let mut outsider = std::process::Command::new(WORKLOAD).args(["outsider", file.to_str().unwrap(), "3"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let inside = tempfile::tempdir().unwrap();
    let profile = record_command(&["/bin/sh", "-c", &format!("{WORKLOAD} own-files {}; sleep 1", inside.path().display())]);
    assert!(outsider.wait().unwrap().success());
    assert!(!has_syscall(&profile, "sysinfo"), "the outsider's sysinfo leaked in");
    assert!(!has_syscall(&profile, "fchownat") && !has_syscall(&profile, "chown"), "the outsider's chown leaked in");
    assert!(!profile.capabilities.contains_key("CAP_CHOWN"));
    // The inside workload itself was seen, so the filter did not simply drop everything.
    assert!(has_syscall(&profile, "rename"));
}

#[test]
fn a_forked_and_execd_grandchild_is_included() {
    if !is_root_or_skip("a_forked_and_execd_grandchild_is_included") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "grandchild"]);
    assert!(has_syscall(&profile, "times"), "the grandchild's times(2) is missing: {:?}", profile.syscall_names());
    let times = &profile.syscalls["x86_64"]["times"];
    assert_eq!(times.count, 1);
    assert!(times.executables.contains(WORKLOAD));
    assert!(has_syscall(&profile, "wait4"), "the child's wait is missing");
    assert_eq!(profile.executables[WORKLOAD].execs, 2, "the workload and its exec'd grandchild");
}

#[test]
fn error_returns_exit_and_sigreturn_are_recorded() {
    if !is_root_or_skip("error_returns_exit_and_sigreturn_are_recorded") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "errors"]);
    let errors: Vec<&str> = profile.errors.keys().map(String::as_str).collect();
    assert!(errors.contains(&"openat ENOENT"), "{errors:?}");
    assert!(errors.contains(&"socket EAFNOSUPPORT"), "{errors:?}");
    let socket = &profile.errors["socket EAFNOSUPPORT"];
    assert_eq!(socket.count, 1);
    assert!(socket.executables.contains(WORKLOAD), "{:?}", socket.executables);
    // Never returning, or returning with the syscall number cleared, these are counted apart.
    for call in ["exit_group", "rt_sigreturn", "execve"] {
        assert!(has_syscall(&profile, call), "{call} missing: {:?}", profile.syscalls);
    }

    // The control: the same binary doing none of it.
    let control = record_command(&[WORKLOAD, "marker"]);
    assert!(!control.errors.contains_key("socket EAFNOSUPPORT"), "{:?}", control.errors);
    assert!(!has_syscall(&control, "rt_sigreturn"), "{:?}", control.syscalls);
}

#[test]
fn a_call_a_seccomp_filter_kills_for_is_recorded_with_sigsys() {
    if !is_root_or_skip("a_call_a_seccomp_filter_kills_for_is_recorded_with_sigsys") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "seccomp-kill"]);
    assert_eq!(profile.recording.command_exit, Some(0), "the child was not killed by SIGSYS");
    let killed = profile.errors.get("getppid SIGSYS").unwrap_or_else(|| panic!("{:?}", profile.errors));
    assert_eq!(killed.count, 1);
    assert!(has_syscall(&profile, "getppid"));
    let control = record_command(&[WORKLOAD, "marker"]);
    assert!(!control.errors.keys().any(|k| k.ends_with("SIGSYS")), "{:?}", control.errors);
}
