//! `profiler record`: watch a command, a unit or a cgroup until it ends or is interrupted, then
//! write the profile and say what it holds.

use std::{io::Write as _, path::Path};

use crate::{
    profile::Profile,
    recorder::session::{self, RecordOptions},
};

pub fn run(options: &RecordOptions) -> anyhow::Result<()> {
    let written = session::record(options)?;
    summarise(&written, &options.output);
    Ok(())
}

fn summarise(profile: &Profile, output: &Path) {
    let needed = profile.capabilities.values().filter(|c| c.needed()).count();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "profile written to {}: {} syscalls, {} capabilities needed, {} executables in {:.1} s{}",
        output.display(),
        profile.syscall_names().len(),
        needed,
        profile.executables.len(),
        profile.recording.seconds,
        if profile.losses.is_empty() { String::new() } else { format!("; LOST records: {:?}", profile.losses) },
    );
}
