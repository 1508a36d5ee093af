//! Records what a systemd service does (syscalls, capability checks) with eBPF probes on its
//! cgroup, and condenses it into a least-privilege systemd drop-in.

pub mod btf;
pub mod cgroup;
pub mod checkpoint;
pub mod cli;
pub mod collector;
pub mod commands;
pub mod exposure;
pub mod harden;
pub mod kernel_stack;
pub mod loader;
pub mod names;
pub mod path_events;
pub mod path_text;
pub mod profile;
pub mod timeline;
pub mod tracefs;
pub mod unit;
