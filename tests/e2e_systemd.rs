//! End to end under a real systemd (PID 1 of a systemd-nspawn container, tests/testbed): a
//! real Debian nginx is recorded from the host while curl drives it, the generated drop-in is
//! installed, and nginx must keep working under it while the filter is really enforced. The
//! suite runs once per Debian release (`TB_RELEASE`: bookworm's systemd 252, trixie's 257).

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use profiler_tests::{is_root_or_skip, profiler_bin};

/// The container, booted for the test and powered off when it ends. One at a time: the tests
/// of this file share its name.
struct Testbed {
    script: PathBuf,
    _turn: std::sync::MutexGuard<'static, ()>,
}

static ONE_TESTBED: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Testbed {
    fn up() -> Self {
        let turn = ONE_TESTBED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/testbed.sh");
        let out = Command::new(&script).arg("up").output().expect("run testbed.sh");
        assert!(out.status.success(), "testbed up failed: {}", String::from_utf8_lossy(&out.stderr));
        Self { script, _turn: turn }
    }

    /// Installs a drop-in for `unit`, checks it with systemd-analyze verify, and restarts.
    /// Returns whether the restart succeeded. The manager must not have said that a line of
    /// it was ignored or not enforced.
    fn install(&self, unit: &str, dropin: &str) -> bool {
        let path = format!("/etc/systemd/system/{unit}.d/50-profiler.conf");
        self.write_file(&path, dropin);
        let (verified, warnings) = self.exec(&["systemd-analyze", "verify", "--man=no", unit]);
        assert!(verified && warnings.trim().is_empty(), "systemd-analyze verify warned:\n{warnings}");
        let since = self.ok(&["date", "+%s"]).trim().to_string();
        self.ok(&["systemctl", "daemon-reload"]);
        let restarted = self.exec(&["systemctl", "restart", unit]).0;
        let journal = self.ok(&["journalctl", "--no-pager", "-o", "cat", "--since", &format!("@{since}"), "_PID=1"]);
        let about: String = journal.lines().filter(|l| l.contains(unit) || l.contains(".conf")).map(|l| format!("{l}\n")).collect();
        let ignored = profiler::systemd::journal::not_enforced(&about);
        assert!(ignored.is_empty(), "the manager did not take the drop-in as written: {ignored:?}");
        restarted
    }

    /// The container's systemd version: 252 on bookworm, 257 on trixie.
    fn systemd_major(&self) -> u32 {
        let version = self.ok(&["systemctl", "--version"]);
        version.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no version in {version}"))
    }

    /// The numeric exposure `systemd-analyze security` gives the unit.
    fn exposure_score(&self, unit: &str) -> f64 {
        let verdict = self.exposure(unit);
        verdict.split_whitespace().next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("no score in {verdict:?}"))
    }

    /// Runs a command inside the container; returns (success, stdout+stderr).
    fn exec(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(&self.script).arg("exec").args(args).output().expect("testbed exec");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.exec(args);
        assert!(ok, "{args:?} failed in the testbed: {text}");
        text
    }

    fn write_file(&self, path: &str, contents: &str) {
        let mut child = Command::new(&self.script)
            .args(["exec", "sh", "-c", &format!("mkdir -p \"$(dirname {path})\" && cat > {path}")])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), contents.as_bytes()).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success(), "writing {path}");
    }

    fn leader(&self) -> String {
        let cache = std::env::var("PROFILER_CACHE").unwrap_or_else(|_| "/var/cache/profiler-build".into());
        let name = std::env::var("TB_NAME").unwrap_or_else(|_| "pftb".into());
        std::fs::read_to_string(format!("{cache}/testbed/{name}.leader")).unwrap().trim().to_string()
    }

    /// Fetches the page with the real client; the HTTP status, or None when nothing answered.
    fn http_status(&self) -> Option<u16> {
        let (_, text) = self.exec(&["curl", "-s", "-o", "/dev/null", "--max-time", "3", "-w", "%{http_code}", "http://127.0.0.1/"]);
        text.trim().parse().ok().filter(|&code| code != 0)
    }

    /// The options of `generate` and `report` for this container's systemd: its syscall
    /// groups, version, build features and the unit's current settings, as an administrator
    /// would pass them.
    fn dropin_args(&self, work: &Path, unit: &str) -> Vec<String> {
        let groups = work.join("groups.txt");
        std::fs::write(&groups, self.ok(&["systemd-analyze", "syscall-filter"])).unwrap();
        let settings = work.join("settings.txt");
        std::fs::write(&settings, self.ok(&["systemctl", "show", unit])).unwrap();
        let version = self.ok(&["systemctl", "--version"]);
        let number = version.split_whitespace().nth(1).unwrap_or("252").to_string();
        let mut args = vec![
            "--syscall-groups".to_string(),
            groups.display().to_string(),
            "--unit-settings".to_string(),
            settings.display().to_string(),
            "--target-version".to_string(),
            number,
        ];
        if version.contains("+BPF_FRAMEWORK") {
            args.push("--bpf-framework".into());
        }
        args
    }

    /// `profiler generate` for this container's systemd.
    fn generate(&self, work: &Path, profile: &Path, unit: &str) -> String {
        let out = Command::new(profiler_bin()).arg("generate").args(self.dropin_args(work, unit)).arg(profile).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// `profiler report --markdown` with the same options, asking the container's
    /// systemd-analyze for its verdict: the exposure rows (scored here, and systemd-analyze's),
    /// each as [before, after].
    fn report_exposure(&self, work: &Path, profile: &Path, unit: &str) -> ([String; 2], [String; 2]) {
        let md = work.join("report.md");
        let out = Command::new(profiler_bin())
            .args(["report", "--markdown", "--container-pid", &self.leader(), "-o", md.to_str().unwrap()])
            .args(self.dropin_args(work, unit))
            .arg(profile)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(&md).unwrap();
        let row = |label: &str| -> [String; 2] {
            let line =
                text.lines().find(|l| l.starts_with(&format!("| {label} |"))).unwrap_or_else(|| panic!("no {label} row in:\n{text}"));
            let cells: Vec<String> = line.split('|').map(|c| c.trim().to_string()).collect();
            [cells[2].clone(), cells[3].clone()]
        };
        (row("scored here"), row("systemd-analyze"))
    }

    /// systemd-analyze's verdict on the loaded unit: "9.6 UNSAFE".
    fn exposure(&self, unit: &str) -> String {
        let text = self.ok(&["systemd-analyze", "security", "--no-pager", unit]);
        profiler::systemd::analyze::overall(&text).unwrap_or_else(|| panic!("no overall line in {text}"))
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("down").output();
    }
}

/// `profiler record` in the background; waits until its probes are attached.
fn start_recording(args: &[&str]) -> Child {
    until_recording(Command::new(profiler_bin()).arg("record").args(args).stderr(Stdio::piped()).spawn().unwrap())
}

/// Waits until the profiler (`record` or `check`, stderr piped) says its probes are attached,
/// then keeps draining its stderr so it never blocks on a full pipe.
fn until_recording(mut child: Child) -> Child {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in lines.by_ref() {
        let line = line.unwrap();
        eprintln!("profiler: {line}");
        if line.contains("recording ") {
            break;
        }
        assert!(Instant::now() < deadline, "profiler did not start recording");
    }
    std::thread::spawn(move || lines.for_each(|l| eprintln!("profiler: {}", l.unwrap_or_default())));
    child
}

fn stop_recording(mut child: Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success(), "profiler record failed");
}

#[test]
fn nginx_keeps_working_under_its_generated_dropin_and_the_filter_is_enforced() {
    if !is_root_or_skip("nginx_keeps_working_under_its_generated_dropin_and_the_filter_is_enforced") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("nginx.json");
    let tb = Testbed::up();
    let before = tb.exposure("nginx.service");
    let before_checks = exposure_per_check(&tb, "nginx.service");
    assert_rows_match_systemd_analyze(&tb, "nginx.service");

    // A unit that does not exist is refused by name before anything is written.
    let never = work.path().join("never.json");
    let unit = "no-such-thing.service";
    let out = Command::new(profiler_bin())
        .args(["record", "--unit", unit, "--container-pid", &tb.leader(), "-o", never.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("unit no-such-thing.service does not exist"), "{unit}: {stderr}");
    assert!(!never.exists());

    // Record from the unit's first start: start-up, serving, reload and shutdown.
    let recorder = start_recording(&["--unit", "nginx.service", "--container-pid", &tb.leader(), "-o", profile.to_str().unwrap()]);
    tb.ok(&["systemctl", "start", "nginx.service"]);
    for _ in 0..3 {
        assert_eq!(tb.http_status(), Some(200));
    }
    tb.ok(&["systemctl", "reload", "nginx.service"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tb.http_status(), Some(200));
    tb.ok(&["systemctl", "stop", "nginx.service"]);
    stop_recording(recorder);

    let recorded = profiler::profile::load(&profile).unwrap();
    assert!(recorded.executables.contains_key("/usr/sbin/nginx"), "{:?}", recorded.executables);
    assert_nothing_is_systemds(&recorded);
    assert!(recorded.capabilities["CAP_NET_BIND_SERVICE"].needed(), "nginx binds :80");
    assert!(!recorded.executables.keys().any(|e| e.contains("curl") || e.contains("nsenter")), "only the unit is recorded");

    // Generate against the container's own systemd groups, as on a real target host.
    let dropin = tb.generate(work.path(), &profile, "nginx.service");
    eprintln!("generated drop-in:\n{dropin}");
    let (scored, analyzed) = tb.report_exposure(work.path(), &profile, "nginx.service");

    assert!(tb.install("nginx.service", &dropin), "nginx restarts under the drop-in");
    assert_eq!(tb.http_status(), Some(200), "nginx serves under the drop-in");
    tb.ok(&["systemctl", "reload", "nginx.service"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tb.http_status(), Some(200), "nginx serves after a reload under the drop-in");
    assert_eq!(tb.ok(&["systemctl", "show", "-P", "SystemCallErrorNumber", "nginx.service"]).trim(), "1", "EPERM is in force");
    assert_rows_match_systemd_analyze(&tb, "nginx.service");
    let after = tb.exposure("nginx.service");
    let better = assert_no_check_rose("nginx.service", &before_checks, &exposure_per_check(&tb, "nginx.service"));
    assert!(better >= 20, "only {better} checks improved for nginx");
    eprintln!("exposure before: {before}\nexposure after: {after}");
    let report = format!("{dropin}\n# exposure before: {before}\n# exposure after: {after}\n");
    let _ = std::fs::write(std::env::temp_dir().join(format!("profiler-e2e-nginx-{}.txt", tb.systemd_major())), report);
    // Debian 13's nginx.conf pins workers to CPUs (`worker_cpu_affinity auto`): its nginx calls
    // sched_setaffinity, so its allow list takes in @resources, which costs 0.2.
    let target = if tb.systemd_major() >= 257 { 2.6 } else { 2.4 };
    let score = tb.exposure_score("nginx.service");
    assert!(score <= target, "nginx exposure {score} is above the {target} target (systemd {})", tb.systemd_major());
    // The report's own score, before installing anything, is what systemd-analyze says of the
    // unit before and of the installed drop-in after; so is the verdict it asked for itself.
    assert_eq!(scored, [before.clone(), after.clone()], "report scored");
    assert_eq!(analyzed, [before, after], "report's systemd-analyze verdicts");

    // Enforcement of the file system and family lines: without the log directory in
    // ReadWritePaths, or without AF_INET6, nginx cannot start (it logs there and listens on [::]:80).
    for (removed, what) in [("ReadWritePaths=-/var/log/nginx", "the log directory"), ("AF_INET6", "AF_INET6")] {
        let weakened = dropin.replace(&format!(" {removed}"), "").replace(&format!("{removed}\n"), "");
        assert_ne!(weakened, dropin, "{removed} is in the drop-in");
        let restarted = tb.install("nginx.service", &weakened);
        assert!(!restarted && tb.http_status() != Some(200), "nginx still served without {what} allowed");
    }

    // Enforcement: the same drop-in without the filter line that allows socket(2) must break
    // nginx (it cannot open its listening socket).
    let weakened: String = dropin
        .lines()
        .filter(|l| !(l.starts_with("SystemCallFilter=") && l.split(['=', ' ']).any(|w| w == "socket" || w == "@network-io")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(weakened, dropin, "the drop-in allows socket(2) somewhere");
    let restarted = tb.install("nginx.service", &weakened);
    let serving = tb.http_status() == Some(200);
    assert!(!restarted && !serving, "nginx still started and served without socket(2) allowed");

    apply_with_restart(&tb, "nginx.service", &profile);
    assert_eq!(tb.http_status(), Some(200), "nginx serves after apply --restart");
}

/// As an administrator would: `apply --restart` in place of the hand-installed drop-in. It
/// exits 0 only when the unit is active and its manager took every line as written.
fn apply_with_restart(tb: &Testbed, unit: &str, profile: &Path) {
    tb.ok(&["rm", "-f", &format!("/etc/systemd/system/{unit}.d/50-profiler.conf")]);
    tb.ok(&["systemctl", "daemon-reload"]);
    let out = apply(&["--unit", unit, "--container-pid", &tb.leader(), "--restart", profile.to_str().unwrap()]);
    assert!(out.status.success(), "apply --restart {unit}: {}", String::from_utf8_lossy(&out.stderr));
}

/// redis-cli against the container's redis; its output, trimmed.
fn redis(tb: &Testbed, args: &[&str]) -> String {
    let mut cmd = vec!["redis-cli"];
    cmd.extend_from_slice(args);
    tb.exec(&cmd).1.trim().to_string()
}

/// The Debian redis unit, already hardened (exposure 1.1 stock), recorded through start-up,
/// writes, a background save, a rewrite of its append-only file and shutdown; under the
/// generated drop-in it must start, serve and save, at exposure 1.0 or lower.
#[test]
fn redis_keeps_working_and_saving_under_its_generated_dropin() {
    if !is_root_or_skip("redis_keeps_working_and_saving_under_its_generated_dropin") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("redis.json");
    let tb = Testbed::up();
    let before = tb.exposure("redis-server.service");
    let before_checks = exposure_per_check(&tb, "redis-server.service");
    let drive = |tb: &Testbed, key: &str| {
        assert_eq!(redis(tb, &["SET", key, "value"]), "OK");
        assert_eq!(redis(tb, &["GET", key]), "value");
        assert!(redis(tb, &["BGSAVE"]).contains("Background saving started"));
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(redis(tb, &["PING"]), "PONG");
    };
    let recorder = start_recording(&["--unit", "redis-server.service", "--container-pid", &tb.leader(), "-o", profile.to_str().unwrap()]);
    tb.ok(&["systemctl", "start", "redis-server.service"]);
    drive(&tb, "before");
    tb.ok(&["systemctl", "stop", "redis-server.service"]);
    stop_recording(recorder);

    let recorded = profiler::profile::load(&profile).unwrap();
    assert!(recorded.executables.contains_key("/usr/bin/redis-server"), "{:?}", recorded.executables);
    assert_nothing_is_systemds(&recorded);
    assert!(recorded.paths.keys().any(|p| p.starts_with("/var/lib/redis/")), "the dump was written: {:?}", recorded.paths.keys());

    let dropin = tb.generate(work.path(), &profile, "redis-server.service");
    eprintln!("generated drop-in:\n{dropin}");
    let (scored, analyzed) = tb.report_exposure(work.path(), &profile, "redis-server.service");
    assert!(tb.install("redis-server.service", &dropin), "redis starts under the drop-in");
    std::thread::sleep(Duration::from_millis(300));
    drive(&tb, "after");
    assert_rows_match_systemd_analyze(&tb, "redis-server.service");
    let after = tb.exposure("redis-server.service");
    let better = assert_no_check_rose("redis-server.service", &before_checks, &exposure_per_check(&tb, "redis-server.service"));
    assert!(better >= 1, "no check improved for redis");
    eprintln!("exposure before: {before}\nexposure after: {after}");
    let _ = std::fs::write(
        std::env::temp_dir().join(format!("profiler-e2e-redis-{}.txt", tb.systemd_major())),
        format!("{dropin}\n# exposure before: {before}\n# exposure after: {after}\n"),
    );
    let score = tb.exposure_score("redis-server.service");
    assert!(score <= 0.9, "redis exposure {score} is above the 0.9 target (systemd {})", tb.systemd_major());
    assert_eq!(scored, [before.clone(), after.clone()], "report scored");
    assert_eq!(analyzed, [before, after], "report's systemd-analyze verdicts");

    // Enforcement: without AF_INET in the family list redis cannot listen on 127.0.0.1 (the
    // unit's own ReadWritePaths= cannot be taken away by a drop-in; nginx's test covers ours).
    let weakened = dropin.replace("RestrictAddressFamilies=AF_INET ", "RestrictAddressFamilies=");
    assert_ne!(weakened, dropin, "the drop-in allows AF_INET");
    tb.install("redis-server.service", &weakened);
    std::thread::sleep(Duration::from_millis(500));
    assert_ne!(redis(&tb, &["PING"]), "PONG", "redis answered without AF_INET allowed");

    apply_with_restart(&tb, "redis-server.service", &profile);
    std::thread::sleep(Duration::from_millis(300));
    drive(&tb, "applied");
}

/// Directory names a unit file must quote or escape (space, `"`, `\`, `%`): a oneshot unit
/// writes into each, the generated ReadWritePaths= lines must reach systemd with exactly
/// those names (`systemctl show`), and the unit must run under them, and fail without one.
#[test]
fn odd_directory_names_reach_systemd_exactly() {
    if !is_root_or_skip("odd_directory_names_reach_systemd_exactly") {
        return;
    }
    const DIRS: [&str; 4] =
        ["/var/lib/pftb-odd/with space", "/var/lib/pftb-odd/quo\"te", "/var/lib/pftb-odd/back\\slash", "/var/lib/pftb-odd/per%cent"];
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("odd.json");
    let tb = Testbed::up();
    let script: String = DIRS.iter().map(|d| format!("echo x > '{d}/state'\n")).collect();
    tb.write_file("/usr/local/bin/pftb-odd", &format!("#!/bin/sh\nset -e\n{script}"));
    tb.write_file("/etc/systemd/system/pftb-odd.service", "[Service]\nType=oneshot\nExecStart=/usr/local/bin/pftb-odd\n");
    tb.ok(&["chmod", "755", "/usr/local/bin/pftb-odd"]);
    for dir in DIRS {
        tb.ok(&["mkdir", "-p", dir]);
    }
    tb.ok(&["systemctl", "daemon-reload"]);

    let recorder = start_recording(&["--unit", "pftb-odd.service", "--container-pid", &tb.leader(), "-o", profile.to_str().unwrap()]);
    tb.ok(&["systemctl", "start", "pftb-odd.service"]);
    stop_recording(recorder);

    let dropin = tb.generate(work.path(), &profile, "pftb-odd.service");
    eprintln!("generated drop-in:\n{dropin}");
    assert!(tb.install("pftb-odd.service", &dropin), "the unit runs under its drop-in");
    let shown = tb.ok(&["systemctl", "show", "-p", "ReadWritePaths", "pftb-odd.service"]);
    eprintln!("systemctl show: {shown}");
    // Each with `-`: a directory missing at a later start is skipped, not a failed start.
    let shown = systemd_words(shown.trim().trim_start_matches("ReadWritePaths="));
    assert_eq!(
        shown.iter().map(|w| w.strip_prefix('-').unwrap_or(w)).collect::<std::collections::BTreeSet<_>>(),
        DIRS.into_iter().collect()
    );

    // Each line is needed: without the one for the quoted name, the unit fails to write there.
    let line = dropin.lines().find(|l| l.starts_with("ReadWritePaths=") && l.contains("quo")).unwrap().to_string();
    let weakened = dropin.replace(&format!("{line}\n"), "");
    assert!(!tb.install("pftb-odd.service", &weakened), "the unit wrote {:?} without its ReadWritePaths= line", DIRS[1]);
}

/// Splits a list as `systemctl show` prints it: words separated by spaces, a word with odd
/// characters in double quotes with C escapes (`\\`, `\"`).
fn systemd_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        let quoted = c == '"';
        if quoted {
            chars.next();
        }
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted => break,
                ' ' if !quoted => break,
                '\\' => word.push(chars.next().expect("an escape at the end of systemctl's output")),
                c => word.push(c),
            }
        }
        words.push(word);
    }
    words
}

/// A Type=notify daemon whose every incarnation writes its own files: one during start-up
/// (before READY=1) and one once steady. Restart=on-failure brings it back after a crash.
const SOAK_DAEMON: &str = r#"#!/usr/bin/python3
import os, socket, time
d = "/var/lib/pftb-soak"
n = int(open(f"{d}/count").read()) + 1 if os.path.exists(f"{d}/count") else 1
open(f"{d}/count", "w").write(str(n))
open(f"{d}/startup-{n}", "w").write("x")
time.sleep(2)
addr = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", "\0" + addr[1:] if addr.startswith("@") else addr)
time.sleep(3)
open(f"{d}/steady-{n}", "w").write("x")
while True:
    time.sleep(60)
"#;

/// A unit restarted three times and crashed once while one recorder watches it: the profile
/// holds what each of the five incarnations did, in the phase it did it, and four restarts.
#[test]
fn a_soak_follows_restarts_and_a_crash() {
    if !is_root_or_skip("a_soak_follows_restarts_and_a_crash") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("soak.json");
    let tb = Testbed::up();
    tb.write_file("/usr/local/bin/pftb-soak", SOAK_DAEMON);
    tb.ok(&["chmod", "755", "/usr/local/bin/pftb-soak"]);
    tb.write_file(
        "/etc/systemd/system/pftb-soak.service",
        "[Service]\nType=notify\nNotifyAccess=main\nExecStart=/usr/local/bin/pftb-soak\nRestart=on-failure\nRestartSec=1\nStateDirectory=pftb-soak\n",
    );
    tb.ok(&["systemctl", "daemon-reload"]);
    let steady = |n: u32| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !tb.exec(&["test", "-e", &format!("/var/lib/pftb-soak/steady-{n}")]).0 {
            assert!(Instant::now() < deadline, "incarnation {n} never became steady");
            std::thread::sleep(Duration::from_millis(300));
        }
        // A sample falls in the steady phase before anything else happens: a sample window
        // that spans a restart puts what is new in it in the start-up phase.
        std::thread::sleep(Duration::from_millis(3500));
    };

    // The unit is not running yet: the recorder waits for it.
    let recorder = start_recording(&[
        "--unit",
        "pftb-soak.service",
        "--container-pid",
        &tb.leader(),
        "--checkpoint",
        "2s",
        "-o",
        profile.to_str().unwrap(),
    ]);
    tb.ok(&["systemctl", "start", "pftb-soak.service"]);
    steady(1);
    for n in 2..=4 {
        tb.ok(&["systemctl", "restart", "pftb-soak.service"]);
        steady(n);
    }
    // A crash: systemd restarts it by itself.
    tb.ok(&["systemctl", "kill", "--signal=SIGKILL", "pftb-soak.service"]);
    steady(5);

    // While it records, status says the recorder is writing.
    let status = Command::new(profiler_bin()).args(["status", "--format", "json", profile.to_str().unwrap()]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["recorder"]["state"], "writing", "{status}");
    stop_recording(recorder);
    tb.ok(&["systemctl", "stop", "pftb-soak.service"]);

    let recorded = profiler::profile::load(&profile).unwrap();
    let phase = |path: &str| recorded.paths.get(path).and_then(|u| u.seen.as_ref()).and_then(|s| s.phase.clone());
    for n in 1..=5 {
        assert_eq!(
            phase(&format!("/var/lib/pftb-soak/startup-{n}")).as_deref(),
            Some("start-up"),
            "incarnation {n}: {:#?}",
            recorded.paths
        );
        assert_eq!(phase(&format!("/var/lib/pftb-soak/steady-{n}")).as_deref(), Some("steady"), "incarnation {n}: {:#?}", recorded.paths);
    }
    assert_eq!(recorded.recording.restarts, 4, "three restarts and one crash");
    let text = Command::new(profiler_bin()).args(["status", profile.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    eprintln!("{text}");
    assert!(text.contains("4 restart(s)") && text.contains("recorder  stopped"), "{text}");
}

/// A daemon that degrades silently: it tries to run its work at a lower scheduling priority,
/// to open a raw ICMP socket for health probes and to keep its state under /var/lib; each
/// that fails has a fallback (normal priority, TCP probes, state in /tmp), and it keeps
/// serving, telling its client which modes it runs in. (mlockall would be the classic first
/// step, but the nspawn testbed refuses it even unhardened.)
const DEGRADING_DAEMON: &str = r#"#!/usr/bin/python3
import mmap, os, socket
modes = []
try:
    os.setpriority(os.PRIO_PROCESS, 0, 5)
except OSError:
    modes.append("priority-unchanged")
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    modes.append("probe=raw-icmp")
except PermissionError:
    modes.append("probe=tcp")
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC).close()
    modes.append("jit=on")
except OSError:
    modes.append("jit=off")
state = "/var/lib/pftb-degrade/state"
try:
    with open(state, "w") as f:
        f.write("ok")
except OSError:
    state = "/tmp/pftb-degrade-state"
    with open(state, "w") as f:
        f.write("ok")
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 7070))
server.listen()
try:
    address = os.environ["NOTIFY_SOCKET"]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.connect("\0" + address[1:] if address.startswith("@") else address)
    notify.send(b"READY=1")
    notify.close()
except OSError:
    pass
while True:
    client, _ = server.accept()
    client.recv(100)
    client.sendall((" ".join(modes) + " state=" + state + "\n").encode())
    client.close()
"#;

const DEGRADE_UNIT: &str = "pftb-degrade.service";
/// A notify daemon with a helper before it (setpriv, which calls capset) whose failure the
/// unit ignores.
const DEGRADE_UNIT_FILE: &str = "[Service]\nType=notify\nTimeoutStartSec=8\nExecStartPre=-/usr/bin/setpriv --inh-caps=-all /bin/true\nExecStart=/usr/local/bin/pftb-degrade\n";

/// Asks the daemon, with a plain TCP client, which modes it runs in; waits for it to listen.
fn degrade_modes(tb: &Testbed) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, text) = tb.exec(&["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/7070 && echo hi >&3 && cat <&3"]);
        if ok && text.contains("state=") {
            return text.trim().to_string();
        }
        assert!(Instant::now() < deadline, "the daemon did not answer: {text}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs `profiler check` on the daemon from its next start, driving it with its client;
/// returns (exit code, stdout).
fn check_degrade(tb: &Testbed, baseline: &Path, format: &str) -> (Option<i32>, String, String) {
    tb.ok(&["systemctl", "stop", DEGRADE_UNIT]);
    let leader = tb.leader();
    let args = [
        "check",
        "--unit",
        DEGRADE_UNIT,
        "--container-pid",
        &leader,
        "--baseline",
        baseline.to_str().unwrap(),
        "--duration",
        "10s",
        "--format",
        format,
    ];
    let child = until_recording(Command::new(profiler_bin()).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    // Not waiting for the start: a daemon that cannot notify never finishes starting.
    tb.ok(&["systemctl", "start", "--no-block", DEGRADE_UNIT]);
    let modes = degrade_modes(tb);
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), modes)
}

fn apply(args: &[&str]) -> std::process::Output {
    let out = Command::new(profiler_bin()).arg("apply").args(args).output().unwrap();
    eprintln!("apply {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// The degrading daemon is profiled unhardened; `apply` installs its drop-in (refusing a
/// foreign file first), under which it keeps every mode and `check` finds nothing; under a
/// deliberately tightened drop-in it degrades and `check` names each fallback's cause; and
/// `apply --revert` leaves the unit's settings as they were.
#[test]
fn check_catches_a_daemon_that_degrades_and_apply_round_trips() {
    if !is_root_or_skip("check_catches_a_daemon_that_degrades_and_apply_round_trips") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let baseline = work.path().join("baseline.json");
    let tb = Testbed::up();
    let leader = tb.leader();
    tb.write_file("/usr/local/bin/pftb-degrade", DEGRADING_DAEMON);
    tb.ok(&["chmod", "755", "/usr/local/bin/pftb-degrade"]);
    tb.ok(&["mkdir", "-p", "/var/lib/pftb-degrade"]);
    tb.write_file(&format!("/etc/systemd/system/{DEGRADE_UNIT}"), DEGRADE_UNIT_FILE);
    tb.ok(&["systemctl", "daemon-reload"]);

    // Baseline, unhardened: every privileged mode works.
    let recorder = start_recording(&["--unit", DEGRADE_UNIT, "--container-pid", &leader, "-o", baseline.to_str().unwrap()]);
    tb.ok(&["systemctl", "start", DEGRADE_UNIT]);
    let full = degrade_modes(&tb);
    std::thread::sleep(Duration::from_secs(6));
    stop_recording(recorder);
    assert_eq!(full, "probe=raw-icmp jit=on state=/var/lib/pftb-degrade/state");
    const SETTINGS: &str =
        "ProtectSystem,CapabilityBoundingSet,SystemCallFilter,ReadWritePaths,RestrictAddressFamilies,DropInPaths,PrivateTmp";
    let before = tb.ok(&["systemctl", "show", "-p", SETTINGS, DEGRADE_UNIT]);

    // A file apply did not write is never clobbered.
    let dropin = format!("/etc/systemd/system/{DEGRADE_UNIT}.d/50-profiler.conf");
    tb.write_file(&dropin, "[Service]\nEnvironment=MINE=1\n");
    let out = apply(&["--unit", DEGRADE_UNIT, "--container-pid", &leader, baseline.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to touch"));
    assert_eq!(tb.ok(&["cat", &dropin]), "[Service]\nEnvironment=MINE=1\n");
    tb.ok(&["rm", &dropin]);

    // Apply and restart: it keeps every mode, and check finds nothing.
    let out = apply(&["--unit", DEGRADE_UNIT, "--container-pid", &leader, "--restart", baseline.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(tb.ok(&["cat", &dropin]).starts_with("# Installed by `profiler apply`."));
    let out = apply(&["--unit", DEGRADE_UNIT, "--container-pid", &leader, "--dry-run", baseline.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing would change"));
    let (code, report, modes) = check_degrade(&tb, &baseline, "json");
    eprintln!("check under the generated drop-in:\n{report}");
    assert_eq!(modes, full, "the daemon degraded under its own generated drop-in");
    assert_eq!(code, Some(0), "check found something under the generated drop-in:\n{report}");
    let doc: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(doc["findings"], serde_json::json!([]));
    assert!(doc["hardened_seconds"].as_f64().unwrap() >= 9.0, "{doc}");

    // Tightened on purpose: no setpriority, no CAP_NET_RAW, /var/lib read-only.
    let tighten = format!("/etc/systemd/system/{DEGRADE_UNIT}.d/60-tighten.conf");
    tb.write_file(&tighten, "[Service]\nSystemCallFilter=~setpriority\nCapabilityBoundingSet=~CAP_NET_RAW\nReadWritePaths=\n");
    tb.ok(&["systemctl", "daemon-reload"]);
    let (code, report, modes) = check_degrade(&tb, &baseline, "text");
    eprintln!("check under the tightened drop-in:\n{report}");
    assert_eq!(modes, "priority-unchanged probe=tcp jit=on state=/tmp/pftb-degrade-state");
    assert_eq!(code, Some(1), "{report}");
    for expected in [
        "setpriority EPERM",
        "SystemCallFilter= (setpriority is not allowed by the unit's filter, SystemCallErrorNumber=EPERM)",
        "socket EPERM",
        "[capability] CAP_NET_RAW",
        "CapabilityBoundingSet= (CAP_NET_RAW now refused)",
        "EROFS",
        "ProtectSystem= or ReadOnlyPaths=",
        "/tmp/pftb-degrade-state",
        "[write-failed] create EROFS /var/lib/pftb-degrade/state",
        "ReadWritePaths=/var/lib/pftb-degrade would allow it",
        "by /usr/local/bin/pftb-degrade",
    ] {
        assert!(report.contains(expected), "{expected:?} missing from:\n{report}");
    }

    // One degradation at a time: its cause is the first finding, and little else is said.
    let mut counts = String::new();
    for (setting, cause) in [
        ("CapabilityBoundingSet=~CAP_NET_RAW", "CAP_NET_RAW at "),
        ("SystemCallFilter=~setpriority", "setpriority EPERM"),
        ("ReadWritePaths=", "create EROFS /var/lib/pftb-degrade/state"),
        // EPERM from systemd's seccomp filter (252), EACCES from the kernel's own MDWE (257).
        ("MemoryDenyWriteExecute=yes", "mmap E"),
        ("SystemCallFilter=~capset", "capset EPERM"),
        ("RestrictAddressFamilies=~AF_UNIX", "socket EAFNOSUPPORT"),
    ] {
        tb.write_file(&tighten, &format!("[Service]\n{setting}\n"));
        tb.ok(&["systemctl", "daemon-reload"]);
        let (code, report, modes) = check_degrade(&tb, &baseline, "json");
        eprintln!("check with {setting} over the drop-in ({modes}):\n{report}");
        let doc: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(code, Some(1), "{setting}: {report}");
        let first = doc["findings"][0]["operation"].as_str().unwrap_or_default();
        assert!(first.starts_with(cause), "{setting}: the first finding is {first:?}, not {cause:?}");
        let counted = doc["findings_counted"].as_u64().unwrap();
        assert!(counted <= 5, "{setting}: {counted} findings");
        counts.push_str(&format!("{setting}: {counted} finding(s), first {first:?}\n"));
    }
    let _ = std::fs::write(std::env::temp_dir().join(format!("profiler-e2e-degrade-{}.txt", tb.systemd_major())), counts);

    // Revert: the unit is as it was.
    tb.ok(&["rm", &tighten]);
    let out = apply(&["--unit", DEGRADE_UNIT, "--container-pid", &leader, "--revert", "--restart"]);
    assert!(out.status.success());
    assert!(!tb.exec(&["test", "-e", &dropin]).0, "the drop-in is still there");
    assert_eq!(tb.ok(&["systemctl", "show", "-p", SETTINGS, DEGRADE_UNIT]), before);
    assert_eq!(degrade_modes(&tb), full);
}

/// `apply --container-pid` writes inside the container's own root: a drop-in directory there
/// that is a symlink to an absolute path reaches that path in the container, never the same
/// path on the host.
#[test]
fn apply_never_writes_through_a_containers_symlink_onto_the_host() {
    if !is_root_or_skip("apply_never_writes_through_a_containers_symlink_onto_the_host") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let host_dir = tempfile::Builder::new().prefix("pftb-host-").tempdir_in("/tmp").unwrap();
    let host = host_dir.path().to_str().unwrap().to_string();
    let tb = Testbed::up();
    let unit = "pftb-symlink.service";
    tb.write_file(&format!("/etc/systemd/system/{unit}"), "[Service]\nExecStart=/bin/sleep infinity\n");
    tb.ok(&["mkdir", "-p", &host]);
    tb.ok(&["ln", "-s", &host, &format!("/etc/systemd/system/{unit}.d")]);
    tb.ok(&["systemctl", "daemon-reload"]);
    let profile = work.path().join("p.json");
    let recorded = Command::new(profiler_bin()).args(["record", "-o", profile.to_str().unwrap(), "--", "/bin/true"]).output().unwrap();
    assert!(recorded.status.success(), "{}", String::from_utf8_lossy(&recorded.stderr));

    let out = apply(&["--unit", unit, "--container-pid", &tb.leader(), profile.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_dir(host_dir.path()).unwrap().count(), 0, "apply wrote into the host's {host}");
    let inside = tb.ok(&["cat", &format!("{host}/50-profiler.conf")]);
    assert!(inside.starts_with("# Installed by `profiler apply`."), "{inside}");
    let out = apply(&["--unit", unit, "--container-pid", &tb.leader(), "--revert"]);
    assert!(out.status.success());
    assert!(!tb.exec(&["test", "-e", &format!("{host}/50-profiler.conf")]).0, "revert removed it inside");
}

/// A daemon under a unit that already restricts itself: it keeps trying what its sandbox
/// refuses (the clock, a net namespace, a netlink socket), and does its allowed work.
const RESTRICTED_DAEMON: &str = r#"#!/usr/bin/python3
import ctypes, socket
libc = ctypes.CDLL(None, use_errno=True)
class Timespec(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
def refused():
    tried = ["clock=%d" % libc.clock_settime(0, ctypes.byref(Timespec(0, 0)))]
    tried.append("unshare=%d" % libc.unshare(0x40000000))
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()
        tried.append("netlink=0")
    except OSError:
        tried.append("netlink=-1")
    return " ".join(tried)
with open("/var/lib/pftb-restricted/state", "w") as f:
    f.write("ok")
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 7071))
server.listen()
while True:
    client, _ = server.accept()
    client.recv(100)
    client.sendall((refused() + " state=ok\n").encode())
    client.close()
"#;

const RESTRICTED_UNIT: &str = "pftb-restricted.service";

/// The unit's own sandbox, with its syscall filter as `filter`: no namespaces, two families, a
/// small bounding set and a closed device policy.
fn restricted_settings(filter: &str) -> String {
    format!(
        "[Service]\nExecStart=/usr/local/bin/pftb-restricted\n{filter}SystemCallErrorNumber=EPERM\nRestrictNamespaces=yes\n\
         RestrictAddressFamilies=AF_UNIX AF_INET\nCapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_CHOWN CAP_NET_BIND_SERVICE\n\
         DevicePolicy=closed\nDeviceAllow=/dev/null rw\n"
    )
}

/// What the daemon answers: each refused attempt's result, and its state.
fn restricted_reply(tb: &Testbed) -> String {
    tcp_reply(tb, 7071)
}

/// What a test daemon listening on 127.0.0.1:`port` in the container answers to a line,
/// retried for ten seconds while it starts.
fn tcp_reply(tb: &Testbed, port: u16) -> String {
    let client =
        format!("import socket; s = socket.create_connection(('127.0.0.1', {port})); s.send(b'x'); print(s.recv(200).decode().strip())");
    for _ in 0..50 {
        let (ok, text) = tb.exec(&["python3", "-c", &client]);
        if ok {
            return text.trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("nothing answered on port {port}");
}

/// systemd-analyze security's exposure per check (`--json=short`): name → exposure.
fn exposure_per_check(tb: &Testbed, unit: &str) -> std::collections::BTreeMap<String, f64> {
    let text = tb.ok(&["systemd-analyze", "security", "--no-pager", "--json=short", unit]);
    let rows: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    // "exposure" is a string ("0.1"), or null where the check does not apply.
    let exposure = |e: &serde_json::Value| e.as_str().map_or(e.as_f64(), |e| e.parse().ok()).unwrap_or(0.0);
    rows.as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().to_string(), exposure(&r["exposure"]))).collect()
}

/// Asserts that our exposure table judges the unit as it is now loaded exactly as the
/// container's `systemd-analyze security` does, check by check (252's and 257's tables).
fn assert_rows_match_systemd_analyze(tb: &Testbed, unit: &str) {
    use profiler::{exposure, harden::syscall_groups::SyscallGroups, harden::unit::UnitSecurity, systemd::unit::properties};
    let groups = SyscallGroups::parse(&tb.ok(&["systemd-analyze", "syscall-filter"]), "the testbed").unwrap();
    let settings = UnitSecurity::from_show(&properties(&tb.ok(&["systemctl", "show", unit])));
    let ours = exposure::assess(&settings, &groups);
    let theirs = exposure_per_check(tb, unit);
    let mut differ = Vec::new();
    for row in &ours.rows {
        let mine = ours.share(row) as f64 / 10.0;
        match theirs.get(row.id) {
            Some(their) if (their - mine).abs() < 0.05 => {}
            their => differ.push(format!("{}: ours {mine} ({}), systemd-analyze {their:?}", row.id, row.badness_text())),
        }
    }
    let unknown: Vec<&String> = theirs.keys().filter(|name| !ours.rows.iter().any(|r| r.id == name.as_str())).collect();
    eprintln!("{unit}: {} checks compared with systemd {}'s", ours.rows.len(), tb.systemd_major());
    assert!(differ.is_empty() && unknown.is_empty(), "{unit}: rows that differ {differ:#?}, checks we lack {unknown:?}");
}

/// Asserts that no check of `systemd-analyze security` is worse with the drop-in than
/// without; how many improved.
fn assert_no_check_rose(
    unit: &str,
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) -> usize {
    let risen: Vec<String> = after
        .iter()
        .filter(|(name, a)| before.get(*name).is_some_and(|b| *a > b))
        .map(|(name, a)| format!("{name}: {} -> {a}", before[name]))
        .collect();
    let better = after.iter().filter(|(name, a)| before.get(*name).is_some_and(|b| *a < b)).count();
    eprintln!("{unit}: of {} checks, {} rose and {better} fell with the drop-in", after.len(), risen.len());
    assert!(risen.is_empty(), "{unit}: checks worse than the unit alone: {risen:?}");
    assert!(before.values().any(|e| *e > 0.0), "{unit}: no exposure read at all: {before:?}");
    better
}

/// The issue's case, end to end under a real systemd: a unit that refuses the clock, a net
/// namespace and netlink, whose daemon keeps trying all three. Recorded, then `apply
/// --restart`: the daemon works as before, each refusal is in the profile and allowed by no
/// line, and no check of `systemd-analyze security` is worse than before.
#[test]
fn a_unit_that_already_restricts_itself_is_never_loosened() {
    if !is_root_or_skip("a_unit_that_already_restricts_itself_is_never_loosened") {
        return;
    }
    let tb = Testbed::up();
    let leader = tb.leader();
    tb.write_file("/usr/local/bin/pftb-restricted", RESTRICTED_DAEMON);
    tb.ok(&["chmod", "755", "/usr/local/bin/pftb-restricted"]);
    tb.ok(&["mkdir", "-p", "/var/lib/pftb-restricted"]);
    // The filter as a deny list, and as an allow list the clock is taken out of.
    for filter in ["SystemCallFilter=~@clock\n", "SystemCallFilter=@system-service\nSystemCallFilter=~@clock\n"] {
        eprintln!("the unit's filter: {filter}");
        restricted_unit_round(&tb, &leader, filter);
    }
}

/// One round of `a_unit_that_already_restricts_itself_is_never_loosened` with `filter`.
fn restricted_unit_round(tb: &Testbed, leader: &str, filter: &str) {
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("restricted.json");
    let _ = tb.exec(&["systemctl", "stop", RESTRICTED_UNIT]);
    let _ = tb.exec(&["rm", "-rf", &format!("/etc/systemd/system/{RESTRICTED_UNIT}.d")]);
    tb.write_file(&format!("/etc/systemd/system/{RESTRICTED_UNIT}"), &restricted_settings(filter));
    tb.ok(&["systemctl", "daemon-reload"]);

    let recorder = start_recording(&["--unit", RESTRICTED_UNIT, "--container-pid", leader, "-o", profile.to_str().unwrap()]);
    tb.ok(&["systemctl", "start", RESTRICTED_UNIT]);
    let before_reply = restricted_reply(tb);
    restricted_reply(tb);
    stop_recording(recorder);
    assert_eq!(before_reply, "clock=-1 unshare=-1 netlink=-1 state=ok", "the unit's own sandbox refuses all three");
    let recorded = profiler::profile::load(&profile).unwrap();
    assert!(recorded.refused.contains_key("namespace net EPERM"), "{:?}", recorded.refused);
    assert!(recorded.refused.contains_key("family AF_NETLINK EAFNOSUPPORT"), "{:?}", recorded.refused);
    assert!(recorded.refused_syscalls().contains_key(&("x86_64", "clock_settime")), "{:?}", recorded.errors);
    let before = exposure_per_check(tb, RESTRICTED_UNIT);

    let out = apply(&["--unit", RESTRICTED_UNIT, "--container-pid", leader, "--restart", profile.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dropin = tb.ok(&["cat", &format!("/etc/systemd/system/{RESTRICTED_UNIT}.d/50-profiler.conf")]);
    eprintln!("installed drop-in:\n{dropin}");
    assert_eq!(restricted_reply(tb), before_reply, "the daemon works as it did");
    let lines = |key: &str| dropin.lines().filter(|l| l.starts_with(key)).collect::<Vec<_>>().join(" ");
    assert!(!lines("SystemCallFilter=").contains("clock_settime"), "{dropin}");
    assert!(!lines("RestrictAddressFamilies=").contains("AF_NETLINK"), "{dropin}");
    assert!(!lines("RestrictNamespaces=").contains("net"), "{dropin}");
    assert!(!lines("DeviceAllow=").contains("/dev/"), "the unit's device policy is its own: {dropin}");
    assert_no_check_rose(RESTRICTED_UNIT, &before, &exposure_per_check(tb, RESTRICTED_UNIT));
    let shown = tb.ok(&["systemctl", "show", "-p", "SystemCallFilter,RestrictNamespaces,RestrictAddressFamilies", RESTRICTED_UNIT]);
    assert!(!shown.contains("clock_settime") || shown.contains("SystemCallFilter=~"), "clock_settime is allowed again: {shown}");
}

/// Asserts that nothing of systemd's own set-up of the unit is in the profile: since 255 the
/// executor is exec'd through a descriptor in the unit's cgroup and sets the unit up there.
fn assert_nothing_is_systemds(profile: &profiler::profile::Profile) {
    let text = serde_json::to_string(profile).unwrap();
    for name in ["/proc/self/fd/", "systemd-executor", "(sd-"] {
        assert!(!text.contains(name), "{name} is in the profile: {:?}", profile.executables.keys());
    }
    let setup = ["mount", "umount2", "pivot_root", "unshare", "setns", "fsopen", "fsmount", "move_mount", "open_tree", "mount_setattr"];
    let made: Vec<&str> = setup.into_iter().filter(|call| profiler_tests::has_syscall(profile, call)).collect();
    assert!(made.is_empty(), "the executor's set-up calls were recorded as the service's: {made:?}");
    assert!(profile.namespaces.is_empty(), "namespaces: {:?}", profile.namespaces);
    let cgroup_writes: Vec<&String> = profile.paths.keys().filter(|p| p.starts_with("/sys/fs/cgroup")).collect();
    assert!(cgroup_writes.is_empty(), "cgroup files: {cgroup_writes:?}");
}

/// A unit that systemd sets up heavily (a dynamic user, a private /tmp, devices and users, a
/// read-only system, no capabilities) while its own command only writes its state: every
/// namespace, mount, credential and capability change of that set-up is systemd's, and none
/// of it may be in the profile, on 252 (a forked manager) as on 257 (the executor).
#[test]
fn systemds_own_setup_of_a_unit_is_not_the_services() {
    if !is_root_or_skip("systemds_own_setup_of_a_unit_is_not_the_services") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("sandboxed.json");
    let tb = Testbed::up();
    let unit = "pftb-sandboxed.service";
    tb.write_file(
        &format!("/etc/systemd/system/{unit}"),
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ok > \"$STATE_DIRECTORY/state\"; cat /etc/hostname'\n\
         DynamicUser=yes\nStateDirectory=pftb-sandboxed\nPrivateTmp=yes\nPrivateDevices=yes\nPrivateUsers=yes\n\
         ProtectSystem=strict\nProtectHome=yes\nProtectKernelTunables=yes\nProtectControlGroups=yes\n\
         RestrictNamespaces=yes\nCapabilityBoundingSet=\nNoNewPrivileges=yes\nKeyringMode=private\n",
    );
    tb.ok(&["systemctl", "daemon-reload"]);
    let recorder = start_recording(&["--unit", unit, "--container-pid", &tb.leader(), "-o", profile.to_str().unwrap()]);
    for _ in 0..2 {
        tb.ok(&["systemctl", "start", unit]);
    }
    stop_recording(recorder);
    assert_eq!(tb.ok(&["cat", "/var/lib/pftb-sandboxed/state"]).trim(), "ok");

    let recorded = profiler::profile::load(&profile).unwrap();
    eprintln!("systemd {}: executables {:?}", tb.systemd_major(), recorded.executables.keys());
    let commands = ["/bin/sh", "/usr/bin/sh", "/usr/bin/cat", "/bin/cat"];
    assert!(recorded.executables.keys().all(|e| commands.contains(&e.as_str())), "{:?}", recorded.executables.keys());
    assert!(recorded.executables.keys().any(|e| e.ends_with("/sh")), "the command itself was recorded");
    assert_nothing_is_systemds(&recorded);
    let needed = profiler_tests::needed_capabilities(&recorded);
    assert!(needed.is_empty(), "capabilities of the set-up: {needed:?}");
    let credentials = ["setresuid", "setresgid", "setgroups", "capset", "keyctl", "add_key", "prctl"];
    let made: Vec<&str> = credentials.into_iter().filter(|c| profiler_tests::has_syscall(&recorded, c)).collect();
    assert!(made.is_empty(), "{made:?}");
}

/// A daemon that forks into the background (Type=forking with a PID file), started as an
/// instance of a template unit, in a slice of its own and under a dynamic user.
const FORKING_DAEMON: &str = r#"#!/usr/bin/python3
import os, socket, sys
instance = sys.argv[1]
state = os.environ["STATE_DIRECTORY"]
pid = os.fork()
if pid:
    with open(f"/run/pftb-fork-{instance}/pid", "w") as f:
        f.write(str(pid))
    sys.exit(0)
os.setsid()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 7081))
server.listen()
while True:
    client, _ = server.accept()
    path = f"{state}/count"
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    open(path, "w").write(str(n))
    client.sendall(f"{instance} count={n} uid={os.getuid()}\n".encode())
    client.close()
"#;

/// The forking daemon's answer, retried while it starts.
fn forking_reply(tb: &Testbed) -> String {
    tcp_reply(tb, 7081)
}

/// A template instance in its own slice, with DynamicUser= and Type=forking: recorded across a
/// restart, then `apply --restart`: it starts, forks, serves and keeps its state under the
/// drop-in, and the manager takes every line of it.
#[test]
fn a_forking_template_instance_with_a_dynamic_user_in_its_own_slice() {
    if !is_root_or_skip("a_forking_template_instance_with_a_dynamic_user_in_its_own_slice") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("fork.json");
    let tb = Testbed::up();
    let leader = tb.leader();
    let unit = "pftb-fork@one.service";
    tb.write_file("/usr/local/bin/pftb-fork", FORKING_DAEMON);
    tb.ok(&["chmod", "755", "/usr/local/bin/pftb-fork"]);
    tb.write_file(
        "/etc/systemd/system/pftb-fork@.service",
        "[Service]\nType=forking\nSlice=pftb-apps.slice\nDynamicUser=yes\nStateDirectory=pftb-fork-%i\n\
         RuntimeDirectory=pftb-fork-%i\nPIDFile=/run/pftb-fork-%i/pid\nExecStart=/usr/local/bin/pftb-fork %i\n",
    );
    tb.ok(&["systemctl", "daemon-reload"]);

    let recorder = start_recording(&["--unit", unit, "--container-pid", &leader, "-o", profile.to_str().unwrap()]);
    tb.ok(&["systemctl", "start", unit]);
    assert!(forking_reply(&tb).starts_with("one count=1 uid="));
    tb.ok(&["systemctl", "restart", unit]);
    assert!(forking_reply(&tb).starts_with("one count=2 "));
    stop_recording(recorder);
    let cgroup = tb.ok(&["systemctl", "show", "-P", "ControlGroup", unit]);
    assert!(cgroup.contains("/pftb-apps.slice/"), "the instance runs in its slice: {cgroup}");

    let recorded = profiler::profile::load(&profile).unwrap();
    assert!(recorded.executables.contains_key("/usr/local/bin/pftb-fork"), "{:?}", recorded.executables.keys());
    assert_eq!(recorded.recording.restarts, 1, "one restart");
    assert_nothing_is_systemds(&recorded);

    let out = apply(&["--unit", unit, "--container-pid", &leader, "--restart", profile.to_str().unwrap()]);
    assert!(out.status.success(), "apply --restart: {}", String::from_utf8_lossy(&out.stderr));
    let dropin = tb.ok(&["cat", &format!("/etc/systemd/system/{unit}.d/50-profiler.conf")]);
    eprintln!("installed drop-in:\n{dropin}");
    assert!(dropin.contains("\nSystemCallFilter="), "{dropin}");
    let reply = forking_reply(&tb);
    assert!(reply.starts_with("one count=3 "), "it serves and keeps its state under the drop-in: {reply}");
}

/// How long the healthy sequence is watched, both in the baseline and under `check`: long
/// enough for two restarts and the client load, the same both times so silence is judged.
const HEALTHY_WATCH: &str = "30s";

/// `profiler record` (baseline) or `profiler check` on `unit`, for `HEALTHY_WATCH`, while the
/// daemon is restarted, driven by its real client, rotated and restarted again; the
/// recorder's stdout.
fn through_restarts_and_load(tb: &Testbed, unit: &str, profiler_args: &[&str], drive: &dyn Fn(&Testbed)) -> (Option<i32>, String) {
    let leader = tb.leader();
    let mut args = vec![profiler_args[0], "--unit", unit, "--container-pid", &leader, "--duration", HEALTHY_WATCH];
    args.extend_from_slice(&profiler_args[1..]);
    let child = until_recording(Command::new(profiler_bin()).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    for _ in 0..2 {
        tb.ok(&["systemctl", "restart", unit]);
        drive(tb);
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// nginx's real client load: requests, a reload, and a log rotation as logrotate does it
/// (move the log, then USR1 so nginx reopens it).
fn drive_nginx(tb: &Testbed) {
    for _ in 0..20 {
        assert_eq!(tb.http_status(), Some(200));
    }
    tb.ok(&["systemctl", "reload", "nginx.service"]);
    std::thread::sleep(Duration::from_millis(500));
    // To the master only, as Debian's logrotate script does (`invoke-rc.d nginx rotate`):
    // `systemctl kill` would signal the workers too, and a worker that reopens before the
    // master has made the new file is refused (www-data cannot create in /var/log/nginx).
    tb.ok(&["sh", "-c", "mv /var/log/nginx/access.log /var/log/nginx/access.log.1 && kill -USR1 $(cat /run/nginx.pid)"]);
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..20 {
        assert_eq!(tb.http_status(), Some(200));
    }
}

/// redis's real client load: redis-benchmark, writes, a background save (a per-run temporary
/// dump file) and a rewrite of the append-only file.
fn drive_redis(tb: &Testbed) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis(tb, &["PING"]) != "PONG" {
        assert!(Instant::now() < deadline, "redis did not answer");
        std::thread::sleep(Duration::from_millis(200));
    }
    tb.ok(&["redis-benchmark", "-q", "-n", "2000", "-t", "set,get,lpush,lpop"]);
    assert_eq!(redis(tb, &["SET", "healthy", "yes"]), "OK");
    assert!(redis(tb, &["BGSAVE"]).contains("Background saving started"));
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(redis(tb, &["GET", "healthy"]), "yes");
}

/// `check` is silent on healthy daemons: the baseline is recorded under the stock unit
/// through restarts and real client load, the generated drop-in is installed unchanged, and
/// `check` watches the same sequence: no finding at all.
#[test]
fn check_is_silent_on_healthy_daemons_through_restarts_and_load() {
    if !is_root_or_skip("check_is_silent_on_healthy_daemons_through_restarts_and_load") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tb = Testbed::up();
    for (unit, drive) in [("nginx.service", &drive_nginx as &dyn Fn(&Testbed)), ("redis-server.service", &drive_redis)] {
        tb.ok(&["rm", "-f", &format!("/etc/systemd/system/{unit}.d/50-profiler.conf")]);
        tb.ok(&["systemctl", "daemon-reload"]);
        tb.ok(&["systemctl", "start", unit]);
        let baseline = work.path().join(format!("{unit}.json"));
        let (code, _) = through_restarts_and_load(&tb, unit, &["record", "-o", baseline.to_str().unwrap()], drive);
        assert_eq!(code, Some(0), "recording the baseline of {unit}");
        apply_with_restart(&tb, unit, &baseline);
        let hardened = work.path().join(format!("{unit}-hardened.json"));
        let (code, report) = through_restarts_and_load(
            &tb,
            unit,
            &["check", "--baseline", baseline.to_str().unwrap(), "-o", hardened.to_str().unwrap(), "--format", "json"],
            drive,
        );
        // Kept for a look when this fails.
        for (which, path) in [("baseline", &baseline), ("hardened", &hardened)] {
            let _ =
                std::fs::copy(path, std::env::temp_dir().join(format!("profiler-e2e-check-{unit}-{}-{which}.json", tb.systemd_major())));
        }
        eprintln!("check {unit} under its generated drop-in:\n{report}");
        let doc: serde_json::Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
        assert_eq!(doc["findings"], serde_json::json!([]), "{unit}: check found something under its own drop-in");
        assert_eq!(code, Some(0), "{unit}");
        assert!(doc["hardened_seconds"].as_f64().unwrap() >= 27.0, "{doc}");
        tb.ok(&["systemctl", "stop", unit]);
    }
}

/// The unit's phases come from its manager's announcements on D-Bus: a reload that lasts a
/// fraction of a second, which a poll once a second would miss most of the time, is seen, and
/// what the reload command did is stamped with it.
#[test]
fn a_reload_shorter_than_a_second_is_seen_as_its_own_phase() {
    if !is_root_or_skip("a_reload_shorter_than_a_second_is_seen_as_its_own_phase") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("reload.json");
    let tb = Testbed::up();
    let unit = "pftb-reload.service";
    tb.write_file(
        &format!("/etc/systemd/system/{unit}"),
        "[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/sh -c 'touch /run/pftb-reloaded; sleep 0.2'\n",
    );
    tb.ok(&["systemctl", "daemon-reload"]);
    tb.ok(&["systemctl", "start", unit]);
    let recorder = start_recording(&["--unit", unit, "--container-pid", &tb.leader(), "-o", profile.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1500));
    tb.ok(&["systemctl", "reload", unit]);
    std::thread::sleep(Duration::from_millis(2500));
    stop_recording(recorder);
    tb.ok(&["systemctl", "stop", unit]);
    let recorded = profiler::profile::load(&profile).unwrap();
    let phase = recorded.paths.get("/run/pftb-reloaded").and_then(|u| u.seen.as_ref()).and_then(|s| s.phase.clone());
    assert_eq!(phase.as_deref(), Some("reload"), "{:#?}", recorded.paths.get("/run/pftb-reloaded"));
}
