//! Paths compared the way the drop-in uses them: by the directories a service writes into and
//! reads from, not file by file. A daemon's run-specific names (pid files, temporary dumps,
//! rotated logs, a database's relation files) differ from run to run; what would need a new
//! line in the drop-in is a new directory.

use std::collections::BTreeSet;

use crate::profile::{Profile, path_text};

/// Where the baseline wrote and looked, as directories and as run-independent names.
pub struct Places {
    /// Directories the baseline wrote or created files in (a folded `dir/*` counts as `dir`).
    written_dirs: BTreeSet<String>,
    /// Directories the baseline read anything in, and the directories it read as such.
    read_dirs: BTreeSet<String>,
    /// Every baseline path with its digit runs blurred (`run_independent`).
    names: BTreeSet<String>,
}

impl Places {
    pub fn of(baseline: &Profile) -> Places {
        let mut places = Places { written_dirs: BTreeSet::new(), read_dirs: BTreeSet::new(), names: BTreeSet::new() };
        for (path, use_) in &baseline.paths {
            let (dir, is_folded) = match path.strip_suffix("/*") {
                Some(dir) => (dir.to_string(), true),
                None => (path_text::parent(path).to_string(), false),
            };
            let dir = run_independent(&dir);
            if use_.ops.iter().any(|op| op.is_write()) {
                places.written_dirs.insert(dir.clone());
            }
            if !is_folded {
                // A path read as a whole may be a directory listed: its entries are its reads.
                places.read_dirs.insert(run_independent(path));
            }
            places.read_dirs.insert(dir);
            places.names.insert(run_independent(path));
        }
        places
    }

    /// Whether a write to `path` goes where the baseline also wrote: the same name, or below
    /// a directory it wrote into (never `/` itself).
    pub fn wrote_near(&self, path: &str) -> bool {
        let path = run_independent(path);
        self.names.contains(&path) || ancestors(&path).any(|dir| dir != "/" && self.written_dirs.contains(dir))
    }

    /// Whether a read of `path` is one the baseline also made: the same name, a name in a
    /// directory it read in, or below one it wrote into.
    pub fn read_near(&self, path: &str) -> bool {
        let blurred = run_independent(path);
        self.names.contains(&blurred) || self.read_dirs.contains(path_text::parent(&blurred)) || self.wrote_near(path)
    }
}

/// The directories above `path`, nearest first, down to `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut current = path;
    std::iter::from_fn(move || {
        if current == "/" {
            return None;
        }
        current = path_text::parent(current);
        Some(current)
    })
}

/// `path` with every run of digits as `#`: `/proc/#/stat`, `temp-#.rdb`, `base/#/#`,
/// `access.log.#`. The names a daemon makes up per run are numbered.
pub fn run_independent(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_digits = false;
    for c in path.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{PathOp, PathUse};

    fn baseline(paths: &[(&str, PathOp)]) -> Places {
        let mut p = Profile::default();
        for (path, op) in paths {
            p.paths.entry(path.to_string()).or_insert_with(PathUse::default).ops.insert(*op);
        }
        Places::of(&p)
    }

    #[test]
    fn run_specific_names_are_blurred() {
        assert_eq!(run_independent("/var/lib/postgresql/15/main/base/1/1249"), "/var/lib/postgresql/#/main/base/#/#");
        assert_eq!(run_independent("/var/lib/redis/temp-4242.rdb"), "/var/lib/redis/temp-#.rdb");
        assert_eq!(run_independent("/proc/17/stat"), "/proc/#/stat");
    }

    #[test]
    fn a_write_below_a_directory_the_baseline_wrote_into_is_not_new() {
        let places = baseline(&[("/var/lib/pg/base/1/1259", PathOp::Write), ("/run/d/*", PathOp::Create), ("/etc/d.conf", PathOp::Read)]);
        assert!(places.wrote_near("/var/lib/pg/base/1/1249"), "a sibling relation file");
        assert!(places.wrote_near("/var/lib/pg/base/16384/1249"), "another database's directory");
        assert!(places.wrote_near("/run/d/d.pid"), "a folded directory");
        assert!(!places.wrote_near("/tmp/fallback"), "a new place");
        assert!(!places.wrote_near("/etc/d.conf.new"), "/etc was only read");
    }

    #[test]
    fn a_read_in_a_directory_the_baseline_read_in_is_not_new() {
        let places =
            baseline(&[("/etc/ssl/certs/a.pem", PathOp::Read), ("/proc/100/stat", PathOp::Read), ("/usr/share/zoneinfo", PathOp::Read)]);
        assert!(places.read_near("/etc/ssl/certs/b.pem"));
        assert!(places.read_near("/proc/200/stat"));
        assert!(places.read_near("/usr/share/zoneinfo/UTC"), "an entry of a directory read as a whole");
        assert!(!places.read_near("/etc/fallback.conf"));
    }

    #[test]
    fn the_root_is_never_a_directory_written_into() {
        let places = baseline(&[("/x", PathOp::Write)]);
        assert!(!places.wrote_near("/etc/passwd"));
        assert!(places.wrote_near("/x"));
    }
}
