//! `profiler apply`: install a profile's drop-in where the unit's systemd reads it, or take it
//! away again (`--revert`), never touching a file the profiler did not write.

use std::path::{Path, PathBuf};

use anyhow::bail;
use log::{info, warn};

use crate::{
    harden::{self, DropIn, Options, SyscallAction, Target},
    output::Found,
    profile::{self, Profile},
    systemd::{
        Systemd,
        dropin_file::{self, MARK},
        journal, target,
    },
};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub unit: String,
    pub systemd: Systemd,
    /// The profile to render; `None` with `revert`.
    pub profile: Option<PathBuf>,
    pub revert: bool,
    pub dry_run: bool,
    pub restart: bool,
    pub syscall_action: SyscallAction,
    pub pin_peers: bool,
}

pub fn run(options: &ApplyOptions) -> anyhow::Result<()> {
    let unit = options.unit.as_str();
    let systemd = &options.systemd;
    systemd.loaded(unit)?;
    let path = dropin_file::path(unit);
    let installed = dropin_file::installed(systemd, &path)?;
    let wanted = match &options.profile {
        Some(profile) if !options.revert => Some(render(options, profile, installed.as_deref(), None)?.to_string()),
        _ => None,
    };

    if options.dry_run {
        print!("{}", dropin_file::diff(&path, installed.as_deref(), wanted.as_deref()));
        return Ok(());
    }
    // What the manager says from here on is about this drop-in.
    let since = std::time::SystemTime::now();
    if installed == wanted {
        match &wanted {
            Some(_) => info!("{} is already installed as it would be written", path.display()),
            None => info!("no drop-in of ours is installed for {unit}"),
        }
    } else {
        dropin_file::write(systemd, &path, wanted.as_deref())?;
        systemd.systemctl_ok(&["daemon-reload"])?;
    }
    if options.restart {
        dropin_file::restart_and_wait(systemd, unit)?;
        info!("{unit} is active after the restart");
        // A directive the manager ignored or could not enforce is protection the drop-in
        // claims and the unit does not have.
        let mut warnings = journal::manager_warnings(systemd, unit, since)?;
        // A manager that cannot load its socket-bind program here: the drop-in leaves
        // SocketBindAllow= open with the manager's words, and is installed again.
        if let (Some(said), Some(profile)) = (journal::socket_bind_failure(&warnings), &options.profile)
            && wanted.as_ref().is_some_and(|w| w.contains("\nSocketBindAllow="))
        {
            warn!("{unit}: {said}");
            info!("SocketBindAllow= is left open: systemd could not load its socket-bind program here; installing the drop-in again");
            // The manager now shows the drop-in just written as the unit's: that is the one to take out.
            let again = render(options, profile, wanted.as_deref(), Some(said.to_string()))?.to_string();
            let since = std::time::SystemTime::now();
            dropin_file::write(systemd, &path, Some(&again))?;
            systemd.systemctl_ok(&["daemon-reload"])?;
            dropin_file::restart_and_wait(systemd, unit)?;
            warnings = journal::manager_warnings(systemd, unit, since)?;
        }
        if !warnings.is_empty() {
            for line in &warnings {
                warn!("{unit}: {line}");
            }
            return Err(Found(format!(
                "{unit} runs, but its manager did not enforce everything the drop-in says ({} line(s) above); \
                 `profiler apply --revert --unit {unit} --restart` takes the drop-in away",
                warnings.len()
            ))
            .into());
        }
    } else if installed != wanted {
        info!("{unit} runs with its old settings until it is restarted (--restart does that)");
    }
    Ok(())
}

/// The drop-in for the unit's own systemd and current settings, marked as ours.
/// `socket_bind_failure`: what the manager said when it could not load its socket-bind program.
fn render(
    options: &ApplyOptions,
    profile_path: &Path,
    installed: Option<&str>,
    socket_bind_failure: Option<String>,
) -> anyhow::Result<DropIn> {
    let profile = profile::load(profile_path)?;
    check_target(&profile, profile_path, &options.unit)?;
    let target = Target { socket_bind_failure, ..target::of_unit(&options.systemd, &options.unit, installed)? };
    let mut dropin = harden::render(&profile, &target, &Options::new(profile_path, options.syscall_action.clone(), options.pin_peers));
    let source = profile_path.canonicalize().unwrap_or_else(|_| profile_path.to_path_buf());
    let comment_safe = harden::quoting::comment_safe;
    let mark = MARK.strip_prefix("# ").unwrap_or(MARK);
    let from = format!(
        "From {}; `profiler apply --revert --unit {}` removes it.",
        comment_safe(&source.display().to_string()),
        comment_safe(&options.unit)
    );
    dropin.header.splice(0..0, [mark.to_string(), from]);
    Ok(dropin)
}

/// A profile of another unit is refused; one of a command or cgroup is allowed, with a word.
fn check_target(profile: &Profile, path: &Path, unit: &str) -> anyhow::Result<()> {
    match &profile.target.unit {
        Some(theirs) if theirs != unit => {
            bail!("{} is a profile of {theirs}, not of {unit}", path.display())
        }
        Some(_) => Ok(()),
        None => {
            warn!("{} was not recorded from {unit} (it watched {}); applying it anyway", path.display(), profile.target_label());
            Ok(())
        }
    }
}
