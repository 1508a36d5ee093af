//! Drains the path ring buffer while recording and keeps what generate needs: every path
//! written, and reads only under the prefixes a directive depends on.
//!
//! Memory stays bounded by what is distinct: reads are cut to their first three components,
//! `/proc/PID/...` to `/proc/PID`, and a directory with more than `MAX_CHILDREN` distinct
//! written entries (spool and temp files) is kept as one `dir/*` entry, which from then on
//! takes in every new name below it.

use std::collections::{BTreeMap, BTreeSet};

use profiler_common::{PATH_DEPTH, PathEvent, path_flags, path_op};

use crate::profile::{
    PathOp, names,
    path_text::{self, is_under},
};

/// Distinct written names kept per directory before they are folded into `dir/*`.
pub const MAX_CHILDREN: usize = 64;

/// Where a read decides a directive: ProtectHome, PrivateTmp, ProtectProc/ProcSubset,
/// ProtectKernelTunables/Logs, ProtectKernelModules, ProtectControlGroups=strict.
const READ_PREFIXES: &[&str] =
    &["/home", "/root", "/run/user", "/tmp", "/var/tmp", "/proc", "/dev/kmsg", "/usr/lib/modules", "/lib/modules", "/sys/fs/cgroup"];

#[derive(Debug, Default, Clone)]
pub struct PathEntry {
    pub ops: BTreeSet<PathOp>,
    /// Writes that failed: `create EROFS`.
    pub failures: BTreeSet<String>,
    pub exe_slots: BTreeSet<u32>,
    pub incomplete: bool,
}

/// Paths seen so far, by encoded path.
#[derive(Debug, Default)]
pub struct PathLog {
    pub entries: BTreeMap<String, PathEntry>,
    children: BTreeMap<String, usize>,
    pub malformed: u64,
}

/// The profile's name of a kernel path op; `None` for a value this build does not know.
pub fn path_op(op: u32) -> Option<PathOp> {
    Some(match op {
        path_op::OPEN_WRITE => PathOp::Write,
        path_op::CREATE => PathOp::Create,
        path_op::MKDIR => PathOp::Mkdir,
        path_op::MKNOD => PathOp::Mknod,
        path_op::UNLINK => PathOp::Unlink,
        path_op::RMDIR => PathOp::Rmdir,
        path_op::RENAME => PathOp::Rename,
        path_op::LINK => PathOp::Link,
        path_op::SYMLINK => PathOp::Symlink,
        path_op::TRUNCATE => PathOp::Truncate,
        path_op::CHMOD => PathOp::Chmod,
        path_op::CHOWN => PathOp::Chown,
        path_op::UTIMES => PathOp::Utimes,
        path_op::XATTR => PathOp::Xattr,
        path_op::BIND_UNIX => PathOp::BindUnix,
        path_op::OPEN_READ => PathOp::Read,
        path_op::STAT => PathOp::Stat,
        path_op::CONNECT_UNIX => PathOp::ConnectUnix,
        _ => return None,
    })
}

/// The absolute path a record names, before normalisation.
fn assemble(event: &PathEvent) -> Vec<u8> {
    let cut = |b: &[u8]| b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())].to_vec();
    let tail = cut(&event.tail);
    if tail.first() == Some(&b'/') {
        return tail;
    }
    let mut path = Vec::new();
    let depth = (event.depth as usize).min(PATH_DEPTH);
    for name in event.names[..depth].iter().rev() {
        path.push(b'/');
        path.extend(cut(name));
    }
    if !tail.is_empty() {
        path.push(b'/');
        path.extend(tail);
    }
    path
}

impl PathLog {
    /// Takes one ring buffer record.
    pub fn add_record(&mut self, bytes: &[u8]) {
        if bytes.len() < size_of::<PathEvent>() {
            self.malformed += 1;
            return;
        }
        // SAFETY: PathEvent is plain repr(C) data of integers and bytes; length checked above;
        // read_unaligned because ring buffer records are only 8-byte aligned by contract.
        let event: PathEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        let Some(op) = path_op(event.op) else {
            self.malformed += 1;
            return;
        };
        let incomplete = event.flags & (path_flags::TRUNCATED | path_flags::BASE_UNKNOWN) != 0;
        let path = path_text::encode(&path_text::normalize(&assemble(&event)));
        let errno = (event.flags >> path_flags::ERRNO_SHIFT) as u16;
        self.add(path, op, event.exe_slot, incomplete, errno);
    }

    /// Takes one path record; `errno` is 0 when the call succeeded.
    pub fn add(&mut self, path: String, op: PathOp, exe_slot: u32, incomplete: bool, errno: u16) {
        let path = if op.is_write() {
            path
        } else {
            match read_key(&path) {
                Some(key) => key,
                None => return,
            }
        };
        let path = self.fold(path, op);
        let entry = self.entries.entry(path).or_default();
        if errno != 0 && op.is_write() {
            entry.failures.insert(format!("{op} {}", names::errno_name(errno)));
        } else {
            entry.ops.insert(op);
        }
        entry.exe_slots.insert(exe_slot);
        entry.incomplete |= incomplete;
    }

    /// Folds the children of a directory with too many distinct written names into `dir/*`.
    fn fold(&mut self, path: String, op: PathOp) -> String {
        if !op.is_write() || self.entries.contains_key(&path) {
            return path;
        }
        // Below a folded directory, every new name joins the fold: otherwise a directory made
        // afresh each round under it would start a count of its own, and memory would grow.
        let mut ancestor = path.as_str();
        while ancestor != "/" {
            ancestor = path_text::parent(ancestor);
            let folded = format!("{}/*", ancestor.trim_end_matches('/'));
            if self.entries.contains_key(&folded) {
                return folded;
            }
        }
        let dir = path_text::parent(&path).to_string();
        let folded = format!("{}/*", dir.trim_end_matches('/'));
        let count = self.children.entry(dir.clone()).or_default();
        *count += 1;
        if *count <= MAX_CHILDREN {
            return path;
        }
        // Merge what the directory's children had into the folded entry.
        let children: Vec<String> = self.entries.keys().filter(|p| path_text::parent(p) == dir && p.as_str() != dir).cloned().collect();
        let mut merged = PathEntry::default();
        for child in children {
            if let Some(e) = self.entries.remove(&child) {
                merged.ops.extend(e.ops);
                merged.failures.extend(e.failures);
                merged.exe_slots.extend(e.exe_slots);
                merged.incomplete |= e.incomplete;
            }
        }
        self.entries.insert(folded.clone(), merged);
        folded
    }
}

/// The key a read is kept under, or None when no directive depends on it.
fn read_key(path: &str) -> Option<String> {
    if !READ_PREFIXES.iter().any(|p| is_under(path, p)) {
        return None;
    }
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    if parts.first() == Some(&"proc") && parts.get(1).is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) {
        // A process's cgroup file is kept whole: a cgroup namespace changes what it says.
        if parts.get(2) == Some(&"cgroup") {
            return Some(format!("/proc/{}/cgroup", parts[1]));
        }
        return Some(format!("/proc/{}", parts[1]));
    }
    Some(format!("/{}", parts.iter().take(3).copied().collect::<Vec<_>>().join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tail: &[u8], names: &[&[u8]]) -> PathEvent {
        let mut e = PathEvent {
            op: path_op::MKDIR,
            exe_slot: 3,
            depth: names.len() as u32,
            flags: 0,
            tail: [0; 256],
            names: [[0; 64]; PATH_DEPTH],
        };
        e.tail[..tail.len()].copy_from_slice(tail);
        for (i, n) in names.iter().enumerate() {
            e.names[i][..n.len()].copy_from_slice(n);
        }
        e
    }

    #[test]
    fn cgroup_reads_are_kept_for_protect_control_groups() {
        assert_eq!(read_key("/sys/fs/cgroup/system.slice/x/memory.max").as_deref(), Some("/sys/fs/cgroup"));
        assert_eq!(read_key("/proc/1234/cgroup").as_deref(), Some("/proc/1234/cgroup"));
        assert_eq!(read_key("/proc/self/cgroup").as_deref(), Some("/proc/self/cgroup"));
        assert_eq!(read_key("/proc/1234/status").as_deref(), Some("/proc/1234"));
        assert_eq!(read_key("/sys/kernel/mm/x"), None);
    }

    #[test]
    fn joins_the_base_innermost_first_then_the_relative_string() {
        assert_eq!(assemble(&event(b"rel", &[b"work", b"tmp"])), b"/tmp/work/rel");
        assert_eq!(assemble(&event(b"/abs/x", &[b"ignored"])), b"/abs/x");
        assert_eq!(assemble(&event(b"", &[b"f", b"etc"])), b"/etc/f");
        assert_eq!(assemble(&event(b"../x", &[b"b", b"a"])), b"/a/b/../x");
    }

    #[test]
    fn keeps_writes_and_only_the_reads_that_decide_something() {
        let mut log = PathLog::default();
        log.add("/var/lib/app/db".into(), PathOp::Write, 1, false, 0);
        log.add("/usr/share/doc/x".into(), PathOp::Read, 1, false, 0);
        log.add("/home/alice/.config/app/rc".into(), PathOp::Read, 1, false, 0);
        log.add("/proc/1234/status".into(), PathOp::Read, 1, false, 0);
        let keys: Vec<&str> = log.entries.keys().map(String::as_str).collect();
        assert_eq!(keys, ["/home/alice/.config", "/proc/1234", "/var/lib/app/db"]);
    }

    #[test]
    fn folds_a_directory_of_many_distinct_names() {
        let mut log = PathLog::default();
        for i in 0..(MAX_CHILDREN + 10) {
            log.add(format!("/var/spool/app/{i:08}"), PathOp::Create, 1, false, 0);
        }
        log.add("/var/spool/other".into(), PathOp::Create, 2, false, 0);
        assert!(log.entries.contains_key("/var/spool/app/*"));
        assert_eq!(log.entries.keys().filter(|k| k.starts_with("/var/spool/app/")).count(), 1);
        assert!(log.entries["/var/spool/app/*"].ops.contains(&PathOp::Create));
    }

    #[test]
    fn a_fresh_directory_each_round_joins_the_fold_above_it() {
        let mut log = PathLog::default();
        for round in 0..1000 {
            log.add(format!("/var/lib/app/round-{round}"), PathOp::Mkdir, 1, false, 0);
            for f in 0..3 {
                log.add(format!("/var/lib/app/round-{round}/f{f}"), PathOp::Create, 1, false, 0);
            }
        }
        let below: Vec<&str> = log.entries.keys().map(String::as_str).filter(|k| k.starts_with("/var/lib/app/")).collect();
        // The first 64 rounds' directories fold the parent; what they held stays, nothing after.
        assert!(below.contains(&"/var/lib/app/*"));
        assert!(below.len() <= 1 + MAX_CHILDREN * 4, "{} entries", below.len());
        assert!(!below.iter().any(|k| k.starts_with("/var/lib/app/round-999")));
        assert!(log.children.len() <= MAX_CHILDREN + 2);
    }

    #[test]
    fn a_refused_write_is_a_failure_not_a_write_and_a_failed_read_still_counts() {
        let mut log = PathLog::default();
        log.add("/var/lib/app/state".into(), PathOp::Create, 1, false, 30);
        log.add("/home/alice/.cache".into(), PathOp::Stat, 1, false, 2);
        let state = &log.entries["/var/lib/app/state"];
        assert!(state.ops.is_empty());
        assert_eq!(state.failures, ["create EROFS".to_string()].into());
        assert!(log.entries["/home/alice/.cache"].ops.contains(&PathOp::Stat));
    }
}
