//! `profiler merge`: the union of profiles of one service across hosts and runs, keeping for
//! every item on how many of them it was seen (its coverage, "3 of 5").

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::profile::{self, merge_all};

#[derive(Debug, Clone)]
pub struct MergeOptions {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    /// Merge profiles of different services too.
    pub any_target: bool,
}

pub fn run(options: &MergeOptions) -> anyhow::Result<()> {
    if options.inputs.len() < 2 {
        bail!("merge needs two profiles or more");
    }
    let mut profiles = Vec::new();
    for path in &options.inputs {
        profiles.push((path, profile::load(path)?));
    }
    let (first_path, first) = &profiles[0];
    for (path, other) in &profiles[1..] {
        if !options.any_target && !first.same_target(other) {
            bail!(
                "{} is a profile of {}, but {} is one of {}: merging them would mix two services' needs \
                 (--any-target merges them anyway)",
                path.display(),
                other.target_label(),
                first_path.display(),
                first.target_label()
            );
        }
    }
    let merged = merge_all(profiles.into_iter().map(|(_, p)| p)).context("nothing to merge")?;
    profile::save(&merged, &options.output)?;
    let inputs = merged.recording.inputs.unwrap_or(1);
    let (mut items, mut everywhere) = (0, 0);
    merged.visit_items(|_, _, item| {
        items += 1;
        everywhere += u32::from(item.coverage() == inputs);
    });
    println!(
        "merged {inputs} profiles ({}) into {}: {items} items, {everywhere} of them seen in all {inputs}",
        merged.recording.hosts.iter().cloned().collect::<Vec<_>>().join(", "),
        options.output.display()
    );
    Ok(())
}
