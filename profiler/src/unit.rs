//! systemd units: find a unit's cgroup from systemd's own `ControlGroup` property rather than
//! guessing `system.slice/NAME` (template and nested units live elsewhere).

use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("cannot run systemctl to look up unit {unit}: {source} (is this a systemd host? --cgroup names a cgroup directly)")]
    NoSystemctl { unit: String, source: std::io::Error },
    #[error("systemctl could not show unit {unit}: {stderr}")]
    Systemctl { unit: String, stderr: String },
    #[error("unit {unit} does not exist (LoadState={load_state})")]
    NotFound { unit: String, load_state: String },
    #[error("unit {unit} is not running (ActiveState={active_state}); start it first")]
    NotRunning { unit: String, active_state: String },
}

/// What `systemctl show` says about a unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitState {
    pub load_state: String,
    pub active_state: String,
    /// Relative to the cgroup2 root; empty while the unit has no processes.
    pub control_group: String,
}

/// The unit's current cgroup, relative to the cgroup2 root.
pub fn control_group(unit: &str) -> Result<String, UnitError> {
    let state = show(unit)?;
    if state.load_state != "loaded" {
        return Err(UnitError::NotFound { unit: unit.into(), load_state: state.load_state });
    }
    if state.control_group.is_empty() || !matches!(state.active_state.as_str(), "active" | "reloading" | "activating") {
        return Err(UnitError::NotRunning { unit: unit.into(), active_state: state.active_state });
    }
    Ok(state.control_group)
}

pub fn show(unit: &str) -> Result<UnitState, UnitError> {
    let output = Command::new("systemctl")
        .args(["show", "--property=LoadState,ActiveState,ControlGroup", "--", unit])
        .output()
        .map_err(|source| UnitError::NoSystemctl { unit: unit.into(), source })?;
    if !output.status.success() {
        return Err(UnitError::Systemctl {
            unit: unit.into(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(parse_show(&String::from_utf8_lossy(&output.stdout)))
}

fn parse_show(text: &str) -> UnitState {
    let mut state = UnitState::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let slot = match key {
            "LoadState" => &mut state.load_state,
            "ActiveState" => &mut state.active_state,
            "ControlGroup" => &mut state.control_group,
            _ => continue,
        };
        *slot = value.to_string();
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_systemctl_show() {
        let state = parse_show("LoadState=loaded\nActiveState=active\nControlGroup=/system.slice/nginx.service\n");
        assert_eq!(state.load_state, "loaded");
        assert_eq!(state.active_state, "active");
        assert_eq!(state.control_group, "/system.slice/nginx.service");
        let missing = parse_show("ControlGroup=\nLoadState=not-found\nActiveState=inactive\n");
        assert_eq!(missing.load_state, "not-found");
        assert!(missing.control_group.is_empty());
    }
}
