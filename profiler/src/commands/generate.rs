//! `profiler generate`: render a profile's drop-in to stdout or a file.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::{
    harden::{self, Options},
    output::print_stdout,
    profile,
    systemd::target::TargetSpec,
};

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub profile: PathBuf,
    pub output: Option<PathBuf>,
    pub target: TargetSpec,
    pub dropin: Options,
}

pub fn run(options: &GenerateOptions) -> anyhow::Result<()> {
    let profile = profile::load(&options.profile)?;
    let dropin = harden::render(&profile, &options.target.resolve()?, &options.dropin).to_string();
    match &options.output {
        Some(path) => profile::write_atomically(path, dropin.as_bytes()).with_context(|| format!("writing {}", path.display()))?,
        None => print_stdout(&dropin).context("writing the drop-in to stdout")?,
    }
    Ok(())
}
