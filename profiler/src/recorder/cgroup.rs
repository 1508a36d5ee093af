//! cgroup2: where it is mounted, the watched directory's id and depth, scratch cgroups for
//! `record -- CMD`, and the processes already inside a cgroup subtree.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 hierarchy is mounted (looked in /proc/self/mountinfo)")]
    NoCgroup2,
    #[error("{path} is not a cgroup2 directory under {root}")]
    NotCgroup2 { path: PathBuf, root: PathBuf },
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io { path: path.into(), source }
}

/// The cgroup2 mount point: `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on a
/// hybrid one.
pub fn cgroup2_root() -> Result<PathBuf, CgroupError> {
    let mounts = procfs::process::Process::myself()
        .and_then(|me| me.mountinfo())
        .map_err(|e| CgroupError::Io { path: "/proc/self/mountinfo".into(), source: std::io::Error::other(e) })?;
    cgroup2_mount_point(&mounts.0).ok_or(CgroupError::NoCgroup2)
}

/// The shortest cgroup2 mount point, so a container's nested mount never wins over the host's.
fn cgroup2_mount_point(mounts: &[procfs::process::MountInfo]) -> Option<PathBuf> {
    mounts.iter().filter(|m| m.fs_type == "cgroup2").map(|m| m.mount_point.clone()).min_by_key(|p| p.as_os_str().len())
}

/// A cgroup2 directory to watch, with what the kernel filter needs to recognise it.
#[derive(Debug, Clone)]
pub struct WatchedCgroup {
    pub path: PathBuf,
    /// The path below the cgroup2 root, `/system.slice/nginx.service` style.
    pub relative: String,
    /// The directory's inode number, which is what `bpf_get_current_cgroup_id` returns;
    /// `None` while the cgroup does not exist yet (a unit that has not started).
    pub id: Option<u64>,
    /// Depth below the root (the root is 0).
    pub level: u32,
}

impl WatchedCgroup {
    pub fn open(root: &Path, path: &Path) -> Result<Self, CgroupError> {
        let not_cgroup = || CgroupError::NotCgroup2 { path: path.into(), root: root.into() };
        let canonical = path.canonicalize().map_err(io_err(path))?;
        let relative = canonical.strip_prefix(root).map_err(|_| not_cgroup())?;
        if !canonical.join("cgroup.procs").is_file() {
            return Err(not_cgroup());
        }
        let id = fs::metadata(&canonical).map_err(io_err(path))?.ino();
        let level = relative.components().count() as u32;
        Ok(Self { relative: format!("/{}", relative.display()), path: canonical, id: Some(id), level })
    }

    /// A cgroup that systemd will create at `relative` (below the cgroup2 root) when the unit
    /// starts; if it already exists, it is opened.
    pub fn expected(root: &Path, relative: &str) -> Result<Self, CgroupError> {
        let path = root.join(relative.trim_start_matches('/'));
        if path.exists() {
            return Self::open(root, &path);
        }
        let relative = format!("/{}", relative.trim_matches('/'));
        let level = relative.split('/').filter(|c| !c.is_empty()).count() as u32;
        Ok(Self { path, relative, id: None, level })
    }

    /// Every process in this cgroup and below it, at the moment of reading.
    pub fn processes(&self) -> Result<Vec<u32>, CgroupError> {
        let mut pids = Vec::new();
        let mut dirs = vec![self.path.clone()];
        while let Some(dir) = dirs.pop() {
            let procs = dir.join("cgroup.procs");
            match fs::read_to_string(&procs) {
                Ok(text) => pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok())),
                // A child cgroup removed while we walk is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CgroupError::Io { path: procs, source: e }),
            }
            for entry in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(entry.path());
                }
            }
        }
        Ok(pids)
    }
}

/// A cgroup this process created to run a command in; removed again on drop.
#[derive(Debug)]
pub struct ScratchCgroup {
    pub watched: WatchedCgroup,
}

impl ScratchCgroup {
    pub fn create(root: &Path, name: &str) -> Result<Self, CgroupError> {
        let path = root.join(name);
        fs::create_dir(&path).map_err(io_err(&path))?;
        let watched = WatchedCgroup::open(root, &path)?;
        Ok(Self { watched })
    }

    /// An open handle on `cgroup.procs`: writing "0" to it moves the writer into the cgroup,
    /// which a child does between fork and exec.
    pub fn procs_file(&self) -> Result<fs::File, CgroupError> {
        let path = self.watched.path.join("cgroup.procs");
        fs::OpenOptions::new().write(true).open(&path).map_err(io_err(&path))
    }
}

impl Drop for ScratchCgroup {
    fn drop(&mut self) {
        // Fails while daemonised leftovers still live in it; they are reported by the caller.
        let _ = fs::remove_dir(&self.watched.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(text: &str) -> Vec<procfs::process::MountInfo> {
        use procfs::FromBufRead as _;
        procfs::process::MountInfos::from_buf_read(text.as_bytes()).unwrap().0
    }

    #[test]
    fn finds_the_cgroup2_mount_on_hybrid_and_unified_hosts() {
        let hybrid = "25 24 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                      26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                      27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(cgroup2_mount_point(&mounts(hybrid)), Some("/sys/fs/cgroup/unified".into()));
        let unified = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
                       90 80 0:26 / /var/lib/machines/x/sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount_point(&mounts(unified)), Some("/sys/fs/cgroup".into()));
        assert_eq!(cgroup2_mount_point(&mounts("1 0 0:1 / / rw - ext4 /dev/vda rw\n")), None);
    }
}
