//! What the unit's manager said about a drop-in once it loaded it and restarted the unit: the
//! journal lines that mean a directive was not understood or not enforced.

use std::time::SystemTime;

use super::Systemd;

/// Phrases of the manager's that mean a line of the unit's configuration did not take effect:
/// unknown or unparsable keys and values are ignored, and a BPF program (socket bind, IP
/// firewall, devices, file systems) it could not load leaves its directive unenforced.
const NOT_ENFORCED: [&str; 6] =
    ["Unknown key", "Unknown lvalue", "Failed to parse", "ignoring", "Failed to load BPF", "not supported, ignoring"];

/// The manager's own journal lines (PID 1's, not the service's) since `since` that are about
/// `unit` or name its drop-in directory, and say a directive did not take effect.
pub fn manager_warnings(systemd: &Systemd, unit: &str, since: SystemTime) -> anyhow::Result<Vec<String>> {
    let since = since.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let out = systemd
        .command("journalctl")
        .args(["--no-pager", "-o", "cat", "--since", &format!("@{since}"), "_PID=1"])
        .output()
        .map_err(|e| anyhow::anyhow!("reading the manager's journal: {e}"))?;
    if !out.status.success() {
        anyhow::bail!("reading the manager's journal: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let about_unit = text.lines().filter(|l| l.contains(unit)).collect::<Vec<_>>().join("\n");
    Ok(not_enforced(&about_unit))
}

/// Of the manager's lines, the one saying it could not load its socket-bind program (the
/// kernel refused it): SocketBindAllow= is then accepted and not enforced.
pub fn socket_bind_failure(warnings: &[String]) -> Option<&str> {
    warnings.iter().map(String::as_str).find(|l| l.contains("bpf-socket-bind") || l.contains("socket bind"))
}

/// The lines of `journal` that say a directive did not take effect.
pub fn not_enforced(journal: &str) -> Vec<String> {
    journal.lines().filter(|l| NOT_ENFORCED.iter().any(|p| l.contains(p))).map(|l| l.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_ignored_and_unenforced_directives_from_ordinary_lines() {
        let journal = "Starting nginx.service...\n\
            /etc/systemd/system/nginx.service.d/50-profiler.conf:40: Unknown key name 'PrivatePIDs' in section 'Service', ignoring.\n\
            nginx.service: bpf-socket-bind: Failed to load BPF object: Invalid argument\n\
            Started nginx.service.\n";
        let found = not_enforced(journal);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("PrivatePIDs") && found[1].contains("bpf-socket-bind"));
        assert!(not_enforced("Starting x.service...\nStarted x.service.\n").is_empty());
        assert_eq!(socket_bind_failure(&found), Some(found[1].as_str()));
        assert_eq!(socket_bind_failure(&found[..1]), None);
    }
}
