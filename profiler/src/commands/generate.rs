//! `profiler generate`: render a profile's drop-in to stdout or a file.

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use crate::{
    harden::{self, Options, SyscallAction, sandbox::Target, syscall_groups::SyscallGroups},
    profile,
};

/// The systemd assumed when nothing says which one the drop-in is for (Debian 12's).
pub const DEFAULT_SYSTEMD: u32 = 252;

/// `systemctl show` output: `Name=value` lines.
fn unit_settings(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading unit settings from {}", path.display()))?;
    let settings = crate::unit::properties(&text);
    if settings.is_empty() {
        anyhow::bail!("{} holds no Name=value lines; expected the output of `systemctl show UNIT`", path.display());
    }
    Ok(settings)
}

/// The major version in `systemctl --version` ("systemd 252 (252.38-1~deb12u1)").
fn host_systemd_version() -> Option<u32> {
    let out = std::process::Command::new("systemctl").arg("--version").output().ok()?;
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1)?.parse().ok()
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub profile: PathBuf,
    pub output: Option<PathBuf>,
    /// Where syscall groups come from; `None` asks this host's systemd, then falls back to
    /// the newest built-in table.
    pub groups: GroupSource,
    pub syscall_action: SyscallAction,
    pub unit_settings: Option<PathBuf>,
    pub target_version: Option<u32>,
    pub bpf_framework: bool,
    pub pin_peers: bool,
}

#[derive(Debug, Clone)]
pub enum GroupSource {
    Host,
    Builtin(String),
    File(PathBuf),
}

/// The drop-in for `profile`, read from `path`, for the systemd and unit in `target`.
pub fn render_dropin(profile: &profile::Profile, path: &Path, groups: &SyscallGroups, action: &SyscallAction, target: Target) -> String {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    harden::render(profile, groups, &Options { syscall_action: action.clone(), profile_name: name, target })
}

pub fn run(options: &GenerateOptions) -> anyhow::Result<()> {
    let Rendered { dropin, .. } = render(options)?;
    match &options.output {
        Some(path) => profile::write_atomically(path, dropin.as_bytes()).with_context(|| format!("writing {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout.write_all(dropin.as_bytes()).and_then(|()| stdout.flush()) {
                // A closed pipe (`| head`) is not a failure.
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("writing the drop-in to stdout");
                }
            }
        }
    }
    Ok(())
}

/// A profile's drop-in, and what it was rendered from and for.
pub struct Rendered {
    pub profile: profile::Profile,
    pub dropin: String,
    pub groups: SyscallGroups,
    /// The unit's settings given with `--unit-settings` (empty without).
    pub unit_settings: BTreeMap<String, String>,
}

/// The profile's drop-in, as `options` ask for it; `report` shows the same text.
pub fn render(options: &GenerateOptions) -> anyhow::Result<Rendered> {
    let profile = profile::load(&options.profile)?;
    let groups = match &options.groups {
        GroupSource::Builtin(version) => SyscallGroups::builtin(version)?,
        GroupSource::File(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading syscall groups from {}", path.display()))?;
            SyscallGroups::parse(&text, &format!("listing in {}", path.display()))?
        }
        GroupSource::Host => SyscallGroups::from_host().or_else(|e| {
            log::warn!("{e}; using the built-in table of the newest known systemd");
            SyscallGroups::newest_builtin()
        })?,
    };
    let target = Target {
        unit: match &options.unit_settings {
            Some(path) => unit_settings(path)?,
            None => Default::default(),
        },
        systemd_version: options.target_version.or_else(host_systemd_version).unwrap_or_else(|| {
            log::warn!("cannot tell the target systemd's version; assuming {DEFAULT_SYSTEMD}");
            DEFAULT_SYSTEMD
        }),
        bpf_framework: options.bpf_framework,
        pin_peers: options.pin_peers,
    };
    let unit_settings = target.unit.clone();
    let dropin = render_dropin(&profile, &options.profile, &groups, &options.syscall_action, target);
    Ok(Rendered { profile, dropin, groups, unit_settings })
}
