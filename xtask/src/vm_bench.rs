//! `cargo xtask vm-bench`: the getppid microbenchmark inside Debian's own kernels in qemu,
//! where the recorder can take fexit on the syscall tables (this host refuses fentry/fexit):
//! each syscall hook's empty-program floor, and the recorder on each hook watching another
//! cgroup and the caller's, interleaved in one run. Emulated (TCG): absolute times are the
//! emulator's; only ratios within one run say anything.

use anyhow::{Context as _, bail};

use crate::{bench::median, target_dir, vm, workspace};

/// The modes, in the guest script's terms: what watches while the loop runs.
const MODES: &[&str] =
    &["baseline", "floor-tracepoint", "floor-fexit", "unwatched-tracepoint", "unwatched-fexit", "recorded-tracepoint", "recorded-fexit"];

/// getppid calls per run: about 5 s per run under TCG.
const CALLS: u64 = 1_000_000;

/// The guest's side: shell functions that start and stop each mode's observer and time the
/// loop pinned to CPU 1 in the bench cgroup; a `BENCH mode ns` line per run.
const GUEST: &str = r#"set -eu
W=/mnt/xfer/workload P=/mnt/xfer/profiler
cg=/sys/fs/cgroup/bench other=/sys/fs/cgroup/bench-elsewhere
mkdir -p $cg $other
start() {
  OBS= marker=
  case "$1" in
    baseline) return ;;
    floor-*) $P floor --hook "${1#floor-}" 2>/tmp/obs.log & OBS=$! marker="floor attached" ;;
    unwatched-*) rm -f /tmp/obs.json; PROFILER_SYSCALL_HOOK="${1#unwatched-}" $P record --cgroup $other -o /tmp/obs.json 2>/tmp/obs.log & OBS=$! marker="recording " ;;
    recorded-*) rm -f /tmp/obs.json; PROFILER_SYSCALL_HOOK="${1#recorded-}" $P record --cgroup $cg -o /tmp/obs.json 2>/tmp/obs.log & OBS=$! marker="recording " ;;
  esac
  for i in $(seq 600); do grep -q "$marker" /tmp/obs.log && return; sleep 0.1; done
  echo "the observer of $1 did not start:"; cat /tmp/obs.log; exit 1
}
stop() {
  [ -z "$OBS" ] && return
  kill -INT $OBS; wait $OBS || { echo "the observer exited with $?:"; cat /tmp/obs.log; exit 1; }
}
run() {
  start "$1"
  ns=$(sh -c "echo \$\$ > $cg/cgroup.procs && exec taskset -c 1 $W getppid CALLS" | awk '{print $2}')
  stop
  echo "BENCH $1 $ns"
}
"#;

/// Runs `rounds` interleaved rounds in `kernel`'s guest and prints the table.
pub fn bench(kernel: &str, rounds: u64) -> anyhow::Result<()> {
    if !vm::KERNELS.contains(&kernel) {
        bail!("unknown kernel {kernel} (the matrix has {})", vm::KERNELS.join(", "));
    }
    let dir = tempfile::tempdir().context("a directory for the guest's files")?;
    let release = target_dir().join("release");
    for binary in ["profiler", "workload"] {
        std::fs::copy(release.join(binary), dir.path().join(binary)).with_context(|| format!("copying {binary}"))?;
    }
    let mut script = GUEST.replace("CALLS", &CALLS.to_string());
    script.push_str("echo \"kernel $(uname -r)\"\n");
    for round in 0..rounds as usize {
        for i in 0..MODES.len() {
            script.push_str(&format!("run {}\n", MODES[(round + i) % MODES.len()]));
        }
    }
    std::fs::write(dir.path().join("cmd.sh"), script).context("writing the guest's script")?;
    println!("== getppid under Debian's {kernel} kernel (qemu, TCG: emulated) ==");
    let mut runs: Vec<(String, f64)> = Vec::new();
    let status = vm::guest(&workspace().join("tests/vm/vm.sh"), kernel, dir.path(), "tests", |line| {
        let mut words = line.split_whitespace();
        if let (Some("BENCH"), Some(mode), Some(ns)) = (words.next(), words.next(), words.next().and_then(|n| n.parse().ok())) {
            runs.push((mode.to_string(), ns));
        }
    })?;
    if !status.success() || runs.len() != MODES.len() * rounds as usize {
        bail!("the guest's run failed ({status}, {} of {} runs)", runs.len(), MODES.len() * rounds as usize);
    }
    let of = |mode: &str| median(runs.iter().filter(|(m, _)| m == mode).map(|(_, ns)| *ns).collect());
    let baseline = of("baseline");
    println!(
        "\n## getppid on Debian's {kernel} kernel under qemu TCG (emulated; {CALLS} calls per run, {rounds} rounds interleaved): median ns per call"
    );
    println!("{:<22} {:>9} {:>10} {:>22}", "mode", "ns", "/ baseline", "over its hook's floor");
    for mode in MODES {
        let ns = of(mode);
        let hook = mode.rsplit('-').next().unwrap_or_default();
        let over = if mode.starts_with("unwatched") || mode.starts_with("recorded") {
            format!("{:+.1} ns ({:.3}x)", ns - of(&format!("floor-{hook}")), ns / of(&format!("floor-{hook}")))
        } else {
            String::new()
        };
        println!("{mode:<22} {ns:>9.1} {:>10.3} {over:>22}", ns / baseline);
    }
    println!("(recorded: the caller is in the watched cgroup; unwatched: the recorder watches an empty cgroup)");
    Ok(())
}
