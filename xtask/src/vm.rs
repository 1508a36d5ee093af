//! The kernel matrix: the root kernel tests, built once on the host, run again inside Debian's
//! own kernels (6.1 and 6.12) booted in qemu by `tests/vm/vm.sh`, with their results brought
//! back and counted like the host's.

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
        run(Command::new(&script).args(["setup", kernel]))?;
        let dir = tempfile::tempdir().context("a directory for the guest's files")?;
        stage(dir.path(), &binaries)?;
        println!("== the kernel tests under Debian's {kernel} kernel (qemu, TCG) ==");
        let started = Instant::now();
        let mut child =
            Command::new(&script).args(["run", kernel]).arg(dir.path()).stdout(Stdio::piped()).spawn().context("starting vm.sh run")?;
        let mut outcome = Outcome::default();
        for line in BufReader::new(child.stdout.take().context("vm.sh's stdout")?).lines() {
            let line = line.context("reading the guest's output")?;
            println!("[{kernel}] {line}");
            if let Some((p, f)) = test_result(&line) {
                outcome.passed += p;
                outcome.failed += f;
            }
        }
        let status = child.wait().context("waiting for vm.sh")?;
        outcome.seconds = started.elapsed().as_secs_f64();
        let skips = std::fs::read_to_string(dir.path().join("out/skips")).unwrap_or_default();
        outcome.skipped = skips.lines().map(|l| format!("[{kernel}] {l}")).collect();
        let hooks = std::fs::read_to_string(dir.path().join("out/hooks")).unwrap_or_default();
        outcome.hooks = hooks.lines().map(str::to_string).collect();
        if !status.success() && outcome.failed == 0 {
            // The guest died or a binary could not start: no result line says so.
            outcome.failed += 1;
            println!("[{kernel}] the run failed ({status}) without a failing test's result");
        }
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
    script.push_str("exit $status\n");
    std::fs::write(dir.join("cmd.sh"), script).context("writing the guest's script")
}
