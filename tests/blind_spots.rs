//! Root tests of the two invariants on the real eBPF object: an attempt the sandbox refused is
//! kept as a refusal and allowed by no line, and a directive whose evidence the recorder could
//! not see (io_uring, hidden kernel symbols) is left open with the reason, never decided.

use profiler_tests::{is_root_or_skip, lines_of, record_and_generate};

const WORKLOAD: &str = env!("CARGO_BIN_EXE_workload");

#[test]
fn what_the_sandbox_refused_is_a_refusal_and_no_line_allows_it() {
    if !is_root_or_skip("what_the_sandbox_refused_is_a_refusal_and_no_line_allows_it") {
        return;
    }
    let (profile, dropin) = record_and_generate(&[WORKLOAD, "refused"]);
    assert_eq!(profile.recording.command_exit, Some(0));
    // Kept as refusals, with the errno each got...
    assert!(profile.refused.contains_key("namespace net EPERM"), "{:?}", profile.refused);
    assert!(profile.refused.contains_key("family AF_DECnet EAFNOSUPPORT"), "{:?}", profile.refused);
    assert!(profile.refused_syscalls().contains_key(&("x86_64", "clock_settime")), "{:?}", profile.errors);
    // ...and never as uses.
    assert!(!profile.namespaces.contains_key("net") && !profile.families.contains_key("AF_DECnet"));
    // No line allows them: the clock, a net namespace, DECnet.
    assert!(!lines_of(&dropin, "SystemCallFilter=").join(" ").contains("clock_settime"), "{dropin}");
    assert_eq!(lines_of(&dropin, "RestrictNamespaces="), ["RestrictNamespaces=yes"], "{dropin}");
    assert!(!lines_of(&dropin, "RestrictAddressFamilies=").join(" ").contains("AF_DECnet"), "{dropin}");
    assert_eq!(lines_of(&dropin, "ProtectClock="), ["ProtectClock=yes"], "{dropin}");
    // Recorded through fexit (forced), the syscall filter is left open with the reason.
    if profile.recording.hooks.get("syscalls").is_some_and(|hooks| hooks.contains("fexit")) {
        assert!(lines_of(&dropin, "SystemCallFilter=").is_empty(), "{dropin}");
        assert!(dropin.contains("#   SystemCallFilter=: syscalls were recorded through fexit"), "{dropin}");
    } else {
        assert!(dropin.contains("# Refused every time they were tried, so no need and not allowed:"), "{dropin}");
    }
}

#[test]
fn the_child_side_of_a_fork_is_not_a_second_call() {
    if !is_root_or_skip("the_child_side_of_a_fork_is_not_a_second_call") {
        return;
    }
    let (profile, _) = record_and_generate(&[WORKLOAD, "forks", "3"]);
    // glibc's fork() is the clone syscall; each child returns from it too, with 0.
    let clone = profile.syscalls["x86_64"].get("clone").map_or(0, |u| u.count);
    assert_eq!(clone, 3, "{:?}", profile.syscalls["x86_64"].get("clone"));
}

#[test]
fn files_written_through_io_uring_leave_the_file_system_directives_open() {
    if !is_root_or_skip("files_written_through_io_uring_leave_the_file_system_directives_open") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("through-the-ring");
    let (profile, dropin) = record_and_generate(&[WORKLOAD, "io-uring-write", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "written through io_uring\n");
    // The write never passed the syscall hooks: the recorder did not see it...
    assert!(!profile.paths.contains_key(file.to_str().unwrap()), "{:?}", profile.paths.keys());
    // ...so nothing that rests on paths is decided; the reason is given.
    assert!(lines_of(&dropin, "ProtectSystem=").is_empty() && lines_of(&dropin, "ReadWritePaths=").is_empty(), "{dropin}");
    assert!(lines_of(&dropin, "RestrictAddressFamilies=").is_empty(), "{dropin}");
    assert!(dropin.contains("#   ProtectSystem=: io_uring was used (io_uring_setup"), "{dropin}");
}

#[test]
fn an_int_0x80_call_from_a_64_bit_task_is_an_i386_call() {
    if !is_root_or_skip("an_int_0x80_call_from_a_64_bit_task_is_an_i386_call") {
        return;
    }
    let (profile, dropin) = record_and_generate(&[WORKLOAD, "int80-getpid"]);
    assert_eq!(profile.recording.command_exit, Some(0));
    // Told by the kernel's own compat status of the call, not by the task's code segment.
    assert!(profile.syscalls.get("i386").is_some_and(|calls| calls.contains_key("getpid")), "{:?}", profile.syscalls.keys());
    assert!(lines_of(&dropin, "SystemCallArchitectures=") == ["SystemCallArchitectures=native x86"], "{dropin}");
    assert!(dropin.contains("whose arguments are not decoded"), "{dropin}");
}

#[test]
fn sockets_in_tmp_and_abstract_ones_keep_tmp_and_the_network_shared() {
    if !is_root_or_skip("sockets_in_tmp_and_abstract_ones_keep_tmp_and_the_network_shared") {
        return;
    }
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let (profile, dropin) = record_and_generate(&[WORKLOAD, "unix-sockets", dir.path().to_str().unwrap()]);
    let sock = format!("{}/sock", dir.path().display());
    let ops = profile.paths.get(&sock).map(|u| u.ops.iter().map(|o| o.name()).collect::<Vec<_>>());
    assert_eq!(ops, Some(vec!["bind-unix", "connect-unix"]), "{:?}", profile.paths.keys());
    assert!(profile.acts.contains_key("abstract-unix bind") && profile.acts.contains_key("abstract-unix connect"), "{:?}", profile.acts);
    assert!(lines_of(&dropin, "PrivateTmp=").is_empty() && lines_of(&dropin, "PrivateNetwork=").is_empty(), "{dropin}");
    assert!(dropin.contains("#   PrivateNetwork=: abstract AF_UNIX sockets were used"), "{dropin}");
}

#[test]
fn a_program_run_from_a_home_directory_keeps_homes_readable() {
    if !is_root_or_skip("a_program_run_from_a_home_directory_keeps_homes_readable") {
        return;
    }
    std::fs::create_dir_all("/home").unwrap();
    let home = tempfile::tempdir_in("/home").unwrap();
    let program = home.path().join("true");
    std::fs::copy("/bin/true", &program).unwrap();
    let (profile, dropin) = record_and_generate(&[program.to_str().unwrap()]);
    assert!(profile.executables.contains_key(program.to_str().unwrap()), "{:?}", profile.executables.keys());
    // ProtectHome=yes would hide the program itself; read-only lets it run.
    assert_eq!(lines_of(&dropin, "ProtectHome="), ["ProtectHome=read-only"], "{dropin}");
}

#[test]
fn a_write_whose_path_was_cut_leaves_protect_system_open() {
    if !is_root_or_skip("a_write_whose_path_was_cut_leaves_protect_system_open") {
        return;
    }
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let (profile, dropin) = record_and_generate(&[WORKLOAD, "deep-write", dir.path().to_str().unwrap()]);
    let cut: Vec<&String> = profile.paths.iter().filter(|(p, u)| u.incomplete && p.ends_with("/f")).map(|(p, _)| p).collect();
    assert!(!cut.is_empty(), "the kernel cut the path: {:?}", profile.paths.keys().collect::<Vec<_>>());
    // Neither its directory nor `/` is allowed: ProtectSystem= stays the unit's.
    assert!(lines_of(&dropin, "ProtectSystem=").is_empty() && lines_of(&dropin, "ReadWritePaths=").is_empty(), "{dropin}");
    assert!(dropin.contains("#   ProtectSystem=: written where the kernel gave only part of the path"), "{dropin}");
}
