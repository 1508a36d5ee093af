//! One recording: resolve what to watch, load and attach the probes, sample the kernel maps and
//! drain the path ring buffer until the end, checkpointing as it goes; returns the profile
//! as written.

use std::{
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    process::ExitStatus,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, bail};
use aya::maps::{MapData, RingBuf};
use log::{info, warn};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};

use super::{
    cgroup::{self, ScratchCgroup, WatchedCgroup},
    checkpoint::Checkpointer,
    collect::{self, SiteCache},
    path_log::PathLog,
    probes::Probes,
    timeline::{self, Timeline},
};
use crate::{
    profile::{self, Host, Profile, Recording, Target, TargetKind},
    systemd::Systemd,
};

/// What to watch, as the command line named it.
#[derive(Debug, Clone)]
pub enum Subject {
    Command(Vec<String>),
    Unit { name: String, systemd: Systemd },
    Cgroup(PathBuf),
}

#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub subject: Subject,
    pub output: PathBuf,
    pub duration: Option<Duration>,
    /// How often the profile is written while recording.
    pub checkpoint: Duration,
}

/// How often the kernel maps are read to learn what is new. First and last sightings are
/// this precise; a change of the unit's state triggers a read at once.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Reads of the kernel maps that may fail in a row before the recording gives up.
const MAX_READ_FAILURES: u32 = 30;

/// How often the unit's state is asked of systemd (to name phases).
const TICK: Duration = Duration::from_secs(1);

/// Records until the command exits, the duration passes or SIGINT/SIGTERM; the profile as
/// written to `options.output`.
pub fn record(options: &RecordOptions) -> anyhow::Result<Profile> {
    // Root, BTF, readable kernel symbols: checked before anything is created or written.
    Probes::preflight()?;
    if let Subject::Command(argv) = &options.subject {
        resolve_command(&argv[0])?;
    }
    let root = cgroup::cgroup2_root()?;

    // Resolve the target and open the output before anything is created or loaded into the
    // kernel, so a bad unit name or an output that is not ours fails first and changes nothing.
    let (mut target, watched, running_at_start) = match &options.subject {
        Subject::Command(argv) => {
            (Target { kind: TargetKind::Command, command: Some(argv.clone()), unit: None, cgroup: String::new() }, None, true)
        }
        Subject::Unit { name, systemd } => {
            let (relative, running) = systemd.unit_cgroup(name)?;
            let watched = WatchedCgroup::expected(&root, &relative)?;
            let target = Target { kind: TargetKind::Unit, command: None, unit: Some(name.clone()), cgroup: watched.relative.clone() };
            (target, Some(watched), running)
        }
        Subject::Cgroup(path) => {
            let watched = WatchedCgroup::open(&root, path)?;
            let target = Target { kind: TargetKind::Cgroup, command: None, unit: None, cgroup: watched.relative.clone() };
            (target, Some(watched), true)
        }
    };
    let mut checkpointer = Checkpointer::open(&options.output, &Profile { target: target.clone(), ..Default::default() })?;
    let (watched, scratch) = match watched {
        Some(watched) => (watched, None),
        None => {
            let scratch = ScratchCgroup::create(&root, &format!("profiler-record-{}", std::process::id()))?;
            target.cgroup = scratch.watched.relative.clone();
            (scratch.watched.clone(), Some(scratch))
        }
    };

    let mut probes = Probes::load()?;
    let manager = match &options.subject {
        Subject::Unit { systemd, .. } => systemd.container_pid.unwrap_or(1),
        _ => 1,
    };
    probes.ignore_exec_helpers(super::exec_helpers::of_manager(manager))?;
    probes.watch(&watched)?;
    probes.attach(&root)?;
    let ring = probes.take_path_events()?;
    if scratch.is_none() {
        let adopted = probes.adopt_running(&watched)?;
        match watched.id {
            Some(_) => info!("recording {} ({adopted} tasks already running)", watched.path.display()),
            None => info!("recording {} from when it is created (the unit is not running yet)", watched.path.display()),
        }
    }

    let mut run = Run {
        probes,
        path_log: PathLog::default(),
        sites: SiteCache::default(),
        timeline: Timeline::default(),
        target,
        host: host_facts(),
        started: SystemTime::now(),
        clock: Instant::now(),
        running_at_start,
        checkpoint: options.checkpoint,
        injected_read_errors: std::env::var("PROFILER_INJECT_MAP_READ_ERRORS").ok().and_then(|n| n.parse().ok()).unwrap_or(0),
    };
    let unit = match &options.subject {
        Subject::Unit { name, systemd } => Some((name.as_str(), *systemd)),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    let mut phases = PhaseWatch::new(unit);
    let (command_exit, mut ring) = runtime.block_on(async {
        // SAFETY: the ring buffer owns its map fd and keeps it open, unchanged, until dropped.
        let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("watching the path ring buffer: {}", e.into_parts().1))?;
        phases.follow().await;
        let end = wait_for_end(options, scratch.as_ref());
        tokio::pin!(end);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first checkpoint at the first tick: `status` can read a soak from its start.
        let (mut last_sample, mut last_checkpoint) =
            (Instant::now(), Instant::now().checked_sub(options.checkpoint).unwrap_or_else(Instant::now));
        let mut read_failures = 0u32;
        let exit = loop {
            tokio::select! {
                exit = &mut end => break exit?,
                drained = drain_paths(&mut ring, &mut run.path_log) => drained?,
                _ = tick.tick() => {
                    run.probes.flush_log();
                    let changed = phases.poll();
                    // Half a tick early is on time: ticks drift, and waiting for the next
                    // one would stretch every interval by a tick.
                    let due = |since: Instant, every: Duration| since.elapsed() + TICK / 2 >= every;
                    let checkpoint_due = due(last_checkpoint, options.checkpoint);
                    if changed || checkpoint_due || due(last_sample, SAMPLE_EVERY) {
                        let sample = match run.sample(phases.take(), None, true) {
                            Ok(sample) => {
                                if std::mem::take(&mut read_failures) > 0 {
                                    info!("the kernel maps are read again");
                                }
                                sample
                            }
                            // A read that fails once (a map busy, memory short) is retried at
                            // the next tick; only one that keeps failing ends the recording.
                            Err(e) => {
                                read_failures += 1;
                                if read_failures >= MAX_READ_FAILURES {
                                    return Err(e.context(format!("reading the kernel maps failed {read_failures} times in a row")));
                                }
                                if read_failures == 1 {
                                    warn!("{e:#}; recording goes on, the read is retried");
                                }
                                continue;
                            }
                        };
                        last_sample = Instant::now();
                        if checkpoint_due {
                            // A failure is logged by the checkpointer; the next interval retries.
                            let _ = checkpointer.write(&sample);
                            last_checkpoint = Instant::now();
                        }
                    }
                }
            }
        };
        anyhow::Ok((exit, ring.into_inner()))
    })?;
    // What the kernel sent, and the manager announced, after the last wake-up.
    file_path_records(&mut ring, &mut run.path_log);
    phases.poll();
    let last = run.sample(phases.take(), command_exit.and_then(|s| s.code()), false)?;
    if last.recording.restarts > 0 {
        info!("the unit started again {} time(s) while recorded", last.recording.restarts);
    }
    drop(run);
    if let Some(scratch) = &scratch
        && let Ok(left) = scratch.watched.processes()
        && !left.is_empty()
    {
        warn!("{} process(es) the command left behind still run in {}; not removing it", left.len(), scratch.watched.path.display());
    }
    write_last(&mut checkpointer, &last)
}

/// The final write; a full disk gets a few more chances, since the recording is over.
fn write_last(checkpointer: &mut Checkpointer, last: &Profile) -> anyhow::Result<Profile> {
    for attempt in 1..=3 {
        match checkpointer.write(last) {
            Ok(written) => return Ok(written),
            Err(e) if attempt == 3 => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
    unreachable!("the last attempt returns")
}

/// One recording in progress: the loaded probes and what userspace keeps beside them.
struct Run {
    probes: Probes,
    path_log: PathLog,
    sites: SiteCache,
    timeline: Timeline,
    target: Target,
    /// Read once: the host does not change during a recording.
    host: Host,
    started: SystemTime,
    clock: Instant,
    /// Whether the unit was running when recording began: its first start is then not a
    /// restart.
    running_at_start: bool,
    checkpoint: Duration,
    /// Reads still to fail on purpose (PROFILER_INJECT_MAP_READ_ERRORS, for the tests).
    injected_read_errors: u32,
}

impl Run {
    /// The hooks the evidence comes from, where the kernel offered a choice.
    fn hooks(&self) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        use super::hooks::HookChoice as _;
        let (capabilities, syscalls) = self.probes.hooks();
        let mut hooks = std::collections::BTreeMap::new();
        hooks.insert(profile::CAPABILITY_HOOKS.to_string(), [capabilities.map_or("none", |h| h.name()).to_string()].into());
        if let Some(syscalls) = syscalls {
            hooks.insert(profile::SYSCALL_HOOKS.to_string(), [syscalls.name().to_string()].into());
        }
        let execs = if self.probes.reads_exec_files() { profile::EXEC_FILE } else { profile::EXEC_NAME_ONLY };
        hooks.insert(profile::EXEC_HOOKS.to_string(), [execs.to_string()].into());
        hooks
    }

    /// The profile of this recording so far, read from the kernel maps, with what is new
    /// since the last sample stamped as first seen now, in `phase`.
    fn sample(&mut self, phase: Option<&str>, command_exit: Option<i32>, live: bool) -> anyhow::Result<Profile> {
        if self.injected_read_errors > 0 {
            self.injected_read_errors -= 1;
            bail!("reading the kernel maps: an error injected by PROFILER_INJECT_MAP_READ_ERRORS");
        }
        let observations = collect::collect(&mut self.probes, &self.path_log, &mut self.sites)?;
        let starts = self.probes.cgroup_recreations()?;
        let restarts = if self.running_at_start { starts } else { starts.saturating_sub(1) };
        let now = SystemTime::now();
        let stamp = humantime::format_rfc3339_seconds(now).to_string();
        let mut profile = Profile {
            format: profile::FORMAT.into(),
            version: profile::VERSION,
            target: self.target.clone(),
            host: self.host.clone(),
            recording: Recording {
                started: humantime::format_rfc3339_seconds(self.started).to_string(),
                ended: stamp.clone(),
                seconds: (self.clock.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                command_exit,
                restarts,
                runs: 1,
                checkpointed: Some(stamp.clone()),
                checkpoint_seconds: Some(self.checkpoint.as_secs().max(1)),
                live,
                hooks: self.hooks(),
                ..Default::default()
            },
            syscalls: observations.syscalls,
            capabilities: observations.capabilities,
            executables: observations.executables,
            losses: observations.losses,
            paths: observations.paths,
            families: observations.families,
            namespaces: observations.namespaces,
            devices: observations.devices,
            sockets: observations.sockets,
            acts: observations.acts,
            peers: observations.peers,
            errors: observations.errors,
            refused: observations.refused,
        };
        let new = self.timeline.stamp(&mut profile, &stamp, phase);
        log::debug!("sample at {stamp}: {new} new item(s), phase {phase:?}, {} paths", self.path_log.entries.len());
        Ok(profile)
    }
}

/// How long the manager has to answer on its bus before the recorder polls instead.
const BUS_TIMEOUT: Duration = Duration::from_secs(3);

/// The phases a unit went through since the last sample, from systemd's ActiveState: as its
/// manager announces each change on its bus, or, where the bus cannot be reached, as
/// `systemctl show` gives it at each tick (which misses a phase shorter than a tick).
struct PhaseWatch<'a> {
    unit: Option<(&'a str, Systemd)>,
    last_state: Option<String>,
    seen: Vec<&'static str>,
    /// The state the unit was in when following began, not yet noted.
    first: Option<String>,
    /// The manager's announcements, while it is followed on its bus.
    changes: Option<mpsc::UnboundedReceiver<String>>,
}

impl<'a> PhaseWatch<'a> {
    fn new(unit: Option<(&'a str, Systemd)>) -> Self {
        Self { unit, last_state: None, seen: Vec::new(), first: None, changes: None }
    }

    /// Follows the unit on its manager's bus (inside the runtime); without the bus, `poll`
    /// asks `systemctl show`.
    async fn follow(&mut self) {
        let Some((name, systemd)) = self.unit else { return };
        // In a task of its own: a panic in the D-Bus code ends that task, not the recording.
        let unit = name.to_string();
        // A bus that accepts and never answers (a paused container) must not hold up recording.
        let follow = tokio::spawn(async move { systemd.follow_state(&unit).await.map_err(|e| e.to_string()) });
        let followed = match tokio::time::timeout(BUS_TIMEOUT, follow).await {
            Ok(joined) => joined.unwrap_or_else(|e| Err(format!("the D-Bus client failed: {e}"))),
            Err(_) => Err(format!("no answer in {} s", BUS_TIMEOUT.as_secs())),
        };
        match followed {
            Ok(follow) => {
                info!("following {name}'s state on its manager's bus ({})", follow.socket.display());
                self.first = Some(follow.current);
                self.changes = Some(follow.changes);
            }
            Err(e) => warn!("cannot follow {name}'s state on its manager's bus ({e}); asking systemctl once a second instead"),
        }
    }

    /// Takes in the unit's state changes since the last call; true when it changed.
    fn poll(&mut self) -> bool {
        let Some((name, systemd)) = self.unit else { return false };
        let Some(changes) = self.changes.as_mut() else {
            let Ok(state) = systemd.show(name) else { return false };
            return self.note(state.active_state);
        };
        let mut announced: Vec<String> = self.first.take().into_iter().collect();
        loop {
            match changes.try_recv() {
                Ok(state) => announced.push(state),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    warn!("{name}'s manager closed its bus connection; asking systemctl once a second instead");
                    self.changes = None;
                    break;
                }
            }
        }
        if announced.is_empty() {
            // Still in the state it was in: that phase goes on.
            if let Some(state) = &self.last_state {
                self.seen.push(timeline::phase_of(state));
            }
            return false;
        }
        // Every state is noted (no short-circuit): each phase counts.
        let mut changed = false;
        for state in announced {
            changed |= self.note(state);
        }
        changed
    }

    /// Notes a state the unit was in; true when it differs from the one before.
    fn note(&mut self, state: String) -> bool {
        self.seen.push(timeline::phase_of(&state));
        let changed = self.last_state.as_deref() != Some(state.as_str());
        if changed {
            log::debug!("{} is {state}", self.unit.map_or("", |(name, _)| name));
        }
        self.last_state = Some(state);
        changed
    }

    /// The phase for items new since the last call (None for commands and cgroups).
    fn take(&mut self) -> Option<&'static str> {
        let phase = timeline::dominant(self.seen.drain(..));
        // The current state carries over into the next interval.
        if let Some(state) = &self.last_state {
            self.seen.push(timeline::phase_of(state));
        }
        phase
    }
}

/// Waits for path records and files them.
async fn drain_paths(ring: &mut AsyncFd<RingBuf<MapData>>, log: &mut PathLog) -> anyhow::Result<()> {
    let mut ready = ring.readable_mut().await.context("waiting on the path ring buffer")?;
    file_path_records(ready.get_inner_mut(), log);
    ready.clear_ready();
    Ok(())
}

/// Files every record the ring buffer holds now.
fn file_path_records(ring: &mut RingBuf<MapData>, log: &mut PathLog) {
    while let Some(record) = ring.next() {
        log.add_record(&record);
    }
}

fn resolve_command(program: &str) -> anyhow::Result<()> {
    if program.contains('/') {
        if !Path::new(program).is_file() {
            bail!("command not found: {program}");
        }
        return Ok(());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join(program).is_file()) {
        return Ok(());
    }
    bail!("command not found: {program} (not in PATH)")
}

/// Waits for the command to exit, the duration to pass, or SIGINT/SIGTERM.
async fn wait_for_end(options: &RecordOptions, scratch: Option<&ScratchCgroup>) -> anyhow::Result<Option<ExitStatus>> {
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let deadline = async {
        match options.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);

    let (Subject::Command(argv), Some(scratch)) = (&options.subject, scratch) else {
        tokio::select! {
            _ = sigint.recv() => info!("interrupted; writing the profile"),
            _ = sigterm.recv() => info!("terminated; writing the profile"),
            _ = &mut deadline => info!("duration reached; writing the profile"),
        }
        return Ok(None);
    };

    let procs = scratch.procs_file()?;
    let procs_fd = procs.as_raw_fd();
    let mut command = tokio::process::Command::new(&argv[0]);
    command.args(&argv[1..]);
    // SAFETY: between fork and exec the child only calls write(2) on an fd opened before fork,
    // which is async-signal-safe; "0" moves the writing process itself into the cgroup.
    unsafe {
        command.pre_exec(move || {
            if libc::write(procs_fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().with_context(|| format!("starting {}", argv[0]))?;
    drop(procs);
    let status = tokio::select! {
        status = child.wait() => status,
        _ = sigint.recv() => stop_child(&mut child, "interrupted").await,
        _ = sigterm.recv() => stop_child(&mut child, "terminated").await,
        _ = &mut deadline => stop_child(&mut child, "duration reached").await,
    }
    .with_context(|| format!("waiting for {}", argv[0]))?;
    if !status.success() {
        warn!("{} exited with {status}", argv[0]);
    }
    Ok(Some(status))
}

/// Asks the command to stop (SIGTERM), and kills it if it has not within 10 s.
async fn stop_child(child: &mut tokio::process::Child, why: &str) -> std::io::Result<ExitStatus> {
    info!("{why}; stopping the command");
    if let Some(pid) = child.id() {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            child.kill().await?;
            child.wait().await
        }
    }
}

fn host_facts() -> Host {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    Host {
        hostname: read("/proc/sys/kernel/hostname"),
        kernel: read("/proc/sys/kernel/osrelease"),
        arch: std::env::consts::ARCH.to_string(),
    }
}
