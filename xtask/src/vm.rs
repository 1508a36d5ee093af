//! The kernel matrix: the root kernel tests, built once on the host, run again inside Debian's
//! own kernels (6.1 and 6.12) booted in qemu by `tests/vm/vm.sh`, with their results brought
//! back and counted like the host's; then, per kernel, a real Debian host of that kernel's
//! release (systemd as PID 1) runs the shipped recorder unit against nginx end to end.

use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::{cargo, run, target_dir, test_result, workspace};

/// The kernels of the matrix, as `tests/vm/vm.sh` names them.
pub const KERNELS: &[&str] = &["6.1", "6.12"];

/// The root test binaries that exercise the kernel programs.
const KERNEL_TESTS: &[&str] = &["kernel", "signals", "blind_spots"];

/// What one kernel's run gave.
#[derive(Debug, Default)]
pub struct Outcome {
    pub passed: u64,
    pub failed: u64,
    pub skipped: Vec<String>,
    /// Capability hooks the tests saw attached (the file `PROFILER_HOOK_LOG` names).
    pub hooks: BTreeSet<String>,
    pub seconds: f64,
}

/// Runs the kernel tests in each of `kernels`; the outcome per kernel.
pub fn test(kernels: &[String]) -> anyhow::Result<Vec<(String, Outcome)>> {
    let script = workspace().join("tests/vm/vm.sh");
    let binaries = test_binaries()?;
    let mut outcomes = Vec::new();
    for kernel in kernels {
        if !KERNELS.contains(&kernel.as_str()) {
            bail!("unknown kernel {kernel} (the matrix has {})", KERNELS.join(", "));
        }
        let dir = tempfile::tempdir().context("a directory for the guest's files")?;
        stage(dir.path(), &binaries)?;
        println!("== the kernel tests under Debian's {kernel} kernel (qemu, TCG) ==");
        let started = Instant::now();
        let mut outcome = Outcome::default();
        let status = guest(&script, kernel, dir.path(), "tests", |line| {
            if let Some((p, f)) = test_result(line) {
                outcome.passed += p;
                outcome.failed += f;
            }
        })?;
        let skips = std::fs::read_to_string(dir.path().join("out/skips")).unwrap_or_default();
        outcome.skipped = skips.lines().map(|l| format!("[{kernel}] {l}")).collect();
        let hooks = std::fs::read_to_string(dir.path().join("out/hooks")).unwrap_or_default();
        outcome.hooks = hooks.lines().map(str::to_string).collect();
        if !status.success() && outcome.failed == 0 {
            // The guest died or a binary could not start: no result line says so.
            outcome.failed += 1;
            println!("[{kernel}] the run failed ({status}) without a failing test's result");
        }
        system_test(&script, kernel, &mut outcome)?;
        outcome.seconds = started.elapsed().as_secs_f64();
        outcomes.push((kernel.clone(), outcome));
    }
    Ok(outcomes)
}

/// Builds the root kernel test binaries; their paths.
fn test_binaries() -> anyhow::Result<Vec<PathBuf>> {
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--no-run", "--message-format=json", "-p", "profiler-tests"]);
    for test in KERNEL_TESTS {
        cmd.args(["--test", test]);
    }
    let out = cmd.stderr(Stdio::inherit()).output().context("building the kernel tests")?;
    if !out.status.success() {
        bail!("building the kernel tests failed");
    }
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if let Some(exe) = message["executable"].as_str()
            && message["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "test"))
        {
            binaries.push(PathBuf::from(exe));
        }
    }
    if binaries.len() != KERNEL_TESTS.len() {
        bail!("expected {} kernel test binaries, cargo built {binaries:?}", KERNEL_TESTS.len());
    }
    Ok(binaries)
}

/// Puts the release binary, the workload and the test binaries in `dir`, with the script the
/// guest runs: the workload goes back to the path the tests were built with.
fn stage(dir: &Path, binaries: &[PathBuf]) -> anyhow::Result<()> {
    let release = target_dir().join("release");
    let copy = |from: &Path, name: &str| std::fs::copy(from, dir.join(name)).with_context(|| format!("copying {}", from.display()));
    copy(&release.join("profiler"), "profiler")?;
    copy(&release.join("workload"), "workload")?;
    let mut script = String::from(
        "set -u\nexport PROFILER_BIN=/mnt/xfer/profiler PROFILER_SKIP_LOG=/mnt/xfer/out/skips PROFILER_HOOK_LOG=/mnt/xfer/out/hooks\n",
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        script.push_str("export CI=true\n");
    }
    let workload = release.join("workload");
    let parent = workload.parent().context("the workload's directory")?;
    script.push_str(&format!("mkdir -p '{}' && cp /mnt/xfer/workload '{}'\n", parent.display(), workload.display()));
    script.push_str("echo \"kernel $(uname -r)\"\nstatus=0\n");
    for binary in binaries {
        let name = binary.file_name().and_then(|n| n.to_str()).context("a test binary's name")?;
        copy(binary, name)?;
        script.push_str(&format!("/mnt/xfer/{name} --test-threads=2 || status=1\n"));
    }
    // These kernels also take fexit on the syscall tables, which the recorder uses only when
    // forced: the same tests again on it.
    script.push_str("echo '== again, the syscall hook forced to fexit on the syscall tables =='\n");
    for binary in binaries {
        let name = binary.file_name().and_then(|n| n.to_str()).context("a test binary's name")?;
        script.push_str(&format!("PROFILER_SYSCALL_HOOK=fexit /mnt/xfer/{name} --test-threads=2 || status=1\n"));
    }
    script.push_str("exit $status\n");
    std::fs::write(dir.join("cmd.sh"), script).context("writing the guest's script")
}

/// Boots `kernel` with the guest of `kind` on `dir`, passing each line of its output to
/// `each` (and printing it); its exit status.
pub fn guest(script: &Path, kernel: &str, dir: &Path, kind: &str, mut each: impl FnMut(&str)) -> anyhow::Result<std::process::ExitStatus> {
    run(Command::new(script).args(["setup", kernel, kind]))?;
    let mut child =
        Command::new(script).args(["run", kernel]).arg(dir).arg(kind).stdout(Stdio::piped()).spawn().context("starting vm.sh run")?;
    for line in BufReader::new(child.stdout.take().context("vm.sh's stdout")?).lines() {
        let line = line.context("reading the guest's output")?;
        // A tty's output under systemd ends its lines with \r\n.
        let line = line.trim_end_matches('\r');
        println!("[{kernel}] {line}");
        each(line);
    }
    child.wait().context("waiting for vm.sh")
}

/// The end-to-end run on a Debian host of `kernel`'s release, systemd as PID 1: the shipped
/// `profiler-record@.service` records nginx from its start while curl drives it, `status`
/// reads the live profile, then `apply --restart` hardens nginx, which must serve again. One
/// test, counted into `outcome`.
fn system_test(script: &Path, kernel: &str, outcome: &mut Outcome) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a directory for the guest's files")?;
    std::fs::copy(target_dir().join("release/profiler"), dir.path().join("profiler")).context("copying the profiler")?;
    std::fs::copy(workspace().join("dist/profiler-record@.service"), dir.path().join("profiler-record@.service"))
        .context("copying the recorder's unit")?;
    std::fs::write(dir.path().join("cmd.sh"), SYSTEM_TEST).context("writing the guest's script")?;
    println!("== a Debian host of the {kernel} kernel, systemd as PID 1: the recorder unit and nginx ==");
    let mut ok = false;
    let status = guest(script, kernel, dir.path(), "system", |line| ok |= line == "SYSTEM END TO END: OK")?;
    let name = format!("systemd_as_pid1_records_nginx_and_apply_hardens_it[{kernel}]");
    if status.success() && ok {
        outcome.passed += 1;
        println!("test {name} ... ok");
    } else {
        outcome.failed += 1;
        println!("test {name} ... FAILED ({status})");
    }
    // Kept for the closing notes and for a look after a failure.
    for file in ["nginx.service.json", "50-profiler.conf", "exposure.txt", "status-live.txt"] {
        let from = dir.path().join("out").join(file);
        if from.exists() {
            let _ = std::fs::copy(&from, std::env::temp_dir().join(format!("profiler-vm-{kernel}-{file}")));
        }
    }
    Ok(())
}

/// The guest's side of `system_test` (a POSIX shell script; any failing step fails it).
const SYSTEM_TEST: &str = r#"set -eu
out=/mnt/xfer/out
step() { echo "-- $*"; }
http() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' http://127.0.0.1/; }
trap 'rc=$?; [ $rc = 0 ] || { echo "FAILED (exit $rc); the recorder said:"; journalctl -u profiler-record@nginx.service -o cat --no-pager | tail -30; }' EXIT
step "kernel $(uname -r), $(systemctl --version | head -1), system $(systemctl is-system-running || true)"
install -m 755 /mnt/xfer/profiler /usr/local/bin/profiler
install -m 644 /mnt/xfer/profiler-record@.service /etc/systemd/system/profiler-record@.service
systemctl daemon-reload
step "the recorder runs as a service, before nginx starts"
systemctl start profiler-record@nginx.service
# The unit's state comes from its manager's announcements on the system bus; the recorder
# says so once subscribed, after it says it records (waiting for the earlier line alone raced).
bus="following nginx.service's state on its manager's bus (/run/dbus/system_bus_socket)"
for i in $(seq 300); do
  journalctl -u profiler-record@nginx.service -o cat --no-pager | grep -qF "$bus" && break
  systemctl is-active -q profiler-record@nginx.service || { echo "the recorder unit stopped"; exit 1; }
  sleep 1
done
journalctl -u profiler-record@nginx.service -o cat --no-pager
journalctl -u profiler-record@nginx.service -o cat --no-pager | grep -q 'recording /sys/fs/cgroup/system.slice/nginx.service'
journalctl -u profiler-record@nginx.service -o cat --no-pager | grep -qF "$bus"
step "nginx, driven by curl, reloaded"
systemctl start nginx.service
for i in 1 2 3; do [ "$(http)" = 200 ]; done
systemctl reload nginx.service; sleep 1
[ "$(http)" = 200 ]
step "status while it records"
profiler status /var/lib/profiler/nginx.service.json | tee $out/status-live.txt
grep -q '^recorder  writing' $out/status-live.txt
systemctl stop nginx.service
systemctl stop profiler-record@nginx.service
profiler status /var/lib/profiler/nginx.service.json | tee $out/status.txt
grep -q '^recorder  stopped' $out/status.txt
cp /var/lib/profiler/nginx.service.json $out/
step "apply --restart, then drive it again"
systemd-analyze security --no-pager nginx.service | tail -1 | tee $out/exposure.txt
profiler apply --unit nginx.service --restart /var/lib/profiler/nginx.service.json
cp /etc/systemd/system/nginx.service.d/50-profiler.conf $out/
for i in 1 2 3; do [ "$(http)" = 200 ]; done
systemctl reload nginx.service; sleep 1
[ "$(http)" = 200 ]
systemd-analyze security --no-pager nginx.service | tail -1 | tee -a $out/exposure.txt
echo "SYSTEM END TO END: OK"
"#;
