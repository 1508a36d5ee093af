//! One thin module per subcommand: its options, the calls into the library, its output.
//! No command imports another; what two of them share lives in the library.

pub mod apply;
pub mod check;
pub mod diff;
pub mod floor;
pub mod generate;
pub mod merge;
pub mod record;
pub mod report;
pub mod status;
