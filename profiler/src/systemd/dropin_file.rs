//! The drop-in file `apply` installs: where it goes, how it is told from an administrator's
//! own file, installing and removing it, and restarting the unit to see it take.

use std::{
    fs,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::Systemd;
use crate::{harden::DROPIN_NAME, profile::write_atomically};

/// The first line of every drop-in `apply` installs: how a later apply or revert knows the
/// file is its own.
pub const MARK: &str = "# Installed by `profiler apply`.";
/// How long a restarted unit gets to become active.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long it must then stay active to count as started (a daemon that dies right after
/// start-up is caught here, not by the administrator an hour later).
const SETTLE: Duration = Duration::from_secs(2);

/// Where the drop-in goes: /etc/systemd/system/UNIT.d/, under that systemd's root.
pub fn path(systemd: &Systemd, unit: &str) -> PathBuf {
    systemd.root().join("etc/systemd/system").join(format!("{unit}.d")).join(DROPIN_NAME)
}

/// The drop-in of ours installed at `path`, if any; an error if a file there is not ours.
pub fn installed(path: &Path) -> anyhow::Result<Option<String>> {
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

/// The directive names an installed drop-in sets (`CapabilityBoundingSet`, ...), read from the
/// file on disk: what it sets shows up in `systemctl show` as the unit's own.
pub fn directives(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.is_empty())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .collect()
}

/// Writes `text` at `path`, or removes the file (and its directory when now empty) for `None`.
pub fn write(path: &Path, text: Option<&str>) -> anyhow::Result<()> {
    match text {
        Some(text) => {
            let dir = path.parent().context("a drop-in path has a directory")?;
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            write_atomically(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
            log::info!("installed {}", path.display());
        }
        None => {
            fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
            // Only if it is now empty: the administrator's own drop-ins stay.
            if let Some(dir) = path.parent() {
                let _ = fs::remove_dir(dir);
            }
            log::info!("removed {}", path.display());
        }
    }
    Ok(())
}

/// A unified diff of the installed drop-in against the one that would be written.
pub fn diff(path: &Path, installed: Option<&str>, wanted: Option<&str>) -> String {
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
pub fn restart_and_wait(systemd: &Systemd, unit: &str) -> anyhow::Result<()> {
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
        let text =
            format!("{MARK}\n# comment\n[Service]\nProtectSystem=strict\nCapabilityBoundingSet=\n\nSystemCallFilter=@system-service\n");
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
