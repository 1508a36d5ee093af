//! Developer tasks: install the toolchain pieces, build, run the demo, run every test, benchmark.
//!
//! Everything slow is cached under PROFILER_CACHE (default /var/cache/profiler-build): the
//! bpf-linker build and the testbed's root filesystem. Nothing depends on the cache being there.

use std::{
    env,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

mod bench;
mod vm;
mod vm_bench;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

/// Debian packages: the BPF-capable rustc with precompiled core for bpfel (DESIGN §2), LLVM
/// for building bpf-linker, and what the systemd testbed needs.
const APT_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "libstd-rust-web-dev",
    "libstd-rust-web-dev-bpf",
    "llvm-22-dev",
    "systemd-container",
    "debootstrap",
    "zstd",
    "iproute2",
];
/// What only the tests need: Debian's Chromium renders `profiler report` headless.
const TEST_PACKAGES: &[&str] = &["chromium"];
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The rustup name under which Debian's toolchain is linked; profiler/build.rs uses it.
const LINKED_TOOLCHAIN: &str = "profiler-bpf";

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building needs (apt packages, bpf-linker, the linked toolchain).
    Setup,
    /// Set up, then build the release binary at target/release/profiler.
    Build,
    /// Build, then record the bundled demo workload and print its drop-in.
    Demo,
    /// Build, prepare the systemd testbed, and run every test (unit, root eBPF, end-to-end).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build, then run the root kernel tests inside Debian's own kernels in qemu (the kernel
    /// matrix; `test` runs it too).
    VmTest {
        /// 6.1 (Debian 12), 6.12 (Debian 13) or all.
        #[arg(long, default_value = "all")]
        kernel: String,
    },
    /// Build, then measure what recording costs a served workload and what the recorder holds
    /// under churn (see the README's Performance section).
    Bench(bench::BenchArgs),
    /// The getppid microbenchmark in Debian's kernels in qemu, each syscall hook against its
    /// floor (emulated: ratios only).
    VmBench {
        /// 6.1 (Debian 12) or 6.12 (Debian 13).
        #[arg(long, default_value = "6.12")]
        kernel: String,
        #[arg(long, default_value_t = 5)]
        rounds: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup(),
        Task::Build => build(),
        Task::Demo => demo(),
        Task::Test { args } => test(&args),
        Task::VmTest { kernel } => vm_test(&kernel),
        Task::VmBench { kernel, rounds } => {
            build()?;
            vm_bench::bench(&kernel, rounds)
        }
        Task::Bench(args) => {
            build()?;
            bench::bench(&target_dir().join("release"), &args)
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").into()
}

fn cache() -> PathBuf {
    env::var_os("PROFILER_CACHE").map_or_else(|| "/var/cache/profiler-build".into(), PathBuf::from)
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Installs the Debian packages not installed yet.
fn ensure_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> =
        packages.iter().copied().filter(|p| !Command::new("dpkg").args(["-s", p]).output().is_ok_and(|o| o.status.success())).collect();
    if !missing.is_empty() {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=900", "install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    Ok(())
}

fn setup() -> anyhow::Result<()> {
    ensure_packages(APT_PACKAGES)?;

    let linker_root = cache().join("bpf-linker");
    if !linker_root.join("bin/bpf-linker").is_file() {
        // Built with Debian's cargo against Debian's LLVM 22: no prebuilt download needed.
        run(Command::new("/usr/bin/cargo")
            .args(["install", "--locked", &format!("bpf-linker@{BPF_LINKER_VERSION}")])
            .args(["--no-default-features", "--features", "llvm-22", "--root"])
            .arg(&linker_root)
            .env("LLVM_PREFIX", "/usr/lib/llvm-22")
            .env_remove("RUSTUP_TOOLCHAIN"))?;
    }

    // aya-build runs `rustup run <toolchain> cargo` when rustup is on PATH, so Debian's
    // toolchain gets a rustup name; without rustup it uses the cargo on PATH directly.
    if Command::new("rustup").arg("--version").output().is_ok() {
        let listed = Command::new("rustup").args(["toolchain", "list"]).output()?;
        if !String::from_utf8_lossy(&listed.stdout).lines().any(|l| l.starts_with(LINKED_TOOLCHAIN)) {
            run(Command::new("rustup").args(["toolchain", "link", LINKED_TOOLCHAIN, "/usr"]))?;
        }
    }
    Ok(())
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace());
    cmd
}

fn build() -> anyhow::Result<()> {
    setup()?;
    run(cargo().args(["build", "--release", "-p", "profiler", "-p", "profiler-tests", "--bins"]))?;
    eprintln!("built {}", target_dir().join("release/profiler").display());
    Ok(())
}

fn demo() -> anyhow::Result<()> {
    build()?;
    let release = target_dir().join("release");
    let profile = env::temp_dir().join("profiler-demo.json");
    let _ = std::fs::remove_file(&profile);
    run(Command::new(release.join("profiler")).args(["record", "-o"]).arg(&profile).arg("--").arg(release.join("workload")).arg("demo"))?;
    run(Command::new(release.join("profiler")).arg("generate").arg(&profile))
}

/// Debian releases whose systemd the end-to-end tests run under: the default testbed first
/// (every test), then each other one (the end-to-end suite again).
const OTHER_TESTBED_RELEASES: &[&str] = &["trixie"];

fn test(args: &[String]) -> anyhow::Result<()> {
    build()?;
    ensure_packages(TEST_PACKAGES)?;
    let testbed = workspace().join("tests/testbed/testbed.sh");
    run(Command::new(&testbed).arg("setup"))?;
    for release in OTHER_TESTBED_RELEASES {
        run(Command::new(&testbed).arg("setup").env("TB_RELEASE", release))?;
    }
    let skips = tempfile::NamedTempFile::new().context("creating the skip log")?;
    let hooks = tempfile::NamedTempFile::new().context("creating the hook log")?;
    let logs = [("PROFILER_SKIP_LOG", skips.path()), ("PROFILER_HOOK_LOG", hooks.path())];
    let (mut passed, mut failed, mut success) = cargo_test(args, &[], &logs)?;
    // Only when every test was asked for, or the end-to-end suite by name.
    if args.is_empty() || args.iter().any(|a| a == "e2e_systemd") {
        for release in OTHER_TESTBED_RELEASES {
            println!("== the end-to-end suite under Debian {release}'s systemd ==");
            // The same selection as asked for (a test name filter), or the whole suite.
            let suite = if args.iter().any(|a| a == "--test") {
                args.to_vec()
            } else {
                ["--test", "e2e_systemd"]
                    .into_iter()
                    .map(String::from)
                    .chain(args.iter().filter(|a| *a != "e2e_systemd").cloned())
                    .collect()
            };
            let run = cargo_test(&suite, &[("TB_RELEASE", release)], &logs)?;
            (passed, failed, success) = (passed + run.0, failed + run.1, success && run.2);
        }
    }
    let mut skipped: Vec<String> = std::fs::read_to_string(skips.path())?.lines().map(str::to_string).collect();
    let mut exercised: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(hooks.path())?.lines().map(|h| (h.to_string(), "this host".to_string())).collect();
    // The kernel matrix runs with every test.
    if args.is_empty() {
        let kernels: Vec<String> = vm::KERNELS.iter().map(|k| k.to_string()).collect();
        for (kernel, outcome) in vm::test(&kernels)? {
            println!(
                "[{kernel}] {} passed, {} failed in {:.0} s; capability hooks: {:?}",
                outcome.passed, outcome.failed, outcome.seconds, outcome.hooks
            );
            (passed, failed) = (passed + outcome.passed, failed + outcome.failed);
            success &= outcome.failed == 0;
            skipped.extend(outcome.skipped);
            for hook in outcome.hooks {
                exercised.entry(hook).or_insert(kernel.clone());
            }
        }
        // Each way of seeing capability checks and syscalls ran on at least one kernel of the
        // matrix.
        for hook in ["tracepoint", "fexit", "kprobe", "none", "syscalls fexit", "syscalls tracepoint"] {
            match exercised.get(hook) {
                Some(kernel) => println!("hook {hook}: exercised on {kernel}"),
                None => {
                    println!("hook {hook}: exercised on no kernel of the matrix");
                    failed += 1;
                    success = false;
                }
            }
        }
    }
    for skip in &skipped {
        println!("SKIPPED: {skip}");
    }
    // A skipped test returned early, so libtest counted it as passed: it is not.
    let skipped_count = skipped.len() as u64;
    println!("{} passed, {failed} failed, {skipped_count} skipped", passed.saturating_sub(skipped_count));
    if !success {
        bail!("cargo test failed");
    }
    Ok(())
}

/// `cargo xtask vm-test`: the kernel tests in the VMs only.
fn vm_test(kernel: &str) -> anyhow::Result<()> {
    build()?;
    let kernels: Vec<String> = match kernel {
        "all" => vm::KERNELS.iter().map(|k| k.to_string()).collect(),
        one => vec![one.to_string()],
    };
    let mut failed = 0;
    for (kernel, outcome) in vm::test(&kernels)? {
        println!(
            "[{kernel}] {} passed, {} failed, {} skipped in {:.0} s; capability hooks: {:?}",
            outcome.passed.saturating_sub(outcome.skipped.len() as u64),
            outcome.failed,
            outcome.skipped.len(),
            outcome.seconds,
            outcome.hooks
        );
        failed += outcome.failed;
    }
    if failed > 0 {
        bail!("{failed} test(s) failed in the VMs");
    }
    Ok(())
}

/// One `cargo test --release ARGS` with `envs` and the logs the tests write (`logs`: variable,
/// file): (passed, failed, whether it succeeded).
fn cargo_test(args: &[String], envs: &[(&str, &str)], logs: &[(&str, &Path)]) -> anyhow::Result<(u64, u64, bool)> {
    let mut cmd = cargo();
    cmd.args(["test", "--release"])
        .args(args)
        .envs(envs.iter().copied())
        .envs(logs.iter().copied())
        .env("PROFILER_BIN", target_dir().join("release/profiler"))
        .stdout(Stdio::piped());
    eprintln!("+ {cmd:?}");
    let mut child = cmd.spawn().context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test's stdout")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        if let Some((p, f)) = test_result(&line) {
            passed += p;
            failed += f;
        }
    }
    Ok((passed, failed, child.wait().context("waiting for cargo test")?.success()))
}

/// Passed and failed from libtest's `test result: ok. 7 passed; 0 failed; ...` line.
fn test_result(line: &str) -> Option<(u64, u64)> {
    let words: Vec<&str> = line.strip_prefix("test result: ")?.split_whitespace().collect();
    let count = |word: &str| -> Option<u64> {
        let at = words.iter().position(|w| w.trim_end_matches([';', ',']) == word)?;
        words.get(at.checked_sub(1)?)?.parse().ok()
    };
    Some((count("passed")?, count("failed")?))
}
