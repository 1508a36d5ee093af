//! The drop-in file `apply` installs: where it goes, how it is told from an administrator's
//! own file, installing and removing it, and restarting the unit to see it take.
//!
//! Every file operation runs where the unit's systemd runs (`Systemd::command`: inside a
//! container's namespaces), so a path is resolved in the container's own root: a symlink
//! there (`/etc/systemd/system` pointing at `/srv/x`, say) can never lead a write onto the host.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::Systemd;
use crate::harden::DROPIN_NAME;

/// The first line of every drop-in `apply` installs: how a later apply or revert knows the
/// file is its own.
pub const MARK: &str = "# Installed by `profiler apply`.";
/// How long a restarted unit gets to become active.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long it must then stay active to count as started (a daemon that dies right after
/// start-up is caught here, not by the administrator an hour later).
const SETTLE: Duration = Duration::from_secs(2);

/// Where the drop-in goes, as the unit's systemd sees it: /etc/systemd/system/UNIT.d/.
pub fn path(unit: &str) -> PathBuf {
    Path::new("/etc/systemd/system").join(format!("{unit}.d")).join(DROPIN_NAME)
}

/// Runs a shell script where the unit's systemd runs, with `args` as `$1`.. and `input` on
/// standard input; its standard output.
pub(crate) fn run_there(
    systemd: &Systemd,
    what: &str,
    script: &str,
    args: &[&str],
    input: Option<&str>,
    not_found_ok: bool,
) -> anyhow::Result<(i32, String)> {
    use std::io::Write as _;
    let mut cmd = systemd.command("sh");
    cmd.args(["-c", script, "sh"]).args(args);
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("{what}: starting sh"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).with_context(|| format!("{what}: writing to sh"))?;
    }
    let out = child.wait_with_output().with_context(|| format!("{what}: waiting for sh"))?;
    let code = out.status.code().unwrap_or(-1);
    if code != 0 && !(code == NOT_FOUND && not_found_ok) {
        bail!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok((code, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The exit status the scripts give for "no such file".
const NOT_FOUND: i32 = 3;

/// The drop-in of ours installed at `path`, if any; an error if a file there is not ours.
pub fn installed(systemd: &Systemd, path: &Path) -> anyhow::Result<Option<String>> {
    let shown = path.display().to_string();
    let (code, text) = run_there(systemd, &format!("reading {shown}"), "[ -e \"$1\" ] || exit 3; cat -- \"$1\"", &[&shown], None, true)?;
    if code == NOT_FOUND {
        return Ok(None);
    }
    check_ours(path, text).map(Some)
}

/// `text`, if it is a drop-in `apply` wrote; an error naming `path` otherwise.
fn check_ours(path: &Path, text: String) -> anyhow::Result<String> {
    if !text.starts_with(MARK) {
        bail!(
            "refusing to touch {}: the profiler did not write it (its first line is not {MARK:?}); \
             move it away or merge it by hand",
            path.display()
        );
    }
    Ok(text)
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

/// Writes `text` at `path` (a temporary file beside it, flushed, then renamed over it), or
/// removes the file, and its directory when that is now empty, for `None`.
pub fn write(systemd: &Systemd, path: &Path, text: Option<&str>) -> anyhow::Result<()> {
    let shown = path.display().to_string();
    match text {
        Some(text) => {
            let script = "d=$(dirname -- \"$1\") && mkdir -p -- \"$d\" && cat > \"$1.profiler-new\" && sync -- \"$1.profiler-new\" \
                          && mv -f -- \"$1.profiler-new\" \"$1\"";
            run_there(systemd, &format!("writing {shown}"), script, &[&shown], Some(text), false)?;
            log::info!("installed {shown}");
        }
        None => {
            // Only if it is now empty: the administrator's own drop-ins stay.
            let script = "rm -f -- \"$1\" && { rmdir -- \"$(dirname -- \"$1\")\" 2>/dev/null; true; }";
            run_there(systemd, &format!("removing {shown}"), script, &[&shown], None, false)?;
            log::info!("removed {shown}");
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
    fn a_foreign_file_is_refused_and_ours_is_read_written_and_removed() {
        let here = Systemd::default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.service.d").join(DROPIN_NAME);
        assert_eq!(installed(&here, &path).unwrap(), None);
        std::fs::create_dir(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "[Service]\nUser=me\n").unwrap();
        let err = installed(&here, &path).unwrap_err().to_string();
        assert!(err.contains("refusing to touch") && err.contains("did not write it"), "{err}");
        let ours = format!("{MARK}\n[Service]\n");
        write(&here, &path, Some(&ours)).unwrap();
        assert_eq!(installed(&here, &path).unwrap().as_deref(), Some(ours.as_str()));
        write(&here, &path, None).unwrap();
        assert!(!path.parent().unwrap().exists(), "the emptied directory is gone");
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
