//! `cargo xtask bench`: what recording costs a served workload, and what the recorder holds
//! on to under churn. Figures are ratios against a baseline measured in the same run, with
//! the modes interleaved round by round so drift in the machine hits them all alike.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{ensure_packages, run};

/// What the benchmark needs beyond the build: the served workload, its load generator and
/// the reference tracer.
const PACKAGES: &[&str] = &["redis-server", "redis-tools", "nginx", "wrk", "strace", "util-linux"];
/// Ports unlikely to be in use; the servers bind loopback only.
const REDIS_PORT: &str = "6391";
const NGINX_PORT: &str = "8391";
const CGROUP_NAME: &str = "profiler-bench";

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Interleaved rounds of baseline, recorded and strace.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Requests per redis-benchmark run (SET then GET, 50 clients).
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// Seconds the recorder watches an idle server to measure its own idle CPU.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// Seconds of the churn workload.
    #[arg(long, default_value_t = 60)]
    churn_seconds: u64,
    /// Leave strace out (it takes a minute per round at 5% of the throughput).
    #[arg(long)]
    no_strace: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Baseline,
    /// An empty program on the recorder's syscall hook (`profiler floor`): what any syscall
    /// recorder pays on this kernel.
    Floor,
    /// The recorder watching another (empty) cgroup: what every other process on the host pays.
    Unwatched,
    Recorded,
    Strace,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Baseline => "baseline",
            Mode::Floor => "floor",
            Mode::Unwatched => "unwatched",
            Mode::Recorded => "recorded",
            Mode::Strace => "strace -f",
        }
    }

    /// Starts what watches in this mode: `watched` is the cgroup the measured process runs in,
    /// `elsewhere` an empty one.
    fn observer(self, profiler: &Path, watched: &Path, elsewhere: &Path, output: &Path, traced: u32) -> anyhow::Result<Option<Recorder>> {
        Ok(match self {
            Mode::Baseline => None,
            Mode::Floor => Some(Recorder::floor(profiler)?),
            Mode::Unwatched => Some(Recorder::start(profiler, elsewhere, output)?),
            Mode::Recorded => Some(Recorder::start(profiler, watched, output)?),
            Mode::Strace => Some(Recorder::strace(traced)?),
        })
    }
}

/// One run of a served load.
#[derive(Clone)]
struct Sample {
    mode: Mode,
    /// The round it was measured in: each round measures every mode once, close in time.
    round: usize,
    rps: f64,
    /// The server's CPU time per request, in microseconds.
    server_us_per_request: f64,
    /// The recorder's CPU time over the run, in clock ticks (recorded mode only).
    recorder_ticks: u64,
    seconds: f64,
}

pub fn bench(release: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    ensure_packages(PACKAGES)?;
    let profiler = release.join("profiler");
    let scratch = tempfile_dir()?;
    let cgroup = cgroup2_root()?.join(CGROUP_NAME);
    let _ = fs::create_dir(&cgroup);
    // Watched in the unwatched mode, with nothing in it.
    let elsewhere = cgroup2_root()?.join(format!("{CGROUP_NAME}-elsewhere"));
    let _ = fs::create_dir(&elsewhere);

    let workload = release.join("workload");
    fs::write(scratch.join(PAGE), "x".repeat(1024)).context("writing the served file's page")?;
    let loops = Loops { profiler: &profiler, workload: &workload, cgroup: &cgroup, elsewhere: &elsewhere, scratch: &scratch };
    let mut micro = Vec::new();
    for kind in [GETPPID, SERVE_FILE, SIGNALS, MMAP] {
        micro.push((kind, micro_rounds(kind, &loops, args.rounds)?));
    }
    let mut program_times = Vec::new();
    for kind in [GETPPID, SERVE_FILE, MMAP] {
        let times = program_time(&loops, args.rounds, || {
            micro_ns(kind, &workload, &cgroup, &scratch)?;
            Ok(Work { units: kind.calls, server_us_per_unit: None })
        })?;
        program_times.push((kind, times));
    }

    let mut modes = vec![Mode::Baseline, Mode::Floor, Mode::Unwatched, Mode::Recorded];
    if !args.no_strace {
        modes.push(Mode::Strace);
    }
    let redis = Redis::start(&cgroup)?;
    let redis_samples = served_rounds(&redis, &modes, &profiler, &cgroup, &elsewhere, &scratch, args)?;
    let redis_times = program_time(&loops, args.rounds, || Ok(served_load(&redis, args.requests)?.1))?;
    drop(redis);
    let nginx = Nginx::start(&cgroup, &scratch)?;
    let nginx_samples = served_rounds(&nginx, &modes, &profiler, &cgroup, &elsewhere, &scratch, args)?;
    let nginx_times = program_time(&loops, args.rounds, || Ok(served_load(&nginx, args.requests)?.1))?;
    drop(nginx);
    let idle_ticks = recorder_idle(&profiler, &cgroup, &scratch, args.idle_seconds)?;
    let _ = fs::remove_dir(&cgroup);

    let churn = churn(&profiler, release, &scratch, args.churn_seconds)?;
    let _ = fs::remove_dir_all(&scratch);
    let _ = fs::remove_dir(&elsewhere);

    for (kind, runs) in &micro {
        print_micro(*kind, runs, args.rounds);
    }
    for (kind, times) in &program_times {
        print_program_time(&format!("{} x {}", kind.calls, kind.what), "call", args.rounds, times);
    }
    let redis_title = format!("redis-server (CPU 0) under redis-benchmark -c 50 -t set,get -n {} (CPU 1)", args.requests);
    print_served(&redis_title, &redis_samples, &modes, args);
    print_program_time(&redis_title, "request", args.rounds, &redis_times);
    let nginx_title = format!("nginx serving a 1 KiB file (CPU 0) under wrk -t1 -c50 -d{}s (CPU 1)", NGINX_SECONDS);
    print_served(&nginx_title, &nginx_samples, &modes, args);
    print_program_time(&nginx_title, "request", args.rounds, &nginx_times);
    print_recorder_cpu(&[&redis_samples[..], &nginx_samples[..]].concat(), args, idle_ticks);
    churn.print();
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("profiler-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Where cgroup2 is mounted: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid.
fn cgroup2_root() -> anyhow::Result<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    mounts
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&"cgroup2"))
        .map(|f| PathBuf::from(f[1]))
        .context("no cgroup2 file system is mounted")
}

/// A redis-server on loopback, pinned to CPU 0, in its own cgroup; the load runs on CPU 1.
struct Redis {
    server: Child,
}

impl Redis {
    fn start(cgroup: &Path) -> anyhow::Result<Redis> {
        let mut server = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec taskset -c 0 redis-server --port {REDIS_PORT} --bind 127.0.0.1 \
                 --save '' --appendonly no --loglevel warning",
                cgroup.display()
            ))
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cli_ok(&["ping"]) {
            if Instant::now() > deadline || server.try_wait()?.is_some() {
                let _ = server.kill();
                bail!("redis-server did not answer on 127.0.0.1:{REDIS_PORT} within 10 s");
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(Redis { server })
    }
}

impl Served for Redis {
    fn pid(&self) -> u32 {
        self.server.id()
    }

    fn load(&self, requests: u64) -> anyhow::Result<(f64, u64)> {
        // Two tests (SET, GET) of `requests` each.
        Ok((redis_benchmark(requests)?, 2 * requests))
    }
}

/// A server under load: its process, and one run of its load generator.
trait Served {
    fn pid(&self) -> u32;
    /// Requests per second, and requests made.
    fn load(&self, requests: u64) -> anyhow::Result<(f64, u64)>;
}

/// Every mode, `args.rounds` rounds, the order rotated each round so that no mode always runs
/// first (warm caches) or last.
fn served_rounds(
    server: &dyn Served,
    modes: &[Mode],
    profiler: &Path,
    cgroup: &Path,
    elsewhere: &Path,
    scratch: &Path,
    args: &BenchArgs,
) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for round in 0..args.rounds as usize {
        for i in 0..modes.len() {
            let mode = modes[(round + i) % modes.len()];
            let sample = Sample { round, ..measure(server, mode, profiler, cgroup, elsewhere, scratch, args.requests)? };
            eprintln!("round {} {:>9}: {:>9.0} rps", round + 1, mode.name(), sample.rps);
            samples.push(sample);
        }
    }
    Ok(samples)
}

fn measure(
    server: &dyn Served,
    mode: Mode,
    profiler: &Path,
    cgroup: &Path,
    elsewhere: &Path,
    scratch: &Path,
    requests: u64,
) -> anyhow::Result<Sample> {
    let observer = mode.observer(profiler, cgroup, elsewhere, &scratch.join("served.json"), server.pid())?;
    let recorder_before = observer.as_ref().map_or(Ok(0), |o| cpu_ticks(o.pid()))?;
    let started = Instant::now();
    let (rps, work) = served_load(server, requests)?;
    let seconds = started.elapsed().as_secs_f64();
    let recorder_ticks = observer.as_ref().map_or(Ok(0), |o| cpu_ticks(o.pid()))? - recorder_before;
    if let Some(observer) = observer {
        observer.stop()?;
    }
    let server_us_per_request = work.server_us_per_unit.unwrap_or(f64::NAN);
    // The caller knows the round.
    Ok(Sample { mode, round: 0, rps, server_us_per_request, recorder_ticks, seconds })
}

/// One run of the server's load: its requests per second, the requests made and the server's
/// CPU time per request.
fn served_load(server: &dyn Served, requests: u64) -> anyhow::Result<(f64, Work)> {
    let server_before = cpu_ticks(server.pid())?;
    let (rps, made) = server.load(requests)?;
    let server_ticks = cpu_ticks(server.pid())? - server_before;
    let server_us_per_request = server_ticks as f64 * 1e6 / clock_ticks_per_second() / made.max(1) as f64;
    Ok((rps, Work { units: made, server_us_per_unit: Some(server_us_per_request) }))
}

/// Seconds of each wrk run.
const NGINX_SECONDS: u64 = 5;

/// nginx on loopback as one process (no master), pinned to CPU 0, in the measured cgroup,
/// serving a 1 KiB file and logging each request.
struct Nginx {
    server: Child,
}

impl Nginx {
    fn start(cgroup: &Path, scratch: &Path) -> anyhow::Result<Nginx> {
        let dir = scratch.join("nginx");
        fs::create_dir_all(dir.join("www")).context("creating nginx's directory")?;
        fs::write(dir.join("www/index.html"), "x".repeat(1024)).context("writing nginx's page")?;
        let d = dir.display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log {d}/access.log; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};\n\
             uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             server {{ listen 127.0.0.1:{NGINX_PORT}; root {d}/www; }} }}\n"
        );
        fs::write(dir.join("nginx.conf"), conf).context("writing nginx.conf")?;
        let mut server = Command::new("sh")
            .arg("-c")
            .arg(format!("echo $$ > {}/cgroup.procs && exec taskset -c 0 nginx -p {d} -c {d}/nginx.conf", cgroup.display()))
            .stdout(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", NGINX_PORT.parse::<u16>()?)).is_err() {
            if Instant::now() > deadline || server.try_wait()?.is_some() {
                let _ = server.kill();
                bail!("nginx did not listen on 127.0.0.1:{NGINX_PORT} within 10 s (see {d}/error.log)");
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(Nginx { server })
    }
}

impl Served for Nginx {
    fn pid(&self) -> u32 {
        self.server.id()
    }

    /// One wrk run: its requests per second and request count.
    fn load(&self, _requests: u64) -> anyhow::Result<(f64, u64)> {
        let out = Command::new("taskset")
            .args(["-c", "1", "wrk", "-t1", "-c50"])
            .arg(format!("-d{NGINX_SECONDS}s"))
            .arg(format!("http://127.0.0.1:{NGINX_PORT}/index.html"))
            .output()
            .context("running wrk")?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "  123456 requests in 5.00s, ..." and "Requests/sec:  24691.20".
        let made: u64 = text.lines().find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok()).unwrap_or(0);
        let rps = text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok());
        match rps {
            Some(rps) if out.status.success() && made > 0 => Ok((rps, made)),
            _ => bail!("wrk gave no rate ({}): {text}", out.status),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        cli_ok(&["shutdown", "nosave"]);
        let _ = self.server.wait();
    }
}

fn cli_ok(args: &[&str]) -> bool {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", REDIS_PORT])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs redis-benchmark on CPU 1 and returns the mean requests per second of SET and GET.
fn redis_benchmark(requests: u64) -> anyhow::Result<f64> {
    let out = Command::new("taskset")
        .args(["-c", "1", "redis-benchmark", "-h", "127.0.0.1", "-p", REDIS_PORT, "-c", "50", "-t", "set,get", "--csv", "-n"])
        .arg(requests.to_string())
        .stderr(Stdio::null())
        .output()
        .context("running redis-benchmark")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // --csv: a header, then "SET","85034.01",... and "GET",...
    let rates: Vec<f64> = text.lines().skip(1).filter_map(|l| l.split(',').nth(1)?.trim_matches('"').parse().ok()).collect();
    if !out.status.success() || rates.len() != 2 {
        bail!("redis-benchmark gave no SET and GET rates ({}): {text}", out.status);
    }
    Ok(rates.iter().sum::<f64>() / 2.0)
}

/// A process watching the server: the profiler's recorder, or strace as the reference.
struct Recorder {
    child: Child,
    /// Whether its exit status tells success (the profiler's does, strace's does not).
    checked: bool,
}

impl Recorder {
    /// Starts `profiler record --cgroup` and waits until its probes are attached.
    fn start(profiler: &Path, cgroup: &Path, output: &Path) -> anyhow::Result<Recorder> {
        let _ = fs::remove_file(output);
        let mut child = Command::new(profiler)
            .args(["record", "--cgroup"])
            .arg(cgroup)
            .arg("-o")
            .arg(output)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("starting the recorder")?;
        wait_for_line(&mut child, "recording ")?;
        Ok(Recorder { child, checked: true })
    }

    /// Starts `profiler floor` and waits until its empty program is attached.
    fn floor(profiler: &Path) -> anyhow::Result<Recorder> {
        let mut child =
            Command::new(profiler).arg("floor").stderr(Stdio::piped()).stdout(Stdio::null()).spawn().context("starting profiler floor")?;
        wait_for_line(&mut child, "floor attached")?;
        Ok(Recorder { child, checked: true })
    }

    /// Attaches `strace -f` to every thread of the server, writing to /dev/null.
    fn strace(pid: u32) -> anyhow::Result<Recorder> {
        let child =
            Command::new("strace").args(["-f", "-qq", "-o", "/dev/null", "-p"]).arg(pid.to_string()).spawn().context("starting strace")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tracer_of(pid)? == 0 {
            if Instant::now() > deadline {
                bail!("strace did not attach to {pid} within 10 s");
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(Recorder { child, checked: false })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT, as an administrator's Ctrl-C, then wait for the exit.
    fn stop(mut self) -> anyhow::Result<()> {
        run(Command::new("kill").args(["-INT", &self.pid().to_string()]))?;
        let status = self.child.wait()?;
        // strace dies of the SIGINT; the recorder must write its profile and exit 0.
        if self.checked && !status.success() {
            bail!("the recorder exited with {status}");
        }
        Ok(())
    }
}

/// Reads the child's stderr until a line containing `marker`, then keeps draining it.
fn wait_for_line(child: &mut Child, marker: &str) -> anyhow::Result<()> {
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let (tx, rx) = mpsc::channel();
    let marker = marker.to_string();
    thread::spawn(move || {
        let mut told = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !told && line.contains(&marker) {
                told = true;
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).context("the recorder did not start recording within 60 s")
}

fn tracer_of(pid: u32) -> anyhow::Result<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status_field(&status, "TracerPid:").unwrap_or(0))
}

fn status_field(status: &str, name: &str) -> Option<u32> {
    status.lines().find_map(|l| l.strip_prefix(name)?.split_whitespace().next()?.parse().ok())
}

/// User plus system CPU time of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name, which may itself hold spaces.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// The recorder's CPU over `seconds` of watching the server with no load.
fn recorder_idle(profiler: &Path, cgroup: &Path, scratch: &Path, seconds: u64) -> anyhow::Result<u64> {
    let recorder = Recorder::start(profiler, cgroup, &scratch.join("idle.json"))?;
    let before = cpu_ticks(recorder.pid())?;
    thread::sleep(Duration::from_secs(seconds));
    let ticks = cpu_ticks(recorder.pid())? - before;
    recorder.stop()?;
    Ok(ticks)
}

/// What the recorder held while the churn workload ran past every table's capacity.
struct Churn {
    seconds: u64,
    rss_kib: Vec<u64>,
    profile: serde_json::Value,
    workload_said: String,
}

fn churn(profiler: &Path, release: &Path, scratch: &Path, seconds: u64) -> anyhow::Result<Churn> {
    let dir = scratch.join("churn");
    fs::create_dir_all(&dir)?;
    let output = scratch.join("churn.json");
    let mut child = Command::new(profiler)
        .arg("record")
        .arg("-o")
        .arg(&output)
        .arg("--")
        .arg(release.join("workload"))
        .arg("churn")
        .arg(&dir)
        .arg(seconds.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the recorder on the churn workload")?;
    let pid = child.id();
    // The recorder starts the command once its probes are attached.
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default().trim().is_empty() {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            bail!("the recorder did not start the churn workload within 60 s");
        }
        thread::sleep(Duration::from_millis(50));
    }
    // One RSS reading a second; the last one is taken just before the recorder writes out.
    let mut rss_kib = Vec::new();
    while child.try_wait()?.is_none() {
        if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
            rss_kib.extend(status_field(&status, "VmRSS:").map(u64::from));
        }
        thread::sleep(Duration::from_secs(1));
    }
    let mut workload_said = String::new();
    if let Some(mut out) = child.stdout.take() {
        use std::io::Read as _;
        out.read_to_string(&mut workload_said)?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("the churn recording failed: {status}");
    }
    let text = fs::read_to_string(&output).with_context(|| format!("reading {}", output.display()))?;
    let profile = serde_json::from_str(&text).with_context(|| format!("parsing {}", output.display()))?;
    Ok(Churn { seconds, rss_kib, profile, workload_said: workload_said.trim().to_string() })
}

impl Churn {
    fn print(&self) {
        let count = |kind: &str| self.profile[kind].as_object().map_or(0, |o| o.len());
        let first = self.rss_kib.first().copied().unwrap_or(0);
        let last = self.rss_kib.last().copied().unwrap_or(0);
        let max = self.rss_kib.iter().copied().max().unwrap_or(0);
        println!("\n## Churn: {} s, {}", self.seconds, self.workload_said);
        // Quartiles of the run show whether the memory levels off once the tables are full.
        let at = |q: usize| mib(self.rss_kib.get((self.rss_kib.len().saturating_sub(1)) * q / 4).copied().unwrap_or(0));
        println!(
            "recorder RSS: {:.1} MiB after start, {:.1} / {:.1} / {:.1} MiB at 1/4, 1/2, 3/4, {:.1} MiB at the end, {:.1} MiB at most ({} readings)",
            mib(first),
            at(1),
            at(2),
            at(3),
            mib(last),
            mib(max),
            self.rss_kib.len()
        );
        println!(
            "profile: {} paths, {} executables, {} peers, {} sockets",
            count("paths"),
            count("executables"),
            count("peers"),
            count("sockets"),
        );
        println!("losses (dropped events per table):");
        match self.profile["losses"].as_object() {
            Some(losses) if !losses.is_empty() => {
                for (name, n) in losses {
                    println!("  {name:<24} {n}");
                }
            }
            _ => println!("  none"),
        }
    }
}

/// A microbenchmark: a `workload` mode that does `calls` of one operation in a loop and
/// prints `ns_per_call N`.
#[derive(Clone, Copy)]
struct Micro {
    mode: &'static str,
    /// Whether the loop takes the 1 KiB file `PAGE` of the scratch directory before its count.
    page: bool,
    calls: u64,
    /// What one call is, for the table's title.
    what: &'static str,
}

/// One syscall the recorder does not decode: what every syscall on the host pays.
const GETPPID: Micro = Micro { mode: "getppid", page: false, calls: GETPPID_CALLS, what: "getppid in a loop" };
/// What a web server does per request with the file it serves: four syscalls, of which the
/// recorder decodes the open (its path, read from the caller's memory) and looks at fstat's
/// name (empty: a look at the open descriptor).
const SERVE_FILE: Micro = Micro { mode: "serve-file", page: true, calls: 200_000, what: "open, fstat, read and close of a 1 KiB file" };
/// The file `SERVE_FILE` opens, in the scratch directory.
const PAGE: &str = "page.html";
/// One signal: two syscalls and the `signal_generate` tracepoint, which the recorder also
/// hooks for every signal on the host (for seccomp's SIGSYS).
const SIGNALS: Micro = Micro { mode: "signals", page: false, calls: 500_000, what: "a signal to itself (tgkill, then sigwaitinfo)" };
/// What an allocator does per large block (mmap and munmap of 256 KiB): the kernel checks
/// CAP_SYS_ADMIN for the overcommit reserve, which the recorder's capability hook sees and
/// must tell from a need.
const MMAP: Micro = Micro { mode: "mmap", page: false, calls: 100_000, what: "mmap and munmap of 256 KiB, private and writable" };
/// getppid calls per microbenchmark run.
const GETPPID_CALLS: u64 = 3_000_000;

/// What the microbenchmarks run with: the binaries, the measured cgroup, the empty one the
/// unwatched mode records, and the scratch directory.
struct Loops<'a> {
    profiler: &'a Path,
    workload: &'a Path,
    cgroup: &'a Path,
    elsewhere: &'a Path,
    scratch: &'a Path,
}

/// A microbenchmark's nanoseconds per call, on CPU 1, in each mode but strace, `rounds`
/// rounds interleaved; (mode, ns) per run.
fn micro_rounds(micro: Micro, loops: &Loops, rounds: u64) -> anyhow::Result<Vec<(Mode, f64)>> {
    let Loops { profiler, workload, cgroup, elsewhere, scratch } = *loops;
    let modes = [Mode::Baseline, Mode::Floor, Mode::Unwatched, Mode::Recorded];
    let mut runs = Vec::new();
    for round in 0..rounds as usize {
        for i in 0..modes.len() {
            let mode = modes[(round + i) % modes.len()];
            let observer = mode.observer(profiler, cgroup, elsewhere, &scratch.join("micro.json"), 0)?;
            let ns = micro_ns(micro, workload, cgroup, scratch)?;
            if let Some(observer) = observer {
                observer.stop()?;
            }
            eprintln!("round {} {:>9}: {ns:.1} ns per {}", round + 1, mode.name(), micro.mode);
            runs.push((mode, ns));
        }
    }
    Ok(runs)
}

/// One run of a microbenchmark in `cgroup`, pinned to CPU 1: nanoseconds per call.
fn micro_ns(micro: Micro, workload: &Path, cgroup: &Path, scratch: &Path) -> anyhow::Result<f64> {
    let page = if micro.page { scratch.join(PAGE).display().to_string() } else { String::new() };
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec taskset -c 1 {} {} {page} {}",
            cgroup.display(),
            workload.display(),
            micro.mode,
            micro.calls
        ))
        .output()
        .with_context(|| format!("running the {} loop", micro.mode))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1).and_then(|n| n.parse().ok()).with_context(|| format!("no ns_per_call in {text:?} ({})", out.status))
}

fn print_micro(micro: Micro, runs: &[(Mode, f64)], rounds: u64) {
    println!("\n## {} on CPU 1 ({} calls per run, {rounds} rounds interleaved): median ns per call", micro.what, micro.calls);
    let of = |mode: Mode| median(runs.iter().filter(|(m, _)| *m == mode).map(|(_, ns)| *ns).collect());
    let (baseline, floor) = (of(Mode::Baseline), of(Mode::Floor));
    println!("{:<10} {:>8} {:>14} {:>12}", "mode", "ns", "over baseline", "over floor");
    for mode in [Mode::Baseline, Mode::Floor, Mode::Unwatched, Mode::Recorded] {
        let ns = of(mode);
        println!("{:<10} {:>8.1} {:>+14.1} {:>+12.1}", mode.name(), ns, ns - baseline, ns - floor);
    }
    println!("(recorded: the caller is in the watched cgroup; unwatched: the recorder watches an empty cgroup)");
}

/// The kernel's own accounting of our programs (`kernel.bpf_stats_enabled`): nanoseconds
/// spent in the observer's eBPF programs per run of its syscall hook and per unit of `run`'s
/// work (a call of a loop, a request served), the median of `rounds` runs per mode, modes
/// interleaved. Unlike the wall clock this is not blurred by the other tasks' noise, but it
/// is measured in time, so it follows the host's speed from run to run (hence the rounds);
/// it adds two clock reads to every program run, in every mode alike, so only the
/// differences between modes are the programs' own. The hook is the
/// program that ran most often; the other programs' time (rare during the loop) is counted
/// with it, and so are the calls of every other task on the host while the work ran (a load
/// generator's among them). The recorded run's profile tells how many of those runs were the
/// watched calls, so the others can be taken out (`ServerShare`).
fn program_time(loops: &Loops, rounds: u64, mut run: impl FnMut() -> anyhow::Result<Work>) -> anyhow::Result<Vec<(Mode, ProgramTime)>> {
    let Loops { profiler, cgroup, elsewhere, scratch, .. } = *loops;
    const STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";
    let before = fs::read_to_string(STATS).with_context(|| format!("reading {STATS}"))?;
    fs::write(STATS, "1").with_context(|| format!("enabling {STATS}"))?;
    let mut times = Vec::new();
    let result = (|| {
        for mode in (0..rounds.max(1)).flat_map(|_| ACCOUNTED) {
            let observer = mode.observer(profiler, cgroup, elsewhere, &scratch.join("stats.json"), 0)?.context("an observer")?;
            let (time_before, runs_before) = program_stats(observer.pid())?;
            let work = run()?;
            let (time_after, runs_after) = program_stats(observer.pid())?;
            observer.stop()?;
            let runs = runs_after.saturating_sub(runs_before).max(1);
            let time = time_after.saturating_sub(time_before) as f64;
            let units = work.units.max(1) as f64;
            // Only a served load's table takes the other tasks' calls apart (`ServerShare`).
            let watched_runs_per_unit = match mode {
                Mode::Recorded if work.server_us_per_unit.is_some() => Some(profiled_calls(&scratch.join("stats.json"))? as f64 / units),
                _ => None,
            };
            times.push((
                mode,
                ProgramTime {
                    per_run: time / runs as f64,
                    per_unit: time / units,
                    runs_per_unit: runs as f64 / units,
                    watched_runs_per_unit,
                    server_us_per_unit: work.server_us_per_unit,
                },
            ));
        }
        Ok(ACCOUNTED.iter().map(|&mode| (mode, ProgramTime::median(times.iter().filter(|(m, _)| *m == mode).map(|(_, t)| t)))).collect())
    })();
    fs::write(STATS, before.trim()).with_context(|| format!("restoring {STATS}"))?;
    result
}

/// The modes `program_time` measures, in each round's order.
const ACCOUNTED: [Mode; 3] = [Mode::Floor, Mode::Unwatched, Mode::Recorded];

/// The syscalls a profile counted, over every ABI.
fn profiled_calls(profile: &Path) -> anyhow::Result<u64> {
    let text = fs::read_to_string(profile).with_context(|| format!("reading {}", profile.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", profile.display()))?;
    let abis = json["syscalls"].as_object().with_context(|| format!("{}: no syscalls section", profile.display()))?;
    Ok(abis.values().filter_map(|calls| calls.as_object()).flat_map(|calls| calls.values()).filter_map(|call| call["count"].as_u64()).sum())
}

/// What one run of a measured load did: its units of work, and the server's CPU time per
/// unit where a server did them.
struct Work {
    units: u64,
    server_us_per_unit: Option<f64>,
}

/// The total `run_time_ns` of the eBPF programs `pid` holds, and the largest `run_cnt` among
/// them (its syscall hook's), from its descriptors' fdinfo.
fn program_stats(pid: u32) -> anyhow::Result<(u64, u64)> {
    let (mut time, mut runs) = (0, 0);
    for entry in fs::read_dir(format!("/proc/{pid}/fdinfo"))? {
        let Ok(info) = fs::read_to_string(entry?.path()) else { continue };
        if !info.contains("prog_type:") {
            continue;
        }
        let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        time += field("run_time_ns:");
        runs = runs.max(field("run_cnt:"));
    }
    Ok((time, runs))
}

/// The table of `program_time` over `what`, per `unit`; for a served load, also what the
/// time over the floor's is as a share of the floor run's server CPU per request.
fn print_program_time(what: &str, unit: &str, rounds: u64, times: &[(Mode, ProgramTime)]) {
    println!(
        "\n## Time in eBPF programs (kernel.bpf_stats_enabled) over {what}, median of {rounds} interleaved runs per mode: per run of the syscall hook, per {unit}"
    );
    let floor = time_of(times, Mode::Floor).unwrap_or(ProgramTime::UNKNOWN);
    let served = floor.server_us_per_unit;
    let per = if unit == "request" { "ns/req" } else { "ns/call" };
    print!("{:<10} {:>8} {:>12} {:>10} {:>12}", "mode", "ns/run", "over floor", per, "over floor");
    println!("{}", if served.is_some() { format!(" {:>14}", "of server CPU") } else { String::new() });
    for (mode, t) in times {
        let over = t.per_unit - floor.per_unit;
        print!("{:<10} {:>8.1} {:>+12.1} {:>10.1} {:>+12.1}", mode.name(), t.per_run, t.per_run - floor.per_run, t.per_unit, over);
        match served {
            Some(us) => println!(" {:>+13.2}%", cpu_share(over, us) * 100.0),
            None => println!(),
        }
    }
    println!("(each program run also pays the statistics' two clock reads, in every mode alike)");
    if let Some(us) = served {
        let recorded = time_of(times, Mode::Recorded).map_or(f64::NAN, |t| t.per_unit - floor.per_unit);
        println!(
            "(of server CPU: the time over the floor's per request, against the floor run's {us:.2} µs of server CPU per \
             request. Alone, the recorded time would hold a server bound by its CPU to {:.3} of the floor's rate; it counts \
             the load generator's calls on the other CPU too, and no cache effects)",
            1.0 / (1.0 + cpu_share(recorded, us))
        );
        if let Some(share) = ServerShare::of(times) {
            println!(
                "(the server's own calls: {:.1} of the {:.1} hook runs per request were the watched server's; the other {:.1}, \
                 the load generator's on CPU 1, taken out at the unwatched run's {:.1} ns per run. The server's own calls \
                 took {:+.1} ns per request over the floor's, {:.2}% of its CPU, which alone would hold it to {:.3} of the \
                 floor's rate)",
                share.server_runs,
                share.runs,
                share.runs - share.server_runs,
                share.unwatched_per_run,
                share.over_floor,
                cpu_share(share.over_floor, us) * 100.0,
                1.0 / (1.0 + cpu_share(share.over_floor, us))
            );
        }
    }
}

/// The program time of `mode` among `times`.
fn time_of(times: &[(Mode, ProgramTime)], mode: Mode) -> Option<ProgramTime> {
    times.iter().find(|(m, _)| *m == mode).map(|(_, t)| *t)
}

/// `ns` of program time per request as a fraction of `us` microseconds of server CPU per request.
fn cpu_share(ns: f64, us: f64) -> f64 {
    ns / (us * 1000.0)
}

/// The recorded run's program time on the watched server's own calls, per request: its
/// whole time less the other tasks' calls at the unwatched run's cost per run (their cost
/// when not watched), over what the floor's program costs those same calls.
struct ServerShare {
    runs: f64,
    server_runs: f64,
    unwatched_per_run: f64,
    over_floor: f64,
}

impl ServerShare {
    fn of(times: &[(Mode, ProgramTime)]) -> Option<ServerShare> {
        let of = |mode| time_of(times, mode);
        let (floor, unwatched, recorded) = (of(Mode::Floor)?, of(Mode::Unwatched)?, of(Mode::Recorded)?);
        let server_runs = recorded.watched_runs_per_unit?.min(recorded.runs_per_unit);
        let others = recorded.runs_per_unit - server_runs;
        let own = recorded.per_unit - others * unwatched.per_run;
        Some(ServerShare {
            runs: recorded.runs_per_unit,
            server_runs,
            unwatched_per_run: unwatched.per_run,
            over_floor: own - server_runs * floor.per_run,
        })
    }
}

/// Nanoseconds in the observer's programs per run of its syscall hook and per unit of work,
/// and the server's CPU time per unit in that run where a server did the work.
#[derive(Clone, Copy)]
struct ProgramTime {
    per_run: f64,
    per_unit: f64,
    /// Runs of the syscall hook per unit.
    runs_per_unit: f64,
    /// Of those, the watched tasks' calls (the recorded run's, from its profile).
    watched_runs_per_unit: Option<f64>,
    server_us_per_unit: Option<f64>,
}

impl ProgramTime {
    const UNKNOWN: ProgramTime = ProgramTime {
        per_run: f64::NAN,
        per_unit: f64::NAN,
        runs_per_unit: f64::NAN,
        watched_runs_per_unit: None,
        server_us_per_unit: None,
    };

    /// Each field's median over `runs`.
    fn median<'a>(runs: impl Iterator<Item = &'a ProgramTime> + Clone) -> ProgramTime {
        let of = |field: fn(&ProgramTime) -> f64| median(runs.clone().map(field).collect());
        let of_some = |field: fn(&ProgramTime) -> Option<f64>| {
            let values: Vec<f64> = runs.clone().filter_map(field).collect();
            (!values.is_empty()).then(|| median(values))
        };
        ProgramTime {
            per_run: of(|t| t.per_run),
            per_unit: of(|t| t.per_unit),
            runs_per_unit: of(|t| t.runs_per_unit),
            watched_runs_per_unit: of_some(|t| t.watched_runs_per_unit),
            server_us_per_unit: of_some(|t| t.server_us_per_unit),
        }
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn print_served(title: &str, samples: &[Sample], modes: &[Mode], args: &BenchArgs) {
    println!("\n## Served workload: {title}, {} rounds interleaved", args.rounds);
    let of = |mode: Mode| samples.iter().filter(move |s| s.mode == mode);
    let baseline = median(of(Mode::Baseline).map(|s| s.rps).collect());
    let floor = median(of(Mode::Floor).map(|s| s.rps).collect());
    let base_cpu = median(of(Mode::Baseline).map(|s| s.server_us_per_request).collect());
    println!(
        "{:<10} {:>12} {:>8} {:>9} {:>8} {:>22} {:>20}",
        "mode", "median rps", "ratio", "to floor", "paired", "range (rps)", "server CPU µs/req"
    );
    for &mode in modes {
        let rps: Vec<f64> = of(mode).map(|s| s.rps).collect();
        let lo = rps.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rps.iter().copied().fold(0.0, f64::max);
        let m = median(rps);
        let cpu = median(of(mode).map(|s| s.server_us_per_request).collect());
        println!(
            "{:<10} {:>12.0} {:>8.3} {:>9.3} {:>8.3} {:>22} {:>13.2} ({:.2}x)",
            mode.name(),
            m,
            m / baseline,
            m / floor,
            paired_to_floor(samples, mode),
            format!("{lo:.0}..{hi:.0}"),
            cpu,
            cpu / base_cpu
        );
    }
    println!("(paired: the median over rounds of the mode's rps over the floor's in the same round)");
}

/// The median over rounds of `mode`'s requests per second over the floor's in the same round.
/// A round measures every mode within a minute or two, so a drift of the host over the run
/// (this kind of host moves by a third within an hour) weighs on both sides of each ratio,
/// where it can fall on one side of a ratio of medians taken over the whole run.
fn paired_to_floor(samples: &[Sample], mode: Mode) -> f64 {
    let in_round = |round: usize, mode: Mode| samples.iter().find(|s| s.round == round && s.mode == mode).map(|s| s.rps);
    let ratios = samples.iter().filter(|s| s.mode == mode).filter_map(|s| Some(s.rps / in_round(s.round, Mode::Floor)?)).collect();
    median(ratios)
}

/// The recorder's own CPU under the served loads and while idle.
fn print_recorder_cpu(samples: &[Sample], args: &BenchArgs, idle_ticks: u64) {
    let hz = clock_ticks_per_second();
    let (ticks, seconds) =
        samples.iter().filter(|s| s.mode == Mode::Recorded).fold((0, 0.0), |(t, s), x| (t + x.recorder_ticks, s + x.seconds));
    println!(
        "recorder CPU: {:.2}% of one core under load ({ticks} ticks in {seconds:.0} s), {:.2}% idle ({idle_ticks} ticks in {} s)",
        ticks as f64 / hz / seconds * 100.0,
        idle_ticks as f64 / hz / args.idle_seconds as f64 * 100.0,
        args.idle_seconds
    );
}
