//! From the kernel to observations (Linux, root): load and attach the probes, read their maps
//! and ring buffer into a `Profile`, follow the unit's cgroup, and checkpoint as it goes.

pub mod btf;
pub mod cgroup;
pub mod checkpoint;
pub mod collect;
pub mod exec_helpers;
pub mod hooks;
pub mod kernel_stack;
pub mod path_log;
pub mod probes;
pub mod session;
pub mod timeline;
pub mod tracefs;
