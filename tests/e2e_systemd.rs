//! End to end under a real systemd (PID 1 of a systemd-nspawn container, tests/testbed): a
//! real Debian nginx is recorded from the host while curl drives it, the generated drop-in is
//! installed, and nginx must keep working under it while the filter is really enforced.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use profiler_tests::{is_root_or_skip, profiler_bin};

/// The container, booted for the test and powered off when it ends.
struct Testbed {
    script: PathBuf,
}

impl Testbed {
    fn up() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/testbed.sh");
        let out = Command::new(&script).arg("up").output().expect("run testbed.sh");
        assert!(out.status.success(), "testbed up failed: {}", String::from_utf8_lossy(&out.stderr));
        Self { script }
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
        std::fs::read_to_string(format!("{cache}/testbed/pftb.leader")).unwrap().trim().to_string()
    }

    /// Fetches the page with the real client; the HTTP status, or None when nothing answered.
    fn http_status(&self) -> Option<u16> {
        let (_, text) = self.exec(&["curl", "-s", "-o", "/dev/null", "--max-time", "3", "-w", "%{http_code}", "http://127.0.0.1/"]);
        text.trim().parse().ok().filter(|&code| code != 0)
    }

    fn exposure(&self, unit: &str) -> String {
        let text = self.ok(&["systemd-analyze", "security", "--no-pager", unit]);
        text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or("?").trim().to_string()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("down").output();
    }
}

/// `profiler record` in the background; waits until its probes are attached.
fn start_recording(args: &[&str]) -> Child {
    let mut child = Command::new(profiler_bin()).arg("record").args(args).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in lines.by_ref() {
        let line = line.unwrap();
        eprintln!("profiler: {line}");
        if line.contains("recording ") {
            break;
        }
        assert!(Instant::now() < deadline, "profiler did not start recording");
    }
    // Keep draining stderr so the profiler never blocks on a full pipe.
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

    // A unit that does not exist, and one that is not running (without --wait), are refused
    // by name before anything is written.
    let never = work.path().join("never.json");
    for (unit, expected) in [("no-such-thing.service", "unit no-such-thing.service does not exist"), ("nginx.service", "unit nginx.service is not running")] {
        let out = Command::new(profiler_bin())
            .args(["record", "--unit", unit, "--container-pid", &tb.leader(), "-o", never.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(expected), "{unit}: {stderr}");
        assert!(!never.exists());
    }

    // Record from the unit's first start: start-up, serving, reload and shutdown.
    let recorder = start_recording(&[
        "--unit", "nginx.service", "--container-pid", &tb.leader(), "--wait", "-o", profile.to_str().unwrap(),
    ]);
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
    assert!(recorded.capabilities["CAP_NET_BIND_SERVICE"].needed(), "nginx binds :80");
    assert!(!recorded.executables.keys().any(|e| e.contains("curl") || e.contains("nsenter")), "only the unit is recorded");

    // Generate against the container's own systemd groups, as on a real target host.
    let groups = work.path().join("groups.txt");
    std::fs::write(&groups, tb.ok(&["systemd-analyze", "syscall-filter"])).unwrap();
    let out = Command::new(profiler_bin())
        .args(["generate", "--syscall-groups", groups.to_str().unwrap(), profile.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dropin = String::from_utf8(out.stdout).unwrap();
    eprintln!("generated drop-in:\n{dropin}");

    const DROPIN: &str = "/etc/systemd/system/nginx.service.d/50-profiler.conf";
    tb.write_file(DROPIN, &dropin);
    let (verified, warnings) = tb.exec(&["systemd-analyze", "verify", "--man=no", "nginx.service"]);
    assert!(verified && warnings.trim().is_empty(), "systemd-analyze verify warned:\n{warnings}");
    tb.ok(&["systemctl", "daemon-reload"]);
    tb.ok(&["systemctl", "restart", "nginx.service"]);
    assert_eq!(tb.http_status(), Some(200), "nginx serves under the drop-in");
    tb.ok(&["systemctl", "reload", "nginx.service"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tb.http_status(), Some(200), "nginx serves after a reload under the drop-in");
    assert_eq!(tb.ok(&["systemctl", "show", "-P", "SystemCallErrorNumber", "nginx.service"]).trim(), "1", "EPERM is in force");
    let after = tb.exposure("nginx.service");
    eprintln!("exposure before: {before}\nexposure after: {after}");
    let report = format!("{dropin}\n# exposure before: {before}\n# exposure after: {after}\n");
    let _ = std::fs::write(std::env::temp_dir().join("profiler-e2e-nginx.txt"), report);

    // Enforcement: the same drop-in without the filter line that allows socket(2) must break
    // nginx (it cannot open its listening socket).
    let weakened: String = dropin
        .lines()
        .filter(|l| !(l.starts_with("SystemCallFilter=") && l.split(['=', ' ']).any(|w| w == "socket" || w == "@network-io")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(weakened, dropin, "the drop-in allows socket(2) somewhere");
    tb.write_file(DROPIN, &weakened);
    tb.ok(&["systemctl", "daemon-reload"]);
    let (restarted, _) = tb.exec(&["systemctl", "restart", "nginx.service"]);
    let serving = tb.http_status() == Some(200);
    assert!(!restarted && !serving, "nginx still started and served without socket(2) allowed");
}
