//! Writes the profile of a running recording to its file, merged onto what the file held when
//! the recording began, so a resumed soak loses nothing and a crash loses one interval at most.

use std::path::{Path, PathBuf};

use log::{error, info};

use crate::profile::{self, Merge as _, Profile, ProfileError};

pub struct Checkpointer {
    path: PathBuf,
    /// The profile the file held when this recording started, if it resumed one.
    base: Option<Profile>,
    /// The last write failed: the file still holds the previous good profile.
    failing: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("{path} is a profile of {found}, not of {wanted}: give another -o, or move it away")]
    OtherTarget { path: PathBuf, found: String, wanted: String },
    #[error("refusing to overwrite {0}")]
    Unreadable(String, #[source] ProfileError),
}

impl Checkpointer {
    /// Opens the output: an existing profile of the same target is resumed; anything else that
    /// exists (another target's profile, a corrupt or foreign file) is refused and left as is.
    pub fn open(path: &Path, target: &Profile) -> Result<Self, ResumeError> {
        let base = if path.exists() {
            let existing = profile::load(path).map_err(|e| ResumeError::Unreadable(path.display().to_string(), e))?;
            if !existing.same_target(target) {
                return Err(ResumeError::OtherTarget { path: path.into(), found: existing.target_label(), wanted: target.target_label() });
            }
            info!(
                "resuming {}: {} s watched over {} run(s) so far; adding to it",
                path.display(),
                existing.recording.seconds.round(),
                existing.recording.runs
            );
            Some(existing)
        } else {
            None
        };
        Ok(Self { path: path.into(), base, failing: false })
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
