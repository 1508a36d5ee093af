//! `profiler record`: watch a command, a unit or a cgroup until it ends or is interrupted, then
//! write the profile.

use std::{
    io::Write as _,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    process::ExitStatus,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, bail};
use log::{info, warn};
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};

use crate::{
    cgroup::{self, ScratchCgroup, WatchedCgroup},
    collector,
    loader::Probes,
    path_events::PathLog,
    profile::{self, Host, Profile, Recording, Target, TargetKind},
    unit::Systemd,
};

/// What to watch, as the command line named it.
#[derive(Debug, Clone)]
pub enum Subject {
    Command(Vec<String>),
    Unit { name: String, systemd: Systemd, wait: bool },
    Cgroup(PathBuf),
}

#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub subject: Subject,
    pub output: PathBuf,
    pub duration: Option<Duration>,
}

pub fn run(options: &RecordOptions) -> anyhow::Result<()> {
    refuse_foreign_output(&options.output)?;
    if let Subject::Command(argv) = &options.subject {
        resolve_command(&argv[0])?;
    }
    let root = cgroup::cgroup2_root()?;
    let mut probes = Probes::load()?;

    let (watched, scratch, target) = match &options.subject {
        Subject::Command(argv) => {
            let scratch = ScratchCgroup::create(&root, &format!("profiler-record-{}", std::process::id()))?;
            let target = Target {
                kind: TargetKind::Command,
                command: Some(argv.clone()),
                unit: None,
                cgroup: scratch.watched.relative.clone(),
            };
            (scratch.watched.clone(), Some(scratch), target)
        }
        Subject::Unit { name, systemd, wait } => {
            let relative = systemd.unit_cgroup(name, *wait)?;
            let watched = WatchedCgroup::expected(&root, &relative)?;
            let target = Target { kind: TargetKind::Unit, command: None, unit: Some(name.clone()), cgroup: watched.relative.clone() };
            (watched, None, target)
        }
        Subject::Cgroup(path) => {
            let watched = WatchedCgroup::open(&root, path)?;
            let target = Target { kind: TargetKind::Cgroup, command: None, unit: None, cgroup: watched.relative.clone() };
            (watched, None, target)
        }
    };

    probes.watch(&watched)?;
    probes.attach(&root)?;
    let ring = probes.take_path_events()?;
    let mut path_log = PathLog::default();
    if scratch.is_none() {
        let adopted = probes.adopt_running(&watched)?;
        match watched.id {
            Some(_) => info!("recording {} ({adopted} tasks already running)", watched.path.display()),
            None => info!("recording {} from when it is created", watched.path.display()),
        }
    }

    let started = SystemTime::now();
    let clock = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (command_exit, mut ring) = runtime.block_on(async {
        // SAFETY: the ring buffer owns its map fd and keeps it open, unchanged, until dropped.
        let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("watching the path ring buffer: {}", e.into_parts().1))?;
        let end = wait_for_end(options, scratch.as_ref());
        tokio::pin!(end);
        let exit = loop {
            tokio::select! {
                exit = &mut end => break exit?,
                drained = drain_paths(&mut ring, &mut path_log) => drained?,
            }
        };
        anyhow::Ok((exit, ring.into_inner()))
    })?;
    // What the kernel sent after the last wake-up.
    file_path_records(&mut ring, &mut path_log);
    let seconds = clock.elapsed().as_secs_f64();
    let ended = SystemTime::now();

    let observations = collector::collect(&mut probes, &path_log)?;
    let starts = probes.cgroup_recreations()?;
    if starts > 0 {
        info!("the watched cgroup was created {starts} time(s) while recording (unit starts)");
    }
    drop(probes);
    if let Some(scratch) = &scratch
        && let Ok(left) = scratch.watched.processes()
        && !left.is_empty()
    {
        warn!("{} process(es) the command left behind still run in {}; not removing it", left.len(), scratch.watched.path.display());
    }

    let profile = Profile {
        format: profile::FORMAT.into(),
        version: profile::VERSION,
        target,
        host: host_facts(),
        recording: Recording {
            started: humantime::format_rfc3339_seconds(started).to_string(),
            ended: humantime::format_rfc3339_seconds(ended).to_string(),
            seconds: (seconds * 1000.0).round() / 1000.0,
            command_exit: command_exit.and_then(|s| s.code()),
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
    };
    profile::save(&profile, &options.output)?;
    summarise(&profile, &options.output);
    Ok(())
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

/// An existing output file is replaced only if it is one of our profiles: never clobber a
/// file the user may need.
fn refuse_foreign_output(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    profile::load(path).with_context(|| format!("refusing to overwrite {}", path.display()))?;
    Ok(())
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

fn summarise(profile: &Profile, output: &Path) {
    let needed = profile.capabilities.values().filter(|c| c.needed()).count();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "profile written to {}: {} syscalls, {} capabilities needed, {} executables in {:.1} s{}",
        output.display(),
        profile.syscall_names().len(),
        needed,
        profile.executables.len(),
        profile.recording.seconds,
        if profile.losses.is_empty() { String::new() } else { format!("; LOST records: {:?}", profile.losses) },
    );
}
