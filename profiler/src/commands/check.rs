//! `profiler check`: record the hardened unit like `record`, then compare it with its
//! baseline profile and report every sign that hardening changed what it does.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;

use crate::{
    degradation,
    output::{Found, OutputFormat},
    profile,
    recorder::session::{self, RecordOptions, Subject},
    systemd::{Systemd, unit::properties},
};

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub unit: String,
    pub systemd: Systemd,
    pub baseline: PathBuf,
    /// Where the hardened run's profile goes; a temporary file when `None`.
    pub output: Option<PathBuf>,
    pub duration: Option<Duration>,
    pub format: OutputFormat,
}

pub fn run(options: &CheckOptions) -> anyhow::Result<()> {
    let baseline = profile::load(&options.baseline)?;
    options.systemd.loaded(&options.unit)?;
    let settings = properties(&options.systemd.systemctl_ok(&["show", "-p", degradation::SETTINGS, "--", &options.unit])?);
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let output = options.output.clone().unwrap_or_else(|| scratch.path().join("hardened.json"));
    session::record(&RecordOptions {
        subject: Subject::Unit { name: options.unit.clone(), systemd: options.systemd },
        output: output.clone(),
        duration: options.duration,
        checkpoint: Duration::from_secs(60),
    })?;
    let hardened = profile::load(&output)?;
    let findings = degradation::compare(&baseline, &hardened, &settings);
    match options.format {
        OutputFormat::Text => print!("{}", degradation::report(&options.unit, &baseline, &hardened, &findings)),
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "unit": options.unit,
                "baseline": options.baseline,
                "baseline_seconds": baseline.recording.seconds,
                "hardened_seconds": hardened.recording.seconds,
                "findings": findings.findings,
                "findings_counted": findings.count(),
                "info": findings.info,
                "refused": degradation::refusals(&hardened),
            });
            println!("{}", serde_json::to_string_pretty(&doc).context("serialising the findings")?);
        }
    }
    // Exit 1 on findings, so a rollout can be gated on it.
    if findings.is_empty() { Ok(()) } else { Err(Found(format!("{} finding(s)", findings.count())).into()) }
}
