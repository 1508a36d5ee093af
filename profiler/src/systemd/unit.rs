//! systemd units: find a unit's cgroup from systemd's own `ControlGroup` property rather than
//! guessing `system.slice/NAME` (template and nested units live elsewhere). The systemd asked
//! is this host's, or the one running as PID 1 of a container (`--container-pid`).

use std::{collections::BTreeMap, process::Command};

use log::warn;

use super::version::SystemdVersion;
use crate::harden::syscall_groups::{GroupsError, SyscallGroups};

#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("cannot run systemctl to look up unit {unit}: {source} (is this a systemd host? --cgroup names a cgroup directly)")]
    NoSystemctl { unit: String, source: std::io::Error },
    #[error("systemctl could not show unit {unit}: {stderr}")]
    Systemctl { unit: String, stderr: String },
    #[error("unit {unit} does not exist (LoadState={load_state})")]
    NotFound { unit: String, load_state: String },
    #[error("cannot run `systemctl {args}`: {source}")]
    Run { args: String, source: std::io::Error },
    #[error("`systemctl {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("cannot read the cgroup of container PID {pid}: {reason}")]
    Container { pid: u32, reason: String },
}

/// What `systemctl show` says about a unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitState {
    pub load_state: String,
    pub active_state: String,
    /// Relative to that systemd's cgroup root; empty while the unit has no processes.
    pub control_group: String,
    pub slice: String,
}

/// The systemd that manages the unit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Systemd {
    /// Host PID of a container's systemd (PID 1 inside); `None` for this host's.
    pub container_pid: Option<u32>,
}

impl Systemd {
    /// A program run where that systemd runs: here, or inside the container's namespaces.
    pub fn command(&self, program: &str) -> Command {
        match self.container_pid {
            None => Command::new(program),
            Some(pid) => {
                let mut cmd = Command::new("nsenter");
                cmd.args(["-t", &pid.to_string(), "-a", program]);
                cmd
            }
        }
    }

    fn systemctl(&self) -> Command {
        self.command("systemctl")
    }

    /// Runs `systemctl ARGS`; its stdout, or an error with what it said.
    pub fn systemctl_ok(&self, args: &[&str]) -> Result<String, UnitError> {
        let output = self.systemctl().args(args).output().map_err(|source| UnitError::Run { args: args.join(" "), source })?;
        if !output.status.success() {
            return Err(UnitError::Failed { args: args.join(" "), stderr: String::from_utf8_lossy(&output.stderr).trim().to_string() });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The unit's state, refusing a unit that systemd does not know.
    pub fn loaded(&self, unit: &str) -> Result<UnitState, UnitError> {
        let state = self.show(unit)?;
        if state.load_state != "loaded" {
            return Err(UnitError::NotFound { unit: unit.into(), load_state: state.load_state });
        }
        Ok(state)
    }

    pub fn show(&self, unit: &str) -> Result<UnitState, UnitError> {
        let output = self
            .systemctl()
            .args(["show", "--property=LoadState,ActiveState,ControlGroup,Slice", "--", unit])
            .output()
            .map_err(|source| UnitError::NoSystemctl { unit: unit.into(), source })?;
        if !output.status.success() {
            return Err(UnitError::Systemctl { unit: unit.into(), stderr: String::from_utf8_lossy(&output.stderr).trim().to_string() });
        }
        Ok(parse_show(&String::from_utf8_lossy(&output.stdout)))
    }

    /// Where that systemd's cgroup tree sits below the host's cgroup2 root ("" for the host):
    /// its PID 1's cgroup as the host sees it, less the same cgroup as the container sees it
    /// (`/init.scope`, inside its cgroup namespace).
    fn cgroup_prefix(&self) -> Result<String, UnitError> {
        let Some(pid) = self.container_pid else { return Ok(String::new()) };
        let err = |reason: String| UnitError::Container { pid, reason };
        let outside = procfs::process::Process::new(pid as i32).and_then(|p| p.cgroups()).map_err(|e| err(e.to_string()))?;
        let inside = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-a", "cat", "/proc/1/cgroup"])
            .output()
            .map_err(|e| err(format!("nsenter: {e}")))?;
        let inside = {
            use procfs::FromBufRead as _;
            procfs::ProcessCGroups::from_buf_read(inside.stdout.as_slice()).map_err(|e| err(format!("its own view: {e}")))?
        };
        // Hierarchy 0 is cgroup2.
        let unified = |groups: &procfs::ProcessCGroups| {
            groups.0.iter().find(|g| g.hierarchy == 0).map(|g| g.pathname.trim_end_matches('/').to_string())
        };
        let outside = unified(&outside).ok_or_else(|| err("it is in no cgroup2 cgroup".into()))?;
        let inside = unified(&inside).ok_or_else(|| err("its own view shows no cgroup2 cgroup".into()))?;
        outside
            .strip_suffix(&inside)
            .map(str::to_string)
            .ok_or_else(|| err(format!("its cgroup {outside} does not end with its own view {inside}")))
    }

    /// That systemd's version and features; `None` (with a warning) when it cannot say.
    pub fn version(&self) -> Option<SystemdVersion> {
        let parsed = self.systemctl_ok(&["--version"]).ok().and_then(|text| SystemdVersion::parse(&text));
        if parsed.is_none() {
            warn!("cannot tell {} systemd's version", self.whose());
        }
        parsed
    }

    /// "this host's" or "the unit's" (a container's), for messages and drop-in headers.
    fn whose(&self) -> &'static str {
        if self.container_pid.is_some() { "the unit's" } else { "this host's" }
    }

    /// That systemd's own syscall groups (`systemd-analyze syscall-filter`); the newest
    /// built-in table, with a warning, when it cannot say.
    pub fn syscall_groups(&self) -> Result<SyscallGroups, GroupsError> {
        let listed = self.command("systemd-analyze").arg("syscall-filter").output();
        let failure = match listed {
            Ok(out) if out.status.success() => {
                let version = self.version().map_or_else(|| "of unknown version".to_string(), |v| v.major.to_string());
                let source = format!("systemd-analyze syscall-filter of {} systemd {version}", self.whose());
                match SyscallGroups::parse(&String::from_utf8_lossy(&out.stdout), &source) {
                    Ok(groups) => return Ok(groups),
                    Err(e) => e.to_string(),
                }
            }
            Ok(out) => format!("systemd-analyze syscall-filter failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            Err(e) => format!("cannot run systemd-analyze: {e}"),
        };
        let version = super::version::major_or_default(self.version().as_ref());
        warn!("{failure}; using the built-in syscall groups closest to systemd {version}");
        SyscallGroups::builtin_for(version)
    }

    /// The unit's cgroup relative to the host's cgroup2 root, and whether the unit is running
    /// now; for a unit not running, the path systemd will create for it at its next start.
    pub fn unit_cgroup(&self, unit: &str) -> Result<(String, bool), UnitError> {
        let state = self.loaded(unit)?;
        let running = !state.control_group.is_empty()
            && matches!(state.active_state.as_str(), "active" | "reloading" | "activating" | "deactivating");
        let relative = if running { state.control_group } else { format!("{}/{unit}", slice_cgroup(&state.slice)) };
        Ok((format!("{}{relative}", self.cgroup_prefix()?), running))
    }
}

/// systemd's cgroup path of a slice: `a-b.slice` lives in `/a.slice/a-b.slice`.
pub fn slice_cgroup(slice: &str) -> String {
    let Some(stem) = slice.strip_suffix(".slice") else { return String::new() };
    if stem.is_empty() || stem == "-" {
        return String::new();
    }
    let parts: Vec<&str> = stem.split('-').collect();
    (1..=parts.len()).map(|n| format!("/{}.slice", parts[..n].join("-"))).collect()
}

/// `systemctl show` output (`Name=value` lines) as name → value.
pub fn properties(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn parse_show(text: &str) -> UnitState {
    let mut state = UnitState::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let slot = match key {
            "LoadState" => &mut state.load_state,
            "ActiveState" => &mut state.active_state,
            "ControlGroup" => &mut state.control_group,
            "Slice" => &mut state.slice,
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
        let state = parse_show("LoadState=loaded\nActiveState=active\nControlGroup=/system.slice/nginx.service\nSlice=system.slice\n");
        assert_eq!(state.load_state, "loaded");
        assert_eq!(state.active_state, "active");
        assert_eq!(state.control_group, "/system.slice/nginx.service");
        assert_eq!(state.slice, "system.slice");
        let missing = parse_show("ControlGroup=\nLoadState=not-found\nActiveState=inactive\n");
        assert_eq!(missing.load_state, "not-found");
        assert!(missing.control_group.is_empty());
    }

    #[test]
    fn nested_slices_nest_their_cgroups() {
        assert_eq!(slice_cgroup("system.slice"), "/system.slice");
        assert_eq!(slice_cgroup("system-getty.slice"), "/system.slice/system-getty.slice");
        assert_eq!(slice_cgroup("a-b-c.slice"), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(slice_cgroup("-.slice"), "");
    }
}
