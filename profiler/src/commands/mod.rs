//! One module per subcommand.
pub mod apply;
pub mod check;
pub mod generate;
pub mod record;
pub mod status;
