//! The profile: what a recording saw, as a versioned JSON document that later runs merge into
//! and compare against. Maps are ordered so the same observations always serialise the same way.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The `format` field: tells a profile of ours from any other JSON document.
pub const FORMAT: &str = "systemd-service-profile";
/// The newest schema this profiler writes; it reads every version up to this one.
/// Version 2 added paths, families, namespaces, devices, sockets and acts; version 3 added when
/// each item was first and last seen, restarts and checkpoints; version 4 added error returns,
/// failed writes, and the coverage of items in merged profiles.
/// An older profile reads as one that saw none of what came later.
pub const VERSION: u32 = 5;

pub mod compare;
mod merge;
pub mod names;
mod path_op;
pub mod path_text;
pub mod seen;

pub use merge::{Merge, as_input, merge_all};
pub use path_op::PathOp;
pub use seen::{Observed, Seen};

/// How a sandbox refuses a syscall: `EPERM` (systemd's usual `SystemCallErrorNumber=`, and
/// what a call gets without its capability) and `SIGSYS` (a filter that kills). A call that
/// always got `ENOSYS` is not counted as refused: it is how programs probe for a newer call
/// before falling back (glibc's clone3), and refusing it with another errno would stop the
/// fallback; the unit's own filter, where known, still keeps it out.
pub const REFUSING_ERRNOS: [&str; 2] = ["EPERM", "SIGSYS"];

/// A syscall every call of which was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusal {
    pub count: u64,
    pub errnos: Vec<&'static str>,
    pub executables: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub format: String,
    pub version: u32,
    pub target: Target,
    pub host: Host,
    pub recording: Recording,
    /// Syscalls by ABI (`x86_64`, `i386`, `x32`), then by name.
    pub syscalls: BTreeMap<String, BTreeMap<String, SyscallUse>>,
    /// Capabilities by name (`CAP_CHOWN`).
    pub capabilities: BTreeMap<String, CapabilityUse>,
    /// Executables that ran in the watched tasks, by path as passed to exec.
    pub executables: BTreeMap<String, ExecutableUse>,
    /// Records the kernel side could not keep, by kind; absent kinds lost nothing.
    pub losses: BTreeMap<String, u64>,
    /// Files and directories acted on, by absolute path in `path_text` form: every write, and
    /// reads only where a directive depends on them (/home, /tmp, /proc, ...).
    #[serde(default)]
    pub paths: BTreeMap<String, PathUse>,
    /// Address families passed to socket(2), by name (`AF_INET`).
    #[serde(default)]
    pub families: BTreeMap<String, ItemUse>,
    /// Namespaces created or joined, by kind (`mnt`, `net`, ...; `setns-any` for setns(fd, 0)).
    #[serde(default)]
    pub namespaces: BTreeMap<String, ItemUse>,
    /// Device nodes opened or created, by `char 1:3` / `block 8:0`.
    #[serde(default)]
    pub devices: BTreeMap<String, DeviceUse>,
    /// Inet binds and connects, by `bind ipv4 tcp any:80`.
    #[serde(default)]
    pub sockets: BTreeMap<String, SocketUse>,
    /// Other acts a directive forbids: `mmap-write-exec`, `mprotect-exec`, `personality 0x8`,
    /// `realtime SCHED_FIFO`, `setuid-mode 04755`, `setuid-exec`.
    #[serde(default)]
    pub acts: BTreeMap<String, ItemUse>,
    /// Addresses connected to beyond loopback (`192.0.2.1`, or an IPv6 `/64` network), for
    /// `generate --pin-peers`.
    #[serde(default)]
    pub peers: BTreeMap<String, ItemUse>,
    /// Error returns a sandbox can cause (`EPERM`, `EACCES`, `EROFS`, `ENOSYS`, `ENOENT`,
    /// `EAFNOSUPPORT`, ...), by `syscall ERRNO` (`mlockall EPERM`; other ABIs than x86_64 as
    /// `i386:socketcall EPERM`). Each call is also counted under `syscalls`.
    #[serde(default)]
    pub errors: BTreeMap<String, ItemUse>,
    /// Attempts that failed, which are evidence of a refusal and never of a need, by
    /// `family AF_NETLINK EAFNOSUPPORT` or `namespace net EPERM` (what was asked, and the
    /// errno it got). Syscalls whose every call was refused are told from `errors`
    /// (`Profile::refused_syscalls`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refused: BTreeMap<String, ItemUse>,
}

/// How often something was seen, and by which executables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemUse {
    pub count: u64,
    pub executables: BTreeSet<String>,
    /// When it was first and last seen (absent in profiles older than version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
    /// In a merge of profiles: how many of them saw it (absent outside merges: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<u32>,
}

/// What was done to one path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathUse {
    /// `write`, `create`, `mkdir`, `unlink`, `rename`, ... and `read`, `stat`: writes that
    /// succeeded, and reads tried (a read that failed still says where the service looks).
    pub ops: BTreeSet<PathOp>,
    /// Writes that failed, with the errno: `create EROFS`, `write EACCES`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub failures: BTreeSet<String>,
    pub executables: BTreeSet<String>,
    /// The kernel could not give the whole path (a component or the depth was cut, or the
    /// base directory was unreadable): this is the part that is known.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    /// When it was first and last seen (absent in profiles older than version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
    /// In a merge of profiles: how many of them saw it (absent outside merges: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceUse {
    /// `char` or `block`.
    pub kind: String,
    pub major: u32,
    pub minor: u32,
    /// `r`, `w`, `m` (mknod), as in DeviceAllow=.
    pub access: String,
    pub count: u64,
    pub executables: BTreeSet<String>,
    /// When it was first and last seen (absent in profiles older than version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
    /// In a merge of profiles: how many of them saw it (absent outside merges: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketUse {
    /// `bind` or `connect`.
    pub op: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// `tcp`, `udp`, or the protocol number.
    pub protocol: String,
    /// `any` (unspecified address), `loopback` or `other`.
    pub scope: String,
    pub port: u16,
    pub count: u64,
    pub executables: BTreeSet<String>,
    /// When it was first and last seen (absent in profiles older than version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
    /// In a merge of profiles: how many of them saw it (absent outside merges: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<u32>,
}

/// What was watched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub kind: TargetKind,
    /// The command line, for `record -- CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The systemd unit, for `record --unit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The cgroup2 path watched, relative to the cgroup2 root (`/system.slice/nginx.service`).
    pub cgroup: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    #[default]
    Command,
    Unit,
    Cgroup,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub hostname: String,
    pub kernel: String,
    pub arch: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    /// RFC 3339, UTC.
    pub started: String,
    pub ended: String,
    /// Wall-clock seconds watched.
    pub seconds: f64,
    /// The exit status of the recorded command, when there was one and it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_exit: Option<i32>,
    /// Times the watched unit started again while recorded (stops, crashes and restarts),
    /// over every recording merged into this profile.
    #[serde(default)]
    pub restarts: u64,
    /// Recordings merged into this profile (resumed soaks add one each).
    #[serde(default = "one")]
    pub runs: u64,
    /// When the recorder last wrote this file (RFC 3339, UTC), and how often it writes it:
    /// `status` tells a live recorder from a stopped one by them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpointed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_seconds: Option<u64>,
    /// Whether the recorder was still running when it wrote this file (it clears this on its
    /// last write).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
    /// In a merge of profiles: how many were merged (absent outside merges: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<u32>,
    /// In a merge of profiles: the hosts they were recorded on.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub hosts: BTreeSet<String>,
    /// The kernel hooks each kind of evidence came from, where the kernel offered a choice
    /// (`capabilities`: `tracepoint`, `fexit`, `kprobe` or `none`; `syscalls`: `fexit` or
    /// `tracepoint`); every hook used by any
    /// recording merged in. Absent in profiles older than this field: the tracepoint.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hooks: BTreeMap<String, BTreeSet<String>>,
}

/// `recording.hooks` kind for capability checks, and what each hook means for the evidence.
pub const CAPABILITY_HOOKS: &str = "capabilities";
/// `recording.hooks` kind for syscalls: `tracepoint` (sys_exit, every call), or `fexit` (forced;
/// blind to a number past the end of the kernel's table).
pub const SYSCALL_HOOKS: &str = "syscalls";
/// `recording.hooks` kind for execs: `file` (the file run is read: its set-user-ID mode is
/// seen), or `name-only` (the kernel's BTF lacked a member on the way to it: set-user-ID
/// executions go unseen). Absent in older profiles: `file`.
pub const EXEC_HOOKS: &str = "execs";
pub const EXEC_FILE: &str = "file";
pub const EXEC_NAME_ONLY: &str = "name-only";

/// The hook of `kind` a profile that names none used: the only one there was.
pub fn hook_before(kind: &str) -> &'static str {
    if kind == EXEC_HOOKS { EXEC_FILE } else { "tracepoint" }
}

impl Recording {
    /// Whether some recording merged in could not see set-user-ID executions.
    pub fn set_id_execs_unseen(&self) -> bool {
        self.hooks.get(EXEC_HOOKS).is_some_and(|hooks| hooks.contains(EXEC_NAME_ONLY))
    }

    /// The capability hooks the evidence came from (the tracepoint for older profiles; an
    /// empty list names no hook, so none).
    pub fn capability_hooks(&self) -> BTreeSet<&str> {
        match self.hooks.get(CAPABILITY_HOOKS) {
            Some(hooks) if hooks.is_empty() => BTreeSet::from(["none"]),
            Some(hooks) => hooks.iter().map(String::as_str).collect(),
            None => BTreeSet::from([hook_before(CAPABILITY_HOOKS)]),
        }
    }

    /// Capabilities some of whose checks the hooks used could not see: fexit and kprobes miss
    /// the calls security/commoncap.c makes to cap_capable in its own file (inlined there
    /// before 6.14): CAP_SETPCAP for capset's inheritable set and prctl's securebits,
    /// CAP_SYS_RAWIO for mmap below mmap_min_addr. With no hook, every capability.
    pub fn capabilities_unseen(&self) -> Option<&'static [&'static str]> {
        let hooks = self.capability_hooks();
        if hooks.contains("none") {
            Some(&[])
        } else if hooks.contains("fexit") || hooks.contains("kprobe") {
            Some(&["CAP_SETPCAP", "CAP_SYS_RAWIO"])
        } else {
            None
        }
    }
}

fn one() -> u64 {
    1
}

/// A syscall: how often, and by which executables.
pub type SyscallUse = ItemUse;

/// Capability checks, split by what they mean for the bounding set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityUse {
    /// Checks the kernel made because the operation needed the capability, and granted.
    pub granted: u64,
    /// Such checks that failed: the operation was refused, so the service ran without it.
    pub denied: u64,
    /// Checks made only to choose a behaviour (`*_noaudit`): never a reason to grant.
    pub probes: u64,
    pub executables: BTreeSet<String>,
    /// The kernel function that asked, with its counts: the evidence behind the numbers above.
    pub callers: BTreeMap<String, CallerUse>,
    /// When it was first and last seen (absent in profiles older than version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
    /// In a merge of profiles: how many of them saw it (absent outside merges: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerUse {
    pub granted: u64,
    pub denied: u64,
    pub probe: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutableUse {
    /// Execs seen during the recording (0 for a process already running when it started).
    pub execs: u64,
    /// When it was first and last seen (absent in profiles older than version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
    /// In a merge of profiles: how many of them saw it (absent outside merges: one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<u32>,
}

impl CapabilityUse {
    /// Whether the service needed this capability: some check that was not a probe succeeded.
    pub fn needed(&self) -> bool {
        self.granted > 0
    }
}

impl Profile {
    /// Distinct syscall names over all ABIs.
    pub fn syscall_names(&self) -> BTreeSet<&str> {
        self.syscalls.values().flat_map(|m| m.keys().map(String::as_str)).collect()
    }

    /// Syscalls of any ABI that were allowed at least once: every call not refused.
    pub fn needed_syscall_names(&self) -> BTreeSet<&str> {
        let refused = self.refused_syscalls();
        let mut needed = BTreeSet::new();
        for (abi, calls) in &self.syscalls {
            needed.extend(calls.keys().filter(|name| !refused.contains_key(&(abi.as_str(), name.as_str()))).map(String::as_str));
        }
        needed
    }

    /// Syscalls (by ABI and name) whose every call was refused as a sandbox refuses one
    /// (`REFUSING_ERRNOS`). The service ran without them ever succeeding, so they are no need; with
    /// the errnos they got and the executables that tried.
    pub fn refused_syscalls(&self) -> BTreeMap<(&str, &str), Refusal> {
        let mut out = BTreeMap::new();
        for (abi, calls) in &self.syscalls {
            for (name, use_) in calls {
                let key = |errno: &str| match abi.as_str() {
                    names::NATIVE_ABI => format!("{name} {errno}"),
                    other => format!("{other}:{name} {errno}"),
                };
                let mut refusal = Refusal::default();
                for errno in REFUSING_ERRNOS {
                    if let Some(error) = self.errors.get(&key(errno)) {
                        refusal.count = refusal.count.saturating_add(error.count);
                        refusal.errnos.push(errno);
                        refusal.executables.extend(error.executables.iter().cloned());
                    }
                }
                if use_.count > 0 && refusal.count >= use_.count {
                    out.insert((abi.as_str(), name.as_str()), refusal);
                }
            }
        }
        out
    }

    /// ABIs other than the native one that made syscalls.
    pub fn compat_abis(&self) -> Vec<&str> {
        self.syscalls
            .iter()
            .filter(|(abi, calls)| abi.as_str() != crate::profile::names::NATIVE_ABI && !calls.is_empty())
            .map(|(abi, _)| abi.as_str())
            .collect()
    }

    /// A short human name of the target, for messages and comments.
    pub fn target_label(&self) -> String {
        match (&self.target.unit, &self.target.command) {
            (Some(unit), _) => unit.clone(),
            (None, Some(command)) => command.join(" "),
            (None, None) => self.target.cgroup.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a profile: {reason}")]
    Foreign { path: PathBuf, reason: String },
    #[error("profile {path} is corrupt: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("profile {path} has version {found}; this profiler reads up to version {VERSION}")]
    TooNew { path: PathBuf, found: u32 },
    #[error("cannot write profile {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("profile {path} is {size} bytes, over the {MAX_PROFILE_BYTES}-byte limit: not a profile this profiler wrote")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("profile {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The largest profile `load` reads. A profile is bounded by the kernel tables it was read from
/// (a few MiB at most, merges included); anything larger is refused before it is read.
pub const MAX_PROFILE_BYTES: u64 = 256 << 20;

/// Reads and validates a profile; a foreign or damaged file is an error naming it.
pub fn load(path: &Path) -> Result<Profile, ProfileError> {
    let read_err = |source| ProfileError::Read { path: path.into(), source };
    let size = fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_PROFILE_BYTES {
        return Err(ProfileError::TooLarge { path: path.into(), size });
    }
    let text = fs::read(path).map_err(read_err)?;
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|source| ProfileError::Corrupt { path: path.into(), source })?;
    let foreign = |reason: &str| ProfileError::Foreign { path: path.into(), reason: reason.into() };
    match value.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        Some(other) => return Err(foreign(&format!("its format is {other:?}, not {FORMAT:?}"))),
        None => return Err(foreign(&format!("it has no \"format\": {FORMAT:?} field"))),
    }
    let version = value.get("version").and_then(|v| v.as_u64()).ok_or_else(|| foreign("it has no numeric \"version\" field"))?;
    if version > u64::from(VERSION) {
        return Err(ProfileError::TooNew { path: path.into(), found: version as u32 });
    }
    let profile: Profile = serde_json::from_value(value).map_err(|source| ProfileError::Corrupt { path: path.into(), source })?;
    profile.validate().map_err(|reason| ProfileError::Invalid { path: path.into(), reason })?;
    Ok(profile)
}

impl Profile {
    /// What serde cannot check: ABIs, capability names and paths are of the kinds a recording
    /// writes, so no later step acts on a name it cannot have meant (a relative path would
    /// become a ReadWritePaths= line).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(abi) = self.syscalls.keys().find(|abi| !["x86_64", "i386", "x32"].contains(&abi.as_str())) {
            return Err(format!("unknown syscall ABI {abi:?}"));
        }
        if let Some(cap) = self.capabilities.keys().find(|c| !c.starts_with("CAP_")) {
            return Err(format!("{cap:?} is not a capability name"));
        }
        if let Some(path) = self.paths.keys().find(|p| !path_text::is_normal_absolute(p)) {
            return Err(format!("{path:?} is not an absolute, normalised path"));
        }
        Ok(())
    }
}

/// Writes a profile atomically: a temporary file beside the target, fsync'd, then renamed over
/// it, so a crash or a full disk leaves the previous file intact.
pub fn save(profile: &Profile, path: &Path) -> Result<(), ProfileError> {
    let mut text =
        serde_json::to_vec_pretty(profile).map_err(|e| ProfileError::Write { path: path.into(), source: std::io::Error::other(e) })?;
    text.push(b'\n');
    write_atomically(path, &text).map_err(|source| ProfileError::Write { path: path.into(), source })
}

/// Replaces `path` with `contents` so that readers see the old or the new file, never a part.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".profiler-").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable only once the directory is synced.
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Profile {
        let mut syscalls = BTreeMap::new();
        let exe: BTreeSet<String> = ["/usr/bin/true".to_string()].into();
        syscalls.insert(
            "x86_64".to_string(),
            BTreeMap::from([("read".to_string(), SyscallUse { count: 3, executables: exe.clone(), seen: None, coverage: None })]),
        );
        Profile {
            format: FORMAT.into(),
            version: VERSION,
            target: Target {
                kind: TargetKind::Command,
                command: Some(vec!["/usr/bin/true".into()]),
                unit: None,
                cgroup: "/profiler-1".into(),
            },
            host: Host { hostname: "h".into(), kernel: "6.18".into(), arch: "x86_64".into() },
            recording: Recording {
                started: "2026-11-22T08:00:00Z".into(),
                ended: "2026-11-22T08:00:01Z".into(),
                seconds: 1.0,
                command_exit: Some(0),
                runs: 1,
                ..Default::default()
            },
            syscalls,
            capabilities: BTreeMap::from([("CAP_CHOWN".to_string(), CapabilityUse { granted: 1, executables: exe, ..Default::default() })]),
            executables: BTreeMap::from([("/usr/bin/true".to_string(), ExecutableUse { execs: 1, seen: None, coverage: None })]),
            losses: BTreeMap::new(),
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let profile = sample();
        save(&profile, &path).unwrap();
        assert_eq!(load(&path).unwrap(), profile);
    }

    #[test]
    fn refuses_foreign_corrupt_and_newer_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        fs::write(&path, b"{\"hello\": 1}").unwrap();
        assert!(matches!(load(&path), Err(ProfileError::Foreign { .. })));
        fs::write(&path, b"{\"format\": \"systemd-service-profile\", \"ver").unwrap();
        assert!(matches!(load(&path), Err(ProfileError::Corrupt { .. })));
        let mut newer = serde_json::to_value(sample()).unwrap();
        newer["version"] = 99.into();
        fs::write(&path, serde_json::to_vec(&newer).unwrap()).unwrap();
        let err = load(&path).unwrap_err();
        assert!(matches!(err, ProfileError::TooNew { found: 99, .. }));
        assert!(err.to_string().contains("x.json"), "{err}");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        save(&sample(), &path).unwrap();
        let before = fs::read(&path).unwrap();
        // A directory where the temporary file should go makes the write fail.
        let bad = dir.path().join("missing-dir").join("p.json");
        assert!(save(&sample(), &bad).is_err());
        assert_eq!(fs::read(&path).unwrap(), before);
    }
}
