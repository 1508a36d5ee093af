//! `profiler apply`: install a profile's drop-in where the unit's systemd reads it, or take it
//! away again (`--revert`), never touching a file the profiler did not write.

use std::{
    fs,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use log::{info, warn};

use crate::{
    commands::generate::render_dropin,
    harden::{SyscallAction, sandbox::Target, syscall_groups::SyscallGroups},
    profile::{self, Profile},
    unit::Systemd,
};

/// The drop-in's file name: it sorts before `override.conf` (what `systemctl edit` writes), so
/// an administrator's own settings there are read later and win.
pub const DROPIN_NAME: &str = "50-profiler.conf";
/// The first line of every drop-in `apply` installs: how a later apply or revert knows the
/// file is its own.
pub const MARK: &str = "# Installed by `profiler apply`.";
/// How long a restarted unit gets to become active.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long it must then stay active to count as started (a daemon that dies right after
/// start-up is caught here, not by the administrator an hour later).
const SETTLE: Duration = Duration::from_secs(2);

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
    let path = dropin_path(systemd, unit);
    let installed = installed(&path)?;
    let wanted = match &options.profile {
        Some(profile) if !options.revert => Some(render(options, profile, installed.as_deref())?),
        _ => None,
    };

    if options.dry_run {
        print!("{}", diff(&path, installed.as_deref(), wanted.as_deref()));
        return Ok(());
    }
    if installed == wanted {
        match &wanted {
            Some(_) => info!("{} is already installed as it would be written", path.display()),
            None => info!("no drop-in of ours is installed for {unit}"),
        }
    } else {
        match &wanted {
            Some(text) => {
                let dir = path.parent().context("a drop-in path has a directory")?;
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                profile::write_atomically(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
                info!("installed {}", path.display());
            }
            None => {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                // Only if it is now empty: the administrator's own drop-ins stay.
                if let Some(dir) = path.parent() {
                    let _ = fs::remove_dir(dir);
                }
                info!("removed {}", path.display());
            }
        }
        systemd.systemctl_ok(&["daemon-reload"])?;
    }
    if options.restart {
        restart_and_wait(systemd, unit)?;
        info!("{unit} is active after the restart");
    } else if installed != wanted {
        info!("{unit} runs with its old settings until it is restarted (--restart does that)");
    }
    Ok(())
}

/// Where the drop-in goes: /etc/systemd/system/UNIT.d/, under that systemd's root.
pub fn dropin_path(systemd: &Systemd, unit: &str) -> PathBuf {
    systemd.root().join("etc/systemd/system").join(format!("{unit}.d")).join(DROPIN_NAME)
}

/// The drop-in of ours installed at `path`, if any; an error if a file there is not ours.
fn installed(path: &Path) -> anyhow::Result<Option<String>> {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if !text.starts_with(MARK) {
        bail!(
            "refusing to touch {}: the profiler did not write it (its first line is not {MARK:?}); \
             move it away or merge it by hand",
            path.display()
        );
    }
    Ok(Some(text))
}

/// The drop-in for the unit's own systemd: its syscall groups, version, build features and
/// the unit's current settings.
fn render(options: &ApplyOptions, profile_path: &Path, installed: Option<&str>) -> anyhow::Result<String> {
    let profile = profile::load(profile_path)?;
    check_target(&profile, profile_path, &options.unit)?;
    let systemd = &options.systemd;
    let groups = target_groups(systemd)?;
    let version_text = systemd.systemctl_ok(&["--version"]).unwrap_or_default();
    let mut unit = crate::unit::properties(&systemd.systemctl_ok(&["show", "--", &options.unit])?);
    // What our installed drop-in sets shows up as the unit's own setting; it must not make the
    // new drop-in leave a line out as "already as strict".
    for directive in installed.map(directives).unwrap_or_default() {
        unit.remove(&directive);
    }
    let target = Target {
        unit,
        systemd_version: version_text.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            warn!("cannot tell the unit's systemd version; assuming {}", super::generate::DEFAULT_SYSTEMD);
            super::generate::DEFAULT_SYSTEMD
        }),
        bpf_framework: version_text.contains("+BPF_FRAMEWORK"),
        pin_peers: options.pin_peers,
    };
    let dropin = render_dropin(&profile, profile_path, &groups, &options.syscall_action, target);
    let source = profile_path.canonicalize().unwrap_or_else(|_| profile_path.to_path_buf());
    Ok(format!(
        "{MARK}\n# From {}; `profiler apply --revert --unit {}` removes it.\n{dropin}",
        crate::harden::text::comment_safe(&source.display().to_string()),
        crate::harden::text::comment_safe(&options.unit),
    ))
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

/// The unit's systemd's own syscall groups; the newest built-in table if it cannot say.
fn target_groups(systemd: &Systemd) -> Result<SyscallGroups, crate::harden::syscall_groups::GroupsError> {
    let listed = systemd.command("systemd-analyze").arg("syscall-filter").output();
    match listed {
        Ok(out) if out.status.success() => {
            match SyscallGroups::parse(&String::from_utf8_lossy(&out.stdout), "systemd-analyze syscall-filter of the unit's systemd") {
                Ok(groups) => return Ok(groups),
                Err(e) => warn!("{e}"),
            }
        }
        Ok(out) => warn!("systemd-analyze syscall-filter failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => warn!("cannot run systemd-analyze: {e}"),
    }
    warn!("using the built-in syscall groups of the newest known systemd");
    SyscallGroups::newest_builtin()
}

/// The directive names a drop-in sets (`CapabilityBoundingSet`, ...).
fn directives(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.is_empty())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .collect()
}

/// A unified diff of the installed drop-in against the one that would be written.
fn diff(path: &Path, installed: Option<&str>, wanted: Option<&str>) -> String {
    let (old, new) = (installed.unwrap_or(""), wanted.unwrap_or(""));
    if old == new {
        return format!("# {} is up to date: nothing would change\n", path.display());
    }
    let name = path.display().to_string();
    let old_name = if installed.is_some() { format!("a{name}") } else { "/dev/null".into() };
    let new_name = if wanted.is_some() { format!("b{name}") } else { "/dev/null".into() };
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(&old_name, &new_name).to_string()
}

/// `systemctl restart`, then waits until the unit is active and stays so for `SETTLE`.
fn restart_and_wait(systemd: &Systemd, unit: &str) -> anyhow::Result<()> {
    let hint = |state: &str| {
        format!(
            "{unit} did not come back after the restart ({state}); see `journalctl -u {unit}`; \
             `profiler apply --revert --unit {unit} --restart` takes the drop-in away"
        )
    };
    if let Err(e) = systemd.systemctl_ok(&["restart", "--", unit]) {
        bail!("{}: {e}", hint("the restart job failed"));
    }
    // A oneshot unit has run to completion once the restart job succeeded.
    let kind = systemd.systemctl_ok(&["show", "-p", "Type", "--value", "--", unit]).unwrap_or_default();
    if kind.trim() == "oneshot" {
        return Ok(());
    }
    let deadline = Instant::now() + START_TIMEOUT;
    let mut active_since: Option<Instant> = None;
    loop {
        let state = systemd.show(unit)?.active_state;
        match state.as_str() {
            "active" | "reloading" => {
                let since = *active_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= SETTLE {
                    return Ok(());
                }
            }
            "activating" => active_since = None,
            other => bail!("{}", hint(&format!("ActiveState={other}"))),
        }
        if Instant::now() > deadline {
            bail!("{}", hint(&format!("still {state} after {} s", START_TIMEOUT.as_secs())));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dropin_sorts_before_what_systemctl_edit_writes() {
        assert!(DROPIN_NAME < "override.conf");
    }

    #[test]
    fn directives_are_the_names_a_dropin_sets() {
        let text = format!("{MARK}\n# comment\n[Service]\nProtectSystem=strict\nCapabilityBoundingSet=\n\nSystemCallFilter=@system-service\n");
        assert_eq!(directives(&text), ["ProtectSystem", "CapabilityBoundingSet", "SystemCallFilter"]);
    }

    #[test]
    fn a_foreign_file_is_refused_and_ours_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DROPIN_NAME);
        assert_eq!(installed(&path).unwrap(), None);
        fs::write(&path, "[Service]\nUser=me\n").unwrap();
        let err = installed(&path).unwrap_err().to_string();
        assert!(err.contains("refusing to touch") && err.contains("did not write it"), "{err}");
        fs::write(&path, format!("{MARK}\n[Service]\n")).unwrap();
        assert!(installed(&path).unwrap().is_some());
    }

    #[test]
    fn the_diff_shows_what_would_change() {
        let path = Path::new("/etc/systemd/system/x.service.d/50-profiler.conf");
        let d = diff(path, Some("a\nb\n"), Some("a\nc\n"));
        assert!(d.contains("-b\n") && d.contains("+c\n") && d.contains("a/etc/systemd"), "{d}");
        assert!(diff(path, None, Some("a\n")).contains("--- /dev/null"));
        assert!(diff(path, Some("a\n"), Some("a\n")).contains("nothing would change"));
    }
}
