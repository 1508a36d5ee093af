//! Records what a systemd service does with eBPF probes on its cgroup, and condenses it into a
//! least-privilege systemd drop-in. The modules read as the pipeline:
//! `recorder` (kernel → observations) → `profile` (the model) → `harden` (profile → typed
//! drop-in) → `systemd` (install it, ask the unit's manager); `exposure` and `report` read the
//! drop-in as data; `commands` are thin entry points, `cli` parses the command line.

pub mod cli;
pub mod commands;
pub mod degradation;
pub mod exposure;
pub mod harden;
pub mod output;
pub mod profile;
pub mod recorder;
pub mod report;
pub mod systemd;
#[cfg(test)]
mod test_rng;
