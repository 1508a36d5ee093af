//! The command line: parsed with clap, turned into each command's options.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{
    commands::{
        apply::ApplyOptions, check::CheckOptions, diff::DiffOptions, generate::GenerateOptions, merge::MergeOptions, report::ReportOptions,
    },
    harden::{Options, SyscallAction},
    output::OutputFormat,
    recorder::session::{RecordOptions, Subject},
    systemd::{
        Systemd,
        target::{GroupSource, TargetSpec},
    },
};

/// Record what a systemd service does with eBPF, and write the least-privilege drop-in that
/// lets it keep doing exactly that.
#[derive(Debug, Parser)]
#[command(name = "profiler", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch a command, a unit or a cgroup and write its profile, checkpointing as it goes.
    Record(RecordArgs),
    /// Print (or write) the drop-in a profile supports.
    Generate(GenerateArgs),
    /// Summarise a profile at a glance: what, how long, totals, when it last learned something,
    /// losses, and whether a recorder is still writing it.
    Status(StatusArgs),
    /// Install a profile's drop-in for its unit (/etc/systemd/system/UNIT.d/50-profiler.conf),
    /// reload systemd, and with --restart restart the unit and wait for it; or --revert.
    Apply(ApplyArgs),
    /// Record the hardened unit and compare it with its baseline profile: report calls and
    /// capability checks that now fail, what went quiet, and new places written. Exits 1 when
    /// something is found.
    Check(CheckArgs),
    /// What B needs that A did not and the reverse, kind by kind, and how their drop-ins
    /// differ. Exits 1 when they differ.
    Diff(DiffArgs),
    /// The union of profiles of one service (across hosts and runs), with each item's coverage.
    Merge(MergeArgs),
    /// A report for review: the drop-in, each directive with its evidence, what was left open,
    /// per-executable attribution, losses and the convergence curve (HTML, or --markdown).
    Report(ReportArgs),
    /// For the benchmark: attach only an empty program on one of the recorder's syscall hooks
    /// until SIGINT or SIGTERM (the floor any syscall recorder on that hook pays here).
    #[command(hide = true)]
    Floor {
        /// `auto` (the hook `record` takes here), `fexit` (x64_sys_call) or `tracepoint`
        /// (sys_exit).
        #[arg(long, default_value = "auto")]
        hook: String,
    },
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub a: PathBuf,
    pub b: PathBuf,
    /// `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Two profiles or more.
    #[arg(required = true, num_args = 2..)]
    pub inputs: Vec<PathBuf>,
    /// Where to write the merged profile.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Merge profiles of different services too (the first one's target is kept).
    #[arg(long)]
    pub any_target: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The unit, running (or about to run) under its drop-in.
    #[arg(long)]
    pub unit: String,
    /// The profile recorded before hardening.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Watch this long (e.g. 10m, 2h); otherwise until SIGINT/SIGTERM. Watch at least as long
    /// as the baseline was, or what went quiet is not judged.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Keep the hardened run's profile here.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub systemd: SystemdArgs,
    /// `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A profile written by `record --unit` for this unit.
    #[arg(required_unless_present = "revert", conflicts_with = "revert")]
    pub profile: Option<PathBuf>,
    /// The unit to harden (NAME.service).
    #[arg(long)]
    pub unit: String,
    /// Remove the drop-in `apply` installed (never a file it did not write).
    #[arg(long)]
    pub revert: bool,
    /// Show the change as a diff against what is installed, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Restart the unit afterwards and wait until it is active; fail if it does not stay so.
    #[arg(long, conflicts_with = "dry_run")]
    pub restart: bool,
    #[command(flatten)]
    pub systemd: SystemdArgs,
    /// What an unlisted syscall does: an errno name (EPERM, ENOSYS, ...) or "kill".
    #[arg(long, default_value = "EPERM", value_parser = parse_syscall_action)]
    pub on_unlisted_syscall: SyscallAction,
    /// As `generate --pin-peers`.
    #[arg(long)]
    pub pin_peers: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["unit", "cgroup", "command"])))]
pub struct RecordArgs {
    /// Where to write the profile (JSON). An existing profile of the same target is resumed:
    /// this recording is merged into it.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Watch a systemd unit, found by its ControlGroup property, through restarts; a unit not
    /// running yet is recorded from its next start.
    #[arg(long, conflicts_with = "cgroup")]
    pub unit: Option<String>,
    /// Accepted for compatibility: waiting for a unit that is not running is the default.
    #[arg(long, requires = "unit", hide = true)]
    pub wait: bool,
    /// With --unit: ask the systemd running as PID 1 of the container whose init has this
    /// host PID (e.g. a systemd-nspawn machine) instead of this host's.
    #[arg(long, requires = "unit", value_name = "PID")]
    pub container_pid: Option<u32>,
    /// Watch a cgroup2 directory (and everything below it) directly.
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    /// Stop after this long (e.g. 90s, 10m, 2h, 3days); otherwise at SIGINT/SIGTERM or when
    /// the command exits.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Write the profile this often while recording (atomically; a crash loses at most one
    /// interval).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub checkpoint: Duration,
    /// Run this command in a fresh cgroup and watch it until it exits.
    #[arg(last = true, num_args = 1..)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A profile written by `record` (possibly still being written).
    pub profile: PathBuf,
    /// `text` for people, `json` for scripts and monitoring.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A profile written by `record`.
    pub profile: PathBuf,
    /// Write the drop-in here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub dropin: DropinArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A profile written by `record` or `merge`.
    pub profile: PathBuf,
    /// Where to write the report: one self-contained HTML file, or Markdown with --markdown.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Markdown, for pasting into a review, instead of HTML.
    #[arg(long)]
    pub markdown: bool,
    /// (With --container-pid, systemd-analyze's own exposure verdict comes from that systemd.)
    #[command(flatten)]
    pub systemd: SystemdArgs,
    #[command(flatten)]
    pub dropin: DropinArgs,
}

/// How the drop-in is rendered: for which systemd, and what it does with what was not seen.
#[derive(Debug, Args)]
pub struct DropinArgs {
    /// Use the built-in syscall group table of this systemd version instead of asking
    /// this host's systemd-analyze.
    #[arg(long, conflicts_with = "syscall_groups")]
    pub systemd_version: Option<String>,
    /// Read syscall groups from this file (the output of `systemd-analyze syscall-filter`
    /// on the target host).
    #[arg(long)]
    pub syscall_groups: Option<PathBuf>,
    /// What an unlisted syscall does: an errno name (EPERM, ENOSYS, ...) or "kill".
    #[arg(long, default_value = "EPERM", value_parser = parse_syscall_action)]
    pub on_unlisted_syscall: SyscallAction,
    /// The unit's current settings, as `systemctl show UNIT` prints them: nothing the unit
    /// already restricts more is loosened, and Type=notify keeps AF_UNIX.
    #[arg(long)]
    pub unit_settings: Option<PathBuf>,
    /// The target systemd's version, when the groups come from a file or this host
    /// (default: this host's `systemctl --version`, else 252).
    #[arg(long)]
    pub target_version: Option<u32>,
    /// The target systemd has +BPF_FRAMEWORK (`systemctl --version`): SocketBindAllow= is
    /// enforced there, so it is written.
    #[arg(long)]
    pub bpf_framework: bool,
    /// Write IPAddressAllow= for the addresses the service connected to (IPv6 as /64
    /// networks), when it listens on loopback only and no peer was lost.
    #[arg(long)]
    pub pin_peers: bool,
}

fn parse_syscall_action(s: &str) -> Result<SyscallAction, String> {
    if s.eq_ignore_ascii_case("kill") {
        return Ok(SyscallAction::Kill);
    }
    let upper = s.to_ascii_uppercase();
    if upper.starts_with('E') && upper.len() > 1 && upper[1..].chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(SyscallAction::Errno(upper))
    } else {
        Err(format!("{s:?} is neither an errno name (EPERM) nor \"kill\""))
    }
}

/// Which systemd manages the unit.
#[derive(Debug, Args)]
pub struct SystemdArgs {
    /// The unit runs under the systemd that is PID 1 of the container whose init has this
    /// host PID (e.g. a systemd-nspawn machine), not this host's.
    #[arg(long, value_name = "PID")]
    pub container_pid: Option<u32>,
}

impl From<SystemdArgs> for Systemd {
    fn from(args: SystemdArgs) -> Self {
        Systemd { container_pid: args.container_pid }
    }
}

impl From<RecordArgs> for RecordOptions {
    fn from(args: RecordArgs) -> Self {
        let subject = match (args.unit, args.cgroup) {
            (Some(name), _) => Subject::Unit { name, systemd: Systemd { container_pid: args.container_pid } },
            (None, Some(cgroup)) => Subject::Cgroup(cgroup),
            (None, None) => Subject::Command(args.command),
        };
        RecordOptions { subject, output: args.output, duration: args.duration, checkpoint: args.checkpoint }
    }
}

impl DropinArgs {
    /// The target the drop-in is rendered for, as these options describe it.
    fn target(&self) -> TargetSpec {
        let systemd_version = self.target_version.or_else(|| self.systemd_version.as_deref().and_then(|v| v.parse().ok()));
        let groups = match (&self.systemd_version, &self.syscall_groups) {
            (Some(v), _) => GroupSource::Builtin(v.clone()),
            (None, Some(f)) => GroupSource::File(f.clone()),
            (None, None) => GroupSource::Host,
        };
        TargetSpec { groups, unit_settings: self.unit_settings.clone(), systemd_version, bpf_framework: self.bpf_framework }
    }

    /// How the drop-in for the profile at `profile` is written.
    fn options(&self, profile: &std::path::Path) -> Options {
        Options::new(profile, self.on_unlisted_syscall.clone(), self.pin_peers)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Record(args) => crate::commands::record::run(&args.into()),
        Command::Status(args) => crate::commands::status::run(&args.profile, args.format),
        Command::Generate(args) => crate::commands::generate::run(&GenerateOptions {
            target: args.dropin.target(),
            dropin: args.dropin.options(&args.profile),
            profile: args.profile,
            output: args.output,
        }),
        Command::Report(args) => crate::commands::report::run(&ReportOptions {
            target: args.dropin.target(),
            dropin: args.dropin.options(&args.profile),
            profile: args.profile,
            output: args.output,
            markdown: args.markdown,
            systemd: args.systemd.into(),
        }),
        Command::Floor { hook } => crate::commands::floor::run(&hook),
        Command::Diff(args) => crate::commands::diff::run(&DiffOptions { a: args.a, b: args.b, format: args.format }),
        Command::Merge(args) => {
            crate::commands::merge::run(&MergeOptions { inputs: args.inputs, output: args.output, any_target: args.any_target })
        }
        Command::Check(args) => crate::commands::check::run(&CheckOptions {
            unit: args.unit,
            systemd: args.systemd.into(),
            baseline: args.baseline,
            output: args.output,
            duration: args.duration,
            format: args.format,
        }),
        Command::Apply(args) => crate::commands::apply::run(&ApplyOptions {
            unit: args.unit,
            systemd: args.systemd.into(),
            profile: args.profile,
            revert: args.revert,
            dry_run: args.dry_run,
            restart: args.restart,
            syscall_action: args.on_unlisted_syscall,
            pin_peers: args.pin_peers,
        }),
    }
}
