//! `profiler diff`: what one profile needs that the other does not, and how their drop-ins
//! differ; exits 1 when they differ.

use std::path::{Path, PathBuf};

use crate::{
    harden::{self, DropIn, Options, SyscallAction, Target},
    output::{Found, OutputFormat},
    profile::{self, Profile, compare},
    systemd::{Systemd, version::DEFAULT_SYSTEMD},
};

#[derive(Debug, Clone)]
pub struct DiffOptions {
    pub a: PathBuf,
    pub b: PathBuf,
    pub format: OutputFormat,
}

pub fn run(options: &DiffOptions) -> anyhow::Result<()> {
    let a = profile::load(&options.a)?;
    let b = profile::load(&options.b)?;
    // Both sides rendered for the same systemd, so only the profiles make them differ.
    let target = Target::systemd(DEFAULT_SYSTEMD, Systemd::default().syscall_groups()?);
    let dropin = |p: &Profile, path: &Path| -> DropIn {
        harden::render(p, &target, &Options::new(path, SyscallAction::Errno("EPERM".into()), false))
    };
    let difference = compare::compare(&a, &b, &dropin(&a, &options.a), &dropin(&b, &options.b));
    match options.format {
        OutputFormat::Text => print!("{}", compare::report(&options.a, &options.b, &difference)),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&difference)?),
    }
    if difference.is_empty() { Ok(()) } else { Err(Found("the profiles differ".into()).into()) }
}
