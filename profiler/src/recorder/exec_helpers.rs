//! systemd's exec helpers, named by what they are: since v255 systemd forks, then execs
//! `systemd-executor` through a descriptor (`/proc/self/fd/N`), and the executor sets the unit
//! up (namespaces, mounts, credentials, capabilities) inside the unit's cgroup before it execs
//! the service. None of that is the service's own doing, so its exec must not arm a task. The
//! exec's path cannot tell it, the file can: its device and inode, taken from the descriptor
//! systemd itself holds (right even after a package upgrade replaced the file on disk), and
//! from the helper's path under that systemd's root.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use profiler_common::FileId;

/// The helper's name; the paths it is installed at (merged /usr and not).
const EXECUTOR: &str = "systemd-executor";
const EXECUTOR_PATHS: &[&str] = &["usr/lib/systemd/systemd-executor", "lib/systemd/systemd-executor"];

/// statfs magic numbers of file systems whose `stat` device is not the superblock's `s_dev`
/// the kernel side reads (btrfs subvolumes, overlayfs): their helpers match by inode alone.
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// The exec helpers of the systemd running as `manager_pid` (1 for this host's; a container's
/// PID 1 seen from the host), as the kernel side keys them.
pub fn of_manager(manager_pid: u32) -> BTreeSet<FileId> {
    let proc = PathBuf::from(format!("/proc/{manager_pid}"));
    let mut files: Vec<PathBuf> = EXECUTOR_PATHS.iter().map(|p| proc.join("root").join(p)).collect();
    files.extend(held_executors(&proc));
    files.iter().filter_map(|f| file_id(f)).collect()
}

/// The descriptors `manager` holds on the executor (systemd keeps one open to exec it by).
fn held_executors(manager: &Path) -> Vec<PathBuf> {
    let Ok(fds) = fs::read_dir(manager.join("fd")) else { return Vec::new() };
    fds.flatten()
        .map(|fd| fd.path())
        .filter(|fd| fs::read_link(fd).is_ok_and(|target| target.file_name().is_some_and(|n| n.to_string_lossy().starts_with(EXECUTOR))))
        .collect()
}

/// The file's device (in the kernel's encoding) and inode; `None` where it is not there.
pub fn file_id(path: &Path) -> Option<FileId> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let dev = if stat_device_is_kernels(path) { kernel_dev(meta.dev()) } else { 0 };
    Some(FileId { dev, ino: meta.ino() })
}

/// `dev_t` as `stat` encodes it, in the kernel's internal encoding (`MKDEV`: major << 20 |
/// minor), which is what `super_block.s_dev` holds.
fn kernel_dev(stat_dev: u64) -> u64 {
    (u64::from(libc::major(stat_dev)) << 20) | u64::from(libc::minor(stat_dev))
}

fn stat_device_is_kernels(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: statfs writes only into the struct we pass; the path is NUL-terminated.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut fs) } != 0 {
        return false;
    }
    !matches!(fs.f_type as i64, BTRFS_SUPER_MAGIC | OVERLAYFS_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dev_is_mkdev() {
        // 8:1 (sda1) and 259:65536 (a large minor).
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
        assert_eq!(kernel_dev(libc::makedev(259, 65536)), (259 << 20) | 65536);
    }

    #[test]
    fn a_held_descriptor_names_the_file_even_after_it_was_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EXECUTOR);
        fs::write(&path, b"#!/bin/true\n").unwrap();
        let before = file_id(&path).unwrap();
        let held = fs::File::open(&path).unwrap();
        // An upgrade: the file is replaced, the running manager keeps the old one open.
        fs::remove_file(&path).unwrap();
        fs::write(&path, b"#!/bin/false\n").unwrap();
        let ours = held_executors(Path::new("/proc/self"));
        assert!(ours.iter().any(|fd| file_id(fd) == Some(before)), "{ours:?}");
        assert_ne!(file_id(&path), Some(before));
        drop(held);
    }
}
