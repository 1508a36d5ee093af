//! One module per subcommand.
pub mod generate;
pub mod record;
pub mod status;
