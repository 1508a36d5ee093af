//! Writes the profile of a running recording to its file, merged onto what the file held when
//! the recording began, so a resumed soak loses nothing and a crash loses one interval at most.

use std::{
    fs::File,
    io::{Read as _, Seek as _, Write as _},
    os::fd::AsRawFd as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use log::{error, info};

use crate::profile::{self, Merge as _, Profile, ProfileError};

pub struct Checkpointer {
    path: PathBuf,
    /// The profile the file held when this recording started, if it resumed one.
    base: Option<Profile>,
    /// The last write failed: the file still holds the previous good profile.
    failing: bool,
    /// Held while recording: a second recorder on the same file is refused.
    _lock: File,
}

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("{path} is a profile of {found}, not of {wanted}: give another -o, or move it away")]
    OtherTarget { path: PathBuf, found: String, wanted: String },
    #[error("refusing to overwrite {0}")]
    Unreadable(String, #[source] ProfileError),
    #[error("another recorder (pid {pid}) is writing {path}; stop it first, or give another -o")]
    Busy { path: PathBuf, pid: String },
    #[error("cannot take the lock {path} for the output: {source}")]
    Lock { path: PathBuf, source: std::io::Error },
}

/// Where recorders take their locks: one file per output, named by a hash of the output's
/// full path, so nothing is added beside the profile. tmpfs, emptied at boot.
const LOCK_DIR: &str = "/run/lock/profiler";

/// The lock directory, made root's and private if it is not there: `/run/lock` is writable by
/// everyone, and a directory or link someone else planted there must not lead root's writes.
fn secure_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    // A host without /run/lock (a minimal system, an init that is not systemd): made as
    // systemd's tmpfiles would make it, root's and 0755.
    if let Some(parent) = dir.parent()
        && !parent.exists()
    {
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other("it is not a directory of this user's that only it can write; remove it"));
    }
    Ok(())
}

/// An advisory lock (flock) on `path`'s output, held by the recorder writing it, holding its
/// pid and the path. The file stays when the recorder ends: removing it could let two later
/// recorders lock two different files for the same output.
fn lock(path: &Path) -> Result<File, ResumeError> {
    let name = path.file_name().unwrap_or_default();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let full = dir.canonicalize().map_or_else(|_| path.to_path_buf(), |d| d.join(name));
    // FNV-1a over the bytes of the full path.
    let hash =
        full.as_os_str().as_encoded_bytes().iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    let lock_dir = std::env::var_os("PROFILER_LOCK_DIR").map_or_else(|| PathBuf::from(LOCK_DIR), PathBuf::from);
    let lock_path = lock_dir.join(format!("{hash:016x}.lock"));
    let err = |source| ResumeError::Lock { path: lock_path.clone(), source };
    secure_dir(&lock_dir).map_err(err)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(err)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let pid = holder.split_whitespace().next().unwrap_or("unknown").to_string();
            return Err(ResumeError::Busy { path: path.into(), pid });
        }
        return Err(err(e));
    }
    file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{} {}", std::process::id(), full.display())).map_err(err)?;
    Ok(file)
}

impl Checkpointer {
    /// Opens the output: an existing profile of the same target is resumed; anything else that
    /// exists (another target's profile, a corrupt or foreign file) is refused and left as is.
    pub fn open(path: &Path, target: &Profile) -> Result<Self, ResumeError> {
        // Judged before the lock is taken, so a refused output gets no lock file beside it;
        // read again under the lock, which a recorder writing it holds.
        Self::resumable(path, target)?;
        let lock = lock(path)?;
        let base = Self::resumable(path, target)?;
        if let Some(existing) = &base {
            info!(
                "resuming {}: {} s watched over {} run(s) so far; adding to it",
                path.display(),
                existing.recording.seconds.round(),
                existing.recording.runs
            );
        }
        Ok(Self { path: path.into(), base, failing: false, _lock: lock })
    }

    /// The profile at `path` if it is one of `target`'s; `None` if there is no file.
    fn resumable(path: &Path, target: &Profile) -> Result<Option<Profile>, ResumeError> {
        if !path.exists() {
            return Ok(None);
        }
        let existing = profile::load(path).map_err(|e| ResumeError::Unreadable(path.display().to_string(), e))?;
        if !existing.same_target(target) {
            return Err(ResumeError::OtherTarget { path: path.into(), found: existing.target_label(), wanted: target.target_label() });
        }
        Ok(Some(existing))
    }

    /// The profile as it would be written now: the resumed one with this run merged in.
    pub fn merged(&self, run: &Profile) -> Profile {
        match &self.base {
            Some(base) => {
                let mut merged = base.clone();
                merged.merge(run);
                merged.target = run.target.clone();
                merged.host = run.host.clone();
                merged
            }
            None => run.clone(),
        }
    }

    /// Writes the merged profile. A failure (a full disk, an unwritable directory) leaves the
    /// previous file intact and is logged once until a write succeeds again.
    pub fn write(&mut self, run: &Profile) -> Result<Profile, ProfileError> {
        let merged = self.merged(run);
        match profile::save(&merged, &self.path) {
            Ok(()) => {
                if std::mem::take(&mut self.failing) {
                    info!("checkpoint to {} written again", self.path.display());
                }
                Ok(merged)
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    error!("{e}; the previous profile there is kept, recording goes on in memory and the write is retried");
                }
                Err(e)
            }
        }
    }
}
