//! `profiler generate`: render a profile's drop-in to stdout or a file.

use std::{io::Write as _, path::PathBuf};

use anyhow::Context as _;

use crate::{
    harden::{self, Options, SyscallAction, syscall_groups::SyscallGroups},
    profile,
};

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub profile: PathBuf,
    pub output: Option<PathBuf>,
    /// Where syscall groups come from; `None` asks this host's systemd, then falls back to
    /// the newest built-in table.
    pub groups: GroupSource,
    pub syscall_action: SyscallAction,
}

#[derive(Debug, Clone)]
pub enum GroupSource {
    Host,
    Builtin(String),
    File(PathBuf),
}

pub fn run(options: &GenerateOptions) -> anyhow::Result<()> {
    let profile = profile::load(&options.profile)?;
    let groups = match &options.groups {
        GroupSource::Builtin(version) => SyscallGroups::builtin(version)?,
        GroupSource::File(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading syscall groups from {}", path.display()))?;
            SyscallGroups::parse(&text, &format!("listing in {}", path.display()))?
        }
        GroupSource::Host => SyscallGroups::from_host().or_else(|e| {
            log::warn!("{e}; using the built-in table of the newest known systemd");
            SyscallGroups::newest_builtin()
        })?,
    };
    let name = options.profile.file_name().map_or_else(|| options.profile.display().to_string(), |n| n.to_string_lossy().into_owned());
    let dropin = harden::render(&profile, &groups, &Options { syscall_action: options.syscall_action.clone(), profile_name: name });
    match &options.output {
        Some(path) => profile::write_atomically(path, dropin.as_bytes()).with_context(|| format!("writing {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout.write_all(dropin.as_bytes()).and_then(|()| stdout.flush()) {
                // A closed pipe (`| head`) is not a failure.
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("writing the drop-in to stdout");
                }
            }
        }
    }
    Ok(())
}
