//! `profiler report`: write a profile's review report (HTML, or Markdown) with its drop-in and
//! the exposure score before and after it.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::{
    harden::unit::UnitSecurity,
    harden::{self, Options},
    profile,
    report::{self, ExposureView},
    systemd::{Systemd, analyze, target::TargetSpec},
};

#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub profile: PathBuf,
    pub output: PathBuf,
    pub markdown: bool,
    /// The systemd whose systemd-analyze gives its own verdict.
    pub systemd: Systemd,
    pub target: TargetSpec,
    pub dropin: Options,
}

pub fn run(options: &ReportOptions) -> anyhow::Result<()> {
    let profile = profile::load(&options.profile)?;
    let target = options.target.resolve()?;
    let dropin = harden::render(&profile, &target, &options.dropin);
    // "Before" is the unit's settings when given, else a unit that sets none of them.
    let (unit, basis) = match &options.target.unit_settings {
        Some(path) => (UnitSecurity::from_show(&target.unit), format!("the unit's settings in {}", path.display())),
        None => (UnitSecurity::unset(), "a unit that sets none of them (--unit-settings gives the unit's own)".to_string()),
    };
    // systemd-analyze is asked only where the profiled unit is loaded.
    let verdicts = match &profile.target.unit {
        Some(name) => analyze::verdicts(&options.systemd, name, &dropin),
        None => Err("the profile is not of a systemd unit".to_string()),
    };
    let exposure = ExposureView::new(&unit, basis, &dropin, &target, verdicts);
    let text = report::render(&profile, &dropin, exposure, options.markdown);
    profile::write_atomically(&options.output, text.as_bytes()).with_context(|| format!("writing {}", options.output.display()))?;
    println!("report written to {}", options.output.display());
    Ok(())
}
