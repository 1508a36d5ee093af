//! Talking to systemd (I/O): units and `systemctl show`, the manager's version and features,
//! the drop-in file `apply` installs, and systemd-analyze's own verdicts.

pub mod analyze;
pub mod bus;
pub mod dropin_file;
pub mod journal;
pub mod target;
pub mod unit;
pub mod version;

pub use unit::{Systemd, UnitError, UnitState};
pub use version::SystemdVersion;
