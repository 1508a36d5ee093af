//! Root integration tests: the real eBPF object in the running kernel, known workloads in a
//! fresh cgroup, exact assertions on what the profile says.

use profiler_tests::{has_syscall, is_root_or_skip, needed_capabilities, record_command, skip};

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
    assert_overcommit_probe_is_no_need(&profile);
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

/// The recorder remembers per CPU the last thread it ran a syscall for, and whether it is
/// watched, by where its registers are saved, on its kernel stack, and an ended thread's stack
/// is soon given to a new one on the same CPU. Here an unwatched thread's stack is handed to a
/// watched child, round after round (`workload handoff`): every call of every child must be
/// counted.
#[test]
fn a_watched_child_on_a_stack_an_unwatched_thread_left_is_seen_whole() {
    if !is_root_or_skip("a_watched_child_on_a_stack_an_unwatched_thread_left_is_seen_whole") {
        return;
    }
    let Some(profile) = hand_stacks_over("a_watched_child_on_a_stack_an_unwatched_thread_left_is_seen_whole", "take") else {
        return;
    };
    let seen = profile.syscalls["x86_64"].get("getpgrp").map_or(0, |s| s.count);
    let expected = 3 * HANDOFF_ROUNDS as u64;
    assert!(seen <= expected && seen + hidden_by_other_tests() >= expected, "getpgrp calls of the watched children: {seen} of {expected}");
}

/// The other way round: a watched thread's stack is handed to an unwatched child, whose calls
/// must not be taken for the watched thread's.
#[test]
fn an_unwatched_child_on_a_stack_a_watched_thread_left_is_not_recorded() {
    if !is_root_or_skip("an_unwatched_child_on_a_stack_a_watched_thread_left_is_not_recorded") {
        return;
    }
    let Some(profile) = hand_stacks_over("an_unwatched_child_on_a_stack_a_watched_thread_left_is_not_recorded", "give") else {
        return;
    };
    // The watched givers were seen: each child moved itself once, as did their parent.
    let moved = profile.syscalls["x86_64"].get("sched_setaffinity").map_or(0, |s| s.count);
    assert!(moved + hidden_by_other_tests() > HANDOFF_ROUNDS as u64, "sched_setaffinity calls of the watched givers: {moved}");
    assert!(!has_syscall(&profile, "getpgrp"), "the unwatched children's getpgrp was recorded");
}

const HANDOFF_ROUNDS: u32 = 500;

/// How many calls of a count the syscall hook may miss for no fault of the recorder: none on
/// the tracepoint; through fexit, the recorders of the tests running beside this one attach
/// and detach on the same function, and each time hide the calls in flight (see
/// `a_call_in_flight_while_another_tool_attaches_to_the_syscall_hook_is_seen`). A few: a
/// wrong per-CPU hint loses every call of each child it hits.
fn hidden_by_other_tests() -> u64 {
    if std::env::var("PROFILER_SYSCALL_HOOK").is_ok_and(|hook| hook == "fexit") { 6 } else { 0 }
}

/// Runs `workload handoff` with the recorded process in `role` (give or take) and the other
/// half outside the recording; the profile. None (`test` skipped) on one CPU, where each
/// half's own calls overwrite what the CPU remembers and the hand-over proves nothing.
fn hand_stacks_over(test: &str, role: &str) -> Option<profiler::profile::Profile> {
    if !allowed_cpus().starts_with(&[0, 1]) {
        skip(test, "the hand-over runs on CPUs 0 and 1, and this process may not use both");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    for fifo in ["token", "go"] {
        let path = std::ffi::CString::new(dir.path().join(fifo).to_str().unwrap()).unwrap();
        // SAFETY: a valid path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    }
    let dir_arg = dir.path().to_str().unwrap();
    let rounds = HANDOFF_ROUNDS.to_string();
    let other = if role == "give" { "take" } else { "give" };
    let mut outside = std::process::Command::new(WORKLOAD).args(["handoff", dir_arg, other, &rounds]).spawn().unwrap();
    let profile = record_command(&[WORKLOAD, "handoff", dir_arg, role, &rounds]);
    // Had the recorded half never opened the FIFOs, the other would wait for it forever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = outside.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = outside.kill();
            let _ = outside.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.is_some_and(|s| s.success()), "the outside half of the hand-over: {status:?}");
    Some(profile)
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed set filled by the kernel, read with the libc macro.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
        (0..libc::CPU_SETSIZE as usize).filter(|&cpu| libc::CPU_ISSET(cpu, &set)).collect()
    }
}

/// Adoption (`record --cgroup` on a cgroup whose processes already run) watches the threads
/// that run, not one that has ended: a main thread that ended while another lives on (a zombie
/// leader) keeps its /proc entry, but its exit has passed, so nothing would take its id out
/// of the tasks table again, and a later thread given that id would be taken for the unit's.
#[test]
fn adoption_watches_the_living_threads_of_a_process_whose_leader_ended() {
    use std::{
        io::BufRead as _,
        process::Stdio,
        time::{Duration, Instant},
    };
    if !is_root_or_skip("adoption_watches_the_living_threads_of_a_process_whose_leader_ended") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let cgroup =
        profiler::recorder::cgroup::cgroup2_root().expect("a cgroup2 mount").join(format!("profiler-test-zombie-{}", std::process::id()));
    std::fs::create_dir(&cgroup).unwrap();
    let mut process = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("echo $$ > {}/cgroup.procs && exec {WORKLOAD} zombie-leader {d}", cgroup.display()))
        .spawn()
        .unwrap();
    let leader_ended = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", process.id())).unwrap_or_default();
        stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(dir.path().join("ready").exists() && leader_ended()) {
        assert!(Instant::now() < deadline, "the workload's main thread did not end alone");
        std::thread::sleep(Duration::from_millis(20));
    }

    let out = dir.path().join("adopted.json");
    let mut recorder = std::process::Command::new(profiler_tests::profiler_bin())
        .args(["record", "--cgroup", cgroup.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = std::io::BufReader::new(recorder.stderr.take().unwrap()).lines();
    // Empty if the recorder ended before it started: it is still stopped and waited for below.
    let started = log.by_ref().map_while(Result::ok).find(|line| line.contains("recording ")).unwrap_or_default();
    std::thread::spawn(move || log.for_each(drop));
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let status = process.wait().unwrap();
    // SAFETY: signals the recorder this test started, as an administrator's Ctrl-C.
    unsafe { libc::kill(recorder.id() as i32, libc::SIGINT) };
    let recorded = recorder.wait().unwrap();
    let _ = std::fs::remove_dir(&cgroup);
    assert!(recorded.success(), "the recorder: {recorded}");

    assert!(status.success(), "the workload: {status}");
    assert!(started.contains("(1 tasks already running)"), "only the living thread is adopted: {started}");
    // The living thread was watched from the start: its call after it is recorded.
    let profile = profiler::profile::load(&out).unwrap();
    assert!(has_syscall(&profile, "getpgrp"), "the adopted thread's getpgrp");
}

/// A thread other than the main one execs after the process left the watched cgroup: the
/// kernel ends the main thread (and its watch) first, then gives the thread the process's id.
/// The new program is still the watched process's.
#[test]
fn an_exec_from_a_thread_outside_the_cgroup_stays_watched() {
    if !is_root_or_skip("an_exec_from_a_thread_outside_the_cgroup_stays_watched") {
        return;
    }
    let profile = record_command(&[WORKLOAD, "thread-exec-elsewhere"]);
    assert_eq!(profile.recording.command_exit, Some(0));
    assert!(has_syscall(&profile, "times"), "the exec'd marker's times(2) is missing: {:?}", profile.syscall_names());
    assert_eq!(profile.executables[WORKLOAD].execs, 2, "the workload and the marker it exec'd from a thread");
}

/// A watched process that execs, on the CPU that just ran its previous program's calls: the
/// calls after the exec are the new program's, though the thread, and where its registers
/// are saved, stay the same.
#[test]
fn calls_after_an_exec_on_the_same_cpu_are_the_new_programs() {
    if !is_root_or_skip("calls_after_an_exec_on_the_same_cpu_are_the_new_programs") {
        return;
    }
    let cpu = allowed_cpus()[0].to_string();
    let profile = record_command(&["taskset", "-c", &cpu, "/bin/sh", "-c", &format!("exec {WORKLOAD} marker")]);
    assert_eq!(profile.recording.command_exit, Some(0));
    let times = &profile.syscalls["x86_64"]["times"];
    assert_eq!(times.executables, [WORKLOAD.to_string()].into(), "times(2) is the marker's alone");
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
    // rt_sigreturn "returns" the interrupted call's result (here open's ENOENT): not its own.
    assert!(profile.syscalls["x86_64"]["rt_sigreturn"].count > 1, "the timer's signals: {:?}", profile.syscalls["x86_64"]["rt_sigreturn"]);
    assert!(!errors.iter().any(|e| e.starts_with("rt_sigreturn")), "{errors:?}");

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

/// mmap's overcommit accounting checks CAP_SYS_ADMIN only to choose a reserve: a probe, never a
/// need. The tracepoint (inside cap_capable) sees it; fexit and kprobes do not, because before
/// 6.14 cap_vm_enough_memory calls cap_capable in its own file, where the call is inlined.
fn assert_overcommit_probe_is_no_need(profile: &profiler_tests::Profile) {
    let sys_admin = profile.capabilities.get("CAP_SYS_ADMIN");
    if profile.recording.capability_hooks().contains("tracepoint") {
        let sys_admin = sys_admin.expect("mmap's overcommit probe was seen");
        assert!(sys_admin.probes > 0 && sys_admin.granted == 0, "{sys_admin:?}");
    } else if let Some(sys_admin) = sys_admin {
        assert!(sys_admin.granted == 0, "{sys_admin:?}");
    }
}

/// The overcommit probe of each private writable mmap is told by its caller, read where
/// `cap_capable` keeps its return address once the unwinder's two innermost frames showed a
/// CPU where that is, not from the whole stack (which cost about 2.8 µs of program time per
/// mmap on this host, in the benchmark's mmap loop). The recorder logs each whole stack it
/// resolves and each CPU's slot (at debug level): no stack may be an overcommit probe's, a
/// CPU must have learnt its slot, the profile still has every probe, and the checks of
/// `commoncap` (capset's CAP_SETPCAP), which no site tells, still show their whole stack.
/// An ftrace event or a raw or BTF tracepoint program on the capability tracepoint while this
/// runs makes the stacks start elsewhere, and fails it.
#[test]
fn the_overcommit_probe_is_told_without_its_whole_stack() {
    if !is_root_or_skip("the_overcommit_probe_is_told_without_its_whole_stack") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("profile.json");
    let script = format!("{WORKLOAD} mmap 1000 && {WORKLOAD} commoncap");
    let recorded = std::process::Command::new(profiler_tests::profiler_bin())
        .env("RUST_LOG", "debug")
        .args(["record", "-o", out.to_str().unwrap(), "--", "/bin/sh", "-c", &script])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&recorded.stderr);
    assert!(recorded.status.success(), "{log}");
    let profile = profiler::profile::load(&out).unwrap();
    let stacks: Vec<&str> = log.lines().filter(|l| l.contains("capability check stack")).collect();
    assert!(!stacks.iter().any(|l| l.contains("vm_enough_memory")), "an overcommit probe took its whole stack:\n{}", stacks.join("\n"));
    // fexit and kprobes (before 6.14) see neither the overcommit probe nor commoncap's checks.
    if profile.recording.capability_hooks().contains("tracepoint") {
        let sys_admin = &profile.capabilities["CAP_SYS_ADMIN"];
        assert!(sys_admin.probes >= 1000 && sys_admin.granted == 0, "{sys_admin:?}");
        // After the unwinder named a few, a CPU reads the caller where `cap_capable` keeps it.
        let learnt = |line: &&str| {
            let count = line.split(" (").nth(1).and_then(|rest| rest.split(' ').next()).and_then(|n| n.parse::<u64>().ok());
            count.is_some_and(|n| n >= 4)
        };
        let slots: Vec<&str> = log.lines().filter(|l| l.contains("probe site caller slot")).collect();
        assert!(slots.iter().any(learnt), "no CPU learnt where cap_capable keeps its return address:\n{}", slots.join("\n"));
        // capset's CAP_SETPCAP check (from `cap_capset`) tells no probe site: its whole stack.
        assert!(stacks.iter().any(|l| l.contains("cap_capable < cap_capset")), "capset's check logged no whole stack:\n{log}");
    }
}

/// Thousands of mmaps, forks and execs of hundreds of executables (the churn workload): every
/// overcommit probe keeps the stack that says it is one (a stack the recorder could not store
/// makes a check of unknown purpose, which counts as a need), and the calls of every
/// executable are kept, those past the executables table under the overflow slot.
#[test]
fn churn_past_the_tables_keeps_probes_and_every_executables_calls() {
    if !is_root_or_skip("churn_past_the_tables_keeps_probes_and_every_executables_calls") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = record_command(&[WORKLOAD, "churn", dir.path().join("churn").to_str().unwrap(), "12"]);
    assert_overcommit_probe_is_no_need(&profile);
    // Each copy of `true` ends with exit_group: the collector reads the marks of every slot
    // claimed (one per executable named in the profile) and of the overflow slot, which the
    // copies past the table share (400 copies here; fewer run in 12 s under emulation).
    let exits = &profile.syscalls["x86_64"]["exit_group"].executables;
    let named: Vec<&String> = profile.executables.keys().filter(|e| e.contains("/true-")).collect();
    assert!(named.len() > 50, "{} copies of true named", named.len());
    let missing: Vec<&&String> = named.iter().filter(|e| !exits.contains(**e)).collect();
    assert!(missing.is_empty(), "named copies of true without their exit_group: {missing:?}");
    if profile.losses.get("executables_table_full").is_some_and(|&n| n > 0) {
        assert!(exits.contains("(other executables)"), "the copies past the table are missing: {exits:?}");
    }
}

/// capset and mmap below mmap_min_addr make checks (CAP_SETPCAP, CAP_SYS_RAWIO) that
/// commoncap.c makes by calling cap_capable directly: the tracepoint sees them as needs; fexit
/// and kprobes do not see them, so the drop-in keeps both in the bounding set, saying why, and
/// leaves PrivateDevices= (which would take CAP_SYS_RAWIO away) open.
fn assert_commoncap_checks_are_kept(hook: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let profile = record_with_hook(hook, &[WORKLOAD, "commoncap"]).unwrap();
    if hook == "tracepoint" {
        assert_eq!(needed_capabilities(&profile), ["CAP_SETPCAP", "CAP_SYS_RAWIO"], "{:#?}", profile.capabilities);
    }
    let path = tmp.path().join("commoncap.json");
    std::fs::write(&path, serde_json::to_string(&profile).unwrap()).unwrap();
    let dropin = profiler_tests::profiler(&["generate", "--systemd-version", "252", path.to_str().unwrap()]);
    let dropin = String::from_utf8_lossy(&dropin.stdout);
    let bounding = profiler_tests::lines_of(&dropin, "CapabilityBoundingSet=").join(" ");
    assert!(bounding.contains("CAP_SETPCAP") && bounding.contains("CAP_SYS_RAWIO"), "{hook}: {dropin}");
    if hook != "tracepoint" {
        assert!(dropin.contains("Kept without evidence"), "{hook}: {dropin}");
        assert!(profiler_tests::lines_of(&dropin, "PrivateDevices=").is_empty(), "{hook}: {dropin}");
    }
}

/// `record` with the capability hook forced to `hook`: the profile, or None where this kernel
/// does not offer that hook (the recorder must then refuse, saying so).
fn record_with_hook(hook: &str, cmd: &[&str]) -> Option<profiler_tests::Profile> {
    record_forcing("PROFILER_CAPABILITY_HOOK", Some(hook), cmd)
}

/// Records `cmd` with the hook `hook` forced through the environment variable `force` (None:
/// the variable unset, the recorder's own choice); None when this kernel does not offer it.
fn record_forcing(force: &str, hook: Option<&str>, cmd: &[&str]) -> Option<profiler_tests::Profile> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("profile.json");
    let mut record = std::process::Command::new(profiler_tests::profiler_bin());
    match hook {
        Some(hook) => record.env(force, hook),
        None => record.env_remove(force),
    };
    let recorded = record.args(["record", "-o", out.to_str().unwrap(), "--"]).args(cmd).output().unwrap();
    let stderr = String::from_utf8_lossy(&recorded.stderr);
    if !recorded.status.success() {
        assert!(stderr.contains("not offered by this kernel"), "{force}={hook:?}: {stderr}");
        eprintln!("{force}={hook:?}: not offered by this kernel: {stderr}");
        return None;
    }
    assert!(!out.with_extension("json.tmp").exists());
    Some(profiler::profile::load(&out).unwrap())
}

/// Every way of seeing capability checks that this kernel offers (the tracepoint of 6.14+,
/// fexit, kprobe/kretprobe, none), forced in turn, sees the same checks: chown's two CAP_CHOWN
/// checks granted, and the overcommit probe of mmap as a probe, never a need. With none, no
/// check is seen and the drop-in leaves CapabilityBoundingSet= open, saying why. Unforced,
/// the recorder takes the best one offered.
#[test]
fn every_capability_hook_this_kernel_offers_sees_the_same_checks() {
    if !is_root_or_skip("every_capability_hook_this_kernel_offers_sees_the_same_checks") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let chown = [WORKLOAD, "chown", file.to_str().unwrap()];
    let mut offered = Vec::new();
    for hook in ["tracepoint", "fexit", "kprobe", "none"] {
        let Some(profile) = record_with_hook(hook, &chown) else { continue };
        assert_eq!(profile.recording.capability_hooks(), [hook].into(), "{:?}", profile.recording.hooks);
        if hook == "none" {
            assert!(profile.capabilities.is_empty(), "{:?}", profile.capabilities);
        } else {
            assert_eq!(needed_capabilities(&profile), ["CAP_CHOWN"], "{hook}: {:#?}", profile.capabilities);
            assert_eq!(profile.capabilities["CAP_CHOWN"].granted, 2, "{hook}");
            let own = record_with_hook(hook, &[WORKLOAD, "own-files", dir.path().to_str().unwrap()]).unwrap();
            assert!(needed_capabilities(&own).is_empty(), "{hook}: {:#?}", own.capabilities);
            assert_overcommit_probe_is_no_need(&own);
            assert_commoncap_checks_are_kept(hook);
        }
        profiler_tests::note_hook_exercised(hook);
        offered.push(hook);
    }
    assert_eq!(offered.last(), Some(&"none"), "recording without capability evidence is always possible");
    let unforced = profiler_tests::record_command(&chown);
    assert_eq!(unforced.recording.capability_hooks(), [offered[0]].into(), "the best offered hook is the default");

    // Without capability evidence, the bounding set is left open with the reason.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("none.json");
    std::fs::write(&path, serde_json::to_string(&record_with_hook("none", &chown).unwrap()).unwrap()).unwrap();
    let dropin = profiler_tests::profiler(&["generate", "--systemd-version", "252", path.to_str().unwrap()]);
    let dropin = String::from_utf8_lossy(&dropin.stdout);
    assert!(!dropin.lines().any(|l| l.starts_with("CapabilityBoundingSet=")), "{dropin}");
    assert!(dropin.contains("#   CapabilityBoundingSet=: no hook for capability checks"), "{dropin}");
}

/// `record` with the syscall hook forced to `hook`: the profile, or None where this kernel
/// does not offer that hook (the recorder must then refuse, saying so).
fn record_with_syscall_hook(hook: Option<&str>, cmd: &[&str]) -> Option<profiler_tests::Profile> {
    record_forcing("PROFILER_SYSCALL_HOOK", hook, cmd)
}

/// What a syscall hook saw of a workload, in the terms the drop-in is made of: the calls per
/// ABI, their errors, the refusals, the paths.
fn seen(profile: &profiler_tests::Profile) -> Vec<String> {
    let calls = profile.syscalls.iter().flat_map(|(abi, calls)| calls.keys().map(move |call| format!("call {abi}:{call}")));
    let errors = profile.errors.keys().map(|e| format!("error {e}"));
    let refused = profile.refused.keys().map(|r| format!("refused {r}"));
    // A pid in a path (`/proc/217`) is another on each run.
    let blurred =
        |path: &str| path.split('/').map(|part| if part.parse::<u32>().is_ok() { "#" } else { part }).collect::<Vec<_>>().join("/");
    let paths = profile.paths.iter().map(|(path, used)| format!("path {} {:?}", blurred(path), used.ops));
    calls.chain(errors).chain(refused).chain(paths).collect()
}

/// What `a` has that `b` has not.
fn diff<'a>(a: &'a [String], b: &[String]) -> Vec<&'a String> {
    a.iter().filter(|x| !b.contains(x)).collect()
}

/// Each way of seeing syscalls this kernel offers (the sys_exit tracepoint, fexit on the
/// syscall tables), forced in turn, sees the same thing of workloads that exercise what
/// differs between them: calls seccomp refused with an errno (with their arguments decoded)
/// or killed for, i386 calls through `int 0x80`, forks (the child's return is not a call),
/// failures and rt_sigreturn. Unforced, the recorder takes the tracepoint. (On this host,
/// which refuses fexit, there is nothing to compare; the VMs compare.)
#[test]
fn every_syscall_hook_this_kernel_offers_sees_the_same_calls() {
    if !is_root_or_skip("every_syscall_hook_this_kernel_offers_sees_the_same_calls") {
        return;
    }
    // The whole suite runs again with a hook forced (the VMs force fexit): that the
    // force holds is what this adds then; the comparison ran in the unforced pass.
    if let Ok(forced) = std::env::var("PROFILER_SYSCALL_HOOK") {
        let profile = profiler_tests::record_command(&[WORKLOAD, "refused"]);
        assert_eq!(profile.recording.hooks.get("syscalls"), Some(&[forced.clone()].into()), "{:?}", profile.recording.hooks);
        assert!(profile.refused.contains_key("namespace net EPERM"), "{forced}: {:?}", profile.refused);
        profiler_tests::note_hook_exercised(&format!("syscalls {forced}"));
        return;
    }
    let workloads: [&[&str]; 5] = [
        &[WORKLOAD, "refused"],
        &[WORKLOAD, "seccomp-kill"],
        &[WORKLOAD, "int80-getpid"],
        &[WORKLOAD, "forks", "3"],
        &[WORKLOAD, "errors"],
    ];
    let mut offered = Vec::new();
    let mut first: Option<Vec<Vec<String>>> = None;
    for hook in ["tracepoint", "fexit"] {
        let mut seen_here = Vec::new();
        for cmd in workloads {
            let Some(profile) = record_with_syscall_hook(Some(hook), cmd) else { break };
            assert_eq!(profile.recording.hooks.get("syscalls"), Some(&[hook.to_string()].into()), "{:?}", profile.recording.hooks);
            assert_eq!(profile.recording.command_exit, Some(0), "{hook}: {cmd:?}");
            // The parts each hook reaches differently, asserted on their own as well.
            match cmd[1] {
                "refused" => assert!(profile.refused.contains_key("namespace net EPERM"), "{hook}: {:?}", profile.refused),
                "seccomp-kill" => assert_eq!(profile.errors.get("getppid SIGSYS").map(|e| e.count), Some(1), "{hook}"),
                "int80-getpid" => assert!(profile.syscalls.get("i386").is_some_and(|c| c.contains_key("getpid")), "{hook}"),
                "forks" => assert_eq!(profile.syscalls["x86_64"].get("clone").map(|c| c.count), Some(3), "{hook}"),
                _ => assert!(!profile.errors.keys().any(|e| e.starts_with("rt_sigreturn")), "{hook}: {:?}", profile.errors),
            }
            seen_here.push(seen(&profile));
        }
        if seen_here.len() < workloads.len() {
            continue;
        }
        match &first {
            None => first = Some(seen_here),
            Some(first) => {
                for ((cmd, a), b) in workloads.iter().zip(first).zip(&seen_here) {
                    if a == b {
                        continue;
                    }
                    // One CI run on 6.12 once saw fexit miss a workload's execve, which eight
                    // runs alone did not repeat: a difference must hold on a second pair of
                    // recordings to fail, and is printed either way.
                    eprintln!("{cmd:?}: {} and {hook} differed once: {:?} / {:?}", offered[0], diff(a, b), diff(b, a));
                    let again = |hook| seen(&record_with_syscall_hook(Some(hook), cmd).unwrap());
                    let (a, b) = (again(offered[0]), again(hook));
                    assert_eq!(a, b, "{cmd:?}: {} and {hook} differ twice", offered[0]);
                }
            }
        }
        profiler_tests::note_hook_exercised(&format!("syscalls {hook}"));
        offered.push(hook);
    }
    assert_eq!(offered.first(), Some(&"tracepoint"), "the tracepoint is on every kernel the profiler supports");
    let unforced = record_with_syscall_hook(None, &[WORKLOAD, "marker"]).unwrap();
    assert_eq!(unforced.recording.hooks.get("syscalls"), Some(&["tracepoint".to_string()].into()), "the tracepoint is the default");
}

/// fstat(3) on an open descriptor (in glibc 2.33 to 2.38, newfstatat with an empty name and
/// AT_EMPTY_PATH; statx likewise; either with no name at all, which 6.11 and later take and
/// older kernels refuse; fstat(2)) looks no name up, so it is no use of the file's
/// path: the file shows as read, from its open, and not as stat'ed. A file stat'ed by its name
/// with the same calls is, also by a name under a directory descriptor with AT_EMPTY_PATH.
#[test]
fn a_look_at_an_open_descriptor_is_not_a_path_use() {
    if !is_root_or_skip("a_look_at_an_open_descriptor_is_not_a_path_use") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("looked-at");
    std::fs::write(&file, b"x").unwrap();
    let other = dir.path().join("stat-by-name");
    std::fs::write(&other, b"x").unwrap();
    let at: Vec<_> = ["newfstatat-at", "statx-at"].iter().map(|name| dir.path().join(name)).collect();
    for path in &at {
        std::fs::write(path, b"x").unwrap();
    }
    let args = [file.to_str().unwrap(), other.to_str().unwrap(), at[0].to_str().unwrap(), at[1].to_str().unwrap()];
    let profile = record_command(&[&[WORKLOAD, "fstat-by-fd"], &args[..]].concat());
    assert_eq!(profile.recording.command_exit, Some(0));
    for call in ["newfstatat", "statx", "fstat"] {
        assert!(has_syscall(&profile, call), "{call}: {:?}", profile.syscalls);
    }
    let used = &profile.paths[file.to_str().unwrap()];
    let ops: Vec<&str> = used.ops.iter().map(|o| o.name()).collect();
    assert_eq!(ops, ["read"], "{:?}", profile.paths.keys());
    for named in [&other, &at[0], &at[1]] {
        let named = profile.paths.get(named.to_str().unwrap()).unwrap_or_else(|| panic!("{named:?}: {:?}", profile.paths.keys()));
        assert_eq!(named.ops.iter().map(|o| o.name()).collect::<Vec<_>>(), ["stat"]);
    }
}

/// A watched call that is inside the kernel while another tool attaches a program to the same
/// syscall hook and detaches it again (here `profiler floor`'s empty one, while the workload
/// waits in flock(2)) is still seen when it returns, with the default hook, the tracepoint.
///
/// With fexit it is not, and this test says so: attaching or detaching any program on
/// `x64_sys_call` makes the kernel build a new trampoline and patch the old one, through which
/// every call already inside returns, to skip its fexit programs (kernel/bpf/trampoline.c,
/// `bpf_tramp_image_put`). Any tool on the host can do that at any time, unseen: one reason
/// fexit is not the default, and a drop-in made from an fexit recording leaves
/// SystemCallFilter= open. The same wait with nothing attached meanwhile is seen by both.
#[test]
fn a_call_in_flight_while_another_tool_attaches_to_the_syscall_hook_is_seen() {
    if !is_root_or_skip("a_call_in_flight_while_another_tool_attaches_to_the_syscall_hook_is_seen") {
        return;
    }
    let hook = std::env::var("PROFILER_SYSCALL_HOOK").unwrap_or_else(|_| "tracepoint".to_string());
    // Through fexit, the recorders of the tests running beside this one attach and detach
    // too, and may hide the control's call the same way: it must be seen once in five tries.
    let tries = if hook == "fexit" { 5 } else { 1 };
    assert!((0..tries).any(|_| flock_calls_seen(&hook, false) == 1), "{hook}: the flock call, nothing attached meanwhile");
    let seen = flock_calls_seen(&hook, true);
    if hook == "fexit" {
        assert_eq!(seen, 0, "fexit saw a call that returned through a replaced trampoline: the README says it cannot");
    } else {
        assert_eq!(seen, 1, "{hook}: the flock call in flight while another program attached");
    }
}

/// Records `workload wait-lock` with the syscall hook `hook` while this test holds the lock,
/// attaching `profiler floor --hook HOOK` and detaching it while the workload waits if
/// `attach_meanwhile`; the flock calls the profile counts.
fn flock_calls_seen(hook: &str, attach_meanwhile: bool) -> u64 {
    use std::{io::BufRead as _, os::fd::AsRawFd as _, time::Duration};
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("lock");
    let lock = std::fs::File::create(&lock_path).unwrap();
    // SAFETY: a descriptor we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let out = dir.path().join("profile.json");
    let mut record = std::process::Command::new(profiler_tests::profiler_bin())
        .args(["record", "-o", out.to_str().unwrap(), "--", WORKLOAD, "wait-lock", lock_path.to_str().unwrap()])
        .spawn()
        .unwrap();
    // The workload is in flock(2) (x86_64 number 73) once its registers say so. The recorder
    // loads and attaches first, which under emulation, beside other tests' recorders doing
    // the same, has taken longer than 30 s: the wait is for progress, the bound only for a hang.
    let ready = dir.path().join("lock.ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let pid = std::fs::read_to_string(&ready).unwrap_or_default();
        let call = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if !pid.is_empty() && call.starts_with("73 ") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the workload never waited in flock: {pid:?} {call:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    if attach_meanwhile {
        let mut floor = std::process::Command::new(profiler_tests::profiler_bin())
            .args(["floor", "--hook", hook])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut said = std::io::BufReader::new(floor.stderr.take().unwrap()).lines().map_while(Result::ok);
        assert!(said.any(|line| line.starts_with("floor attached")), "profiler floor --hook {hook} did not attach");
        // SAFETY: a plain signal to our own child.
        assert_eq!(unsafe { libc::kill(floor.id() as i32, libc::SIGTERM) }, 0);
        assert!(floor.wait().unwrap().success());
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) }, 0);
    assert!(record.wait().unwrap().success());
    let profile = profiler::profile::load(&out).unwrap();
    assert_eq!(profile.recording.hooks.get("syscalls"), Some(&[hook.to_string()].into()), "{:?}", profile.recording.hooks);
    assert_eq!(profile.recording.command_exit, Some(0));
    profile.syscalls["x86_64"].get("flock").map_or(0, |c| c.count)
}
