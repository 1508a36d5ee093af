//! One module per subcommand.

/// A command that compares found a difference: it has printed what; the process exits 1, as
/// diff(1) does, so scripts and CI can gate on it (errors exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Found(pub String);
pub mod apply;
pub mod check;
pub mod diff;
pub mod generate;
pub mod merge;
pub mod record;
pub mod report;
pub mod status;
