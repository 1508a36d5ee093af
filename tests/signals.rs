//! Root integration tests, one per sandbox signal: a workload that triggers it, and the same
//! assertion failing on a control workload (own-files) that does not.

use std::sync::OnceLock;

use profiler_tests::{Profile, is_root_or_skip, record_command};

const WORKLOAD: &str = env!("CARGO_BIN_EXE_workload");

/// The control: ordinary file work in a private directory, recorded once for all tests.
fn control() -> &'static Profile {
    static CONTROL: OnceLock<Profile> = OnceLock::new();
    CONTROL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        record_command(&[WORKLOAD, "own-files", dir.path().to_str().unwrap()])
    })
}

fn ops<'a>(profile: &'a Profile, path: &str) -> Vec<&'a str> {
    profile.paths.get(path).map(|u| u.ops.iter().map(|op| op.name()).collect()).unwrap_or_default()
}

#[test]
fn relative_and_dirfd_mkdirs_resolve_to_absolute_paths() {
    if !is_root_or_skip("relative_and_dirfd_mkdirs_resolve_to_absolute_paths") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let base = base.to_str().unwrap();
    let profile = record_command(&[WORKLOAD, "mkdir-relative", base]);
    assert_eq!(ops(&profile, &format!("{base}/cwd-made")), ["mkdir"], "{:#?}", profile.paths);
    assert_eq!(ops(&profile, &format!("{base}/sub/rel")), ["mkdir"], "{:#?}", profile.paths);
    assert!(!profile.paths.keys().any(|p| p.ends_with("/rel") && !p.ends_with("/sub/rel")));
    assert!(profile.losses.is_empty(), "{:?}", profile.losses);
    // The control wrote only its own file, by name, and made no directory.
    let control = control();
    assert!(control.paths.iter().all(|(_, u)| !u.ops.contains(&profiler::profile::PathOp::Mkdir)), "{:#?}", control.paths);
    assert!(control.paths.keys().any(|p| p.ends_with("/own-file")), "{:#?}", control.paths);
}

#[test]
fn a_netlink_socket_shows_its_family() {
    if !is_root_or_skip("a_netlink_socket_shows_its_family") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "netlink"]);
    assert!(profile.families.contains_key("AF_NETLINK"), "{:?}", profile.families);
    assert!(profile.families["AF_NETLINK"].executables.contains(WORKLOAD));
    assert!(!control().families.contains_key("AF_NETLINK"), "{:?}", control().families);
}

#[test]
fn dev_null_and_dev_zero_are_told_apart() {
    if !is_root_or_skip("dev_null_and_dev_zero_are_told_apart") {
        return;
    }
    let null = record_command(&[WORKLOAD, "dev-null"]);
    let zero = record_command(&[WORKLOAD, "dev-zero"]);
    assert_eq!(null.devices.get("char 1:3").map(|d| d.access.as_str()), Some("w"), "{:?}", null.devices);
    assert!(!null.devices.contains_key("char 1:5"), "{:?}", null.devices);
    assert_eq!(zero.devices.get("char 1:5").map(|d| d.access.as_str()), Some("r"), "{:?}", zero.devices);
    assert!(!zero.devices.contains_key("char 1:3"), "{:?}", zero.devices);
}

#[test]
fn unshare_of_a_mount_namespace_is_seen() {
    if !is_root_or_skip("unshare_of_a_mount_namespace_is_seen") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "unshare-mnt"]);
    assert_eq!(profile.namespaces.keys().collect::<Vec<_>>(), ["mnt"]);
    assert!(control().namespaces.is_empty(), "{:?}", control().namespaces);
}

#[test]
fn a_writable_executable_mapping_is_seen() {
    if !is_root_or_skip("a_writable_executable_mapping_is_seen") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "write-exec"]);
    assert!(profile.acts.contains_key("mmap-write-exec"), "{:?}", profile.acts);
    assert!(!control().acts.contains_key("mmap-write-exec"), "{:?}", control().acts);
}

#[test]
fn a_set_user_id_mode_is_seen() {
    if !is_root_or_skip("a_set_user_id_mode_is_seen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("helper");
    let profile = record_command(&[WORKLOAD, "setuid-mode", file.to_str().unwrap()]);
    assert!(profile.acts.contains_key("setuid-mode 04755"), "{:?}", profile.acts);
    assert!(control().acts.keys().all(|k| !k.starts_with("setuid")), "{:?}", control().acts);
}

#[test]
fn loopback_binds_and_connects_are_seen_by_the_cgroup_hooks() {
    if !is_root_or_skip("loopback_binds_and_connects_are_seen_by_the_cgroup_hooks") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "bind-loopback"]);
    let keys: Vec<&str> = profile.sockets.keys().map(String::as_str).collect();
    assert!(keys.contains(&"bind ipv4 tcp loopback:47311"), "{keys:?}");
    assert!(keys.contains(&"connect ipv4 tcp loopback:47311"), "{keys:?}");
    assert!(profile.families.contains_key("AF_INET"));
    assert!(control().sockets.is_empty(), "{:?}", control().sockets);
}

#[test]
fn reads_of_other_processes_and_tunables_are_kept() {
    if !is_root_or_skip("reads_of_other_processes_and_tunables_are_kept") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "read-proc"]);
    // std::fs::read also stats the file it opened.
    assert!(ops(&profile, "/proc/1").contains(&"read"), "{:#?}", profile.paths);
    assert!(ops(&profile, "/proc/sys/kernel").contains(&"read"), "{:#?}", profile.paths);
    assert!(!control().paths.contains_key("/proc/1"), "{:#?}", control().paths);
    assert!(!control().paths.contains_key("/proc/sys/kernel"), "{:#?}", control().paths);
}

#[test]
fn a_personality_change_is_seen_and_a_query_is_not() {
    if !is_root_or_skip("a_personality_change_is_seen_and_a_query_is_not") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "personality"]);
    let personas: Vec<&str> = profile.acts.keys().filter(|k| k.starts_with("personality")).map(String::as_str).collect();
    assert_eq!(personas, ["personality 0x0", "personality 0x8"], "{:?}", profile.acts);
    assert!(control().acts.keys().all(|k| !k.starts_with("personality")), "{:?}", control().acts);
}

#[test]
fn a_realtime_policy_is_seen() {
    if !is_root_or_skip("a_realtime_policy_is_seen") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "realtime"]);
    let policies: Vec<&str> = profile.acts.keys().filter(|k| k.starts_with("realtime")).map(String::as_str).collect();
    assert_eq!(policies, ["realtime SCHED_FIFO"], "{:?}", profile.acts);
    assert!(control().acts.keys().all(|k| !k.starts_with("realtime")), "{:?}", control().acts);
}

#[test]
fn setns_names_the_namespace_kind() {
    if !is_root_or_skip("setns_names_the_namespace_kind") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "setns-net"]);
    assert_eq!(profile.namespaces.keys().collect::<Vec<_>>(), ["net"], "{:?}", profile.namespaces);
}

#[test]
fn running_a_set_user_id_program_is_seen() {
    if !is_root_or_skip("running_a_set_user_id_program_is_seen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = record_command(&[WORKLOAD, "setuid-exec", dir.path().to_str().unwrap()]);
    let exec = profile.acts.get("setuid-exec").unwrap_or_else(|| panic!("{:?}", profile.acts));
    assert!(exec.executables.iter().any(|e| e.ends_with("/suid-true")), "{:?}", exec.executables);
    // The recording says it could see them, so the drop-in may decide NoNewPrivileges=.
    assert!(!profile.recording.set_id_execs_unseen(), "{:?}", profile.recording.hooks);
    assert_eq!(profile.recording.hooks.get("execs"), Some(&["file".to_string()].into()), "{:?}", profile.recording.hooks);
    assert!(!control().acts.contains_key("setuid-exec"), "{:?}", control().acts);
}

#[test]
fn peers_beyond_loopback_are_kept_for_pinning() {
    if !is_root_or_skip("peers_beyond_loopback_are_kept_for_pinning") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "connect-peers"]);
    assert_eq!(profile.peers.keys().collect::<Vec<_>>(), ["192.0.2.7", "2001:db8:1:2::/64"], "{:?}", profile.peers);
    // Loopback peers are not kept: the bind-loopback workload connects only to 127.0.0.1.
    let loopback = record_command(&[WORKLOAD, "bind-loopback"]);
    assert!(loopback.peers.is_empty(), "{:?}", loopback.peers);
    assert!(control().peers.is_empty(), "{:?}", control().peers);
}
