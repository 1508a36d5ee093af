//! Helpers shared by the integration and end-to-end tests.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

pub use profiler::profile::Profile;

/// The profiler binary under test (set by `cargo xtask test`).
pub fn profiler_bin() -> PathBuf {
    let path = std::env::var_os("PROFILER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/profiler"));
    assert!(path.is_file(), "{} is missing: run the tests with `cargo xtask test`", path.display());
    path
}

/// Whether root-only tests can run; when not, says why on stderr (the test then returns).
pub fn is_root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED {test}: loading eBPF programs needs root");
    }
    root
}

/// Runs the profiler with these arguments and returns its output.
pub fn profiler(args: &[&str]) -> Output {
    Command::new(profiler_bin()).args(args).output().expect("run profiler")
}

/// `profiler record -o TMP -- CMD...`, asserting success, returning the profile.
pub fn record_command(cmd: &[&str]) -> Profile {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("profile.json");
    let out_str = out.to_str().expect("utf-8 temp path");
    let mut args = vec!["record", "-o", out_str, "--"];
    args.extend_from_slice(cmd);
    let output = profiler(&args);
    assert!(output.status.success(), "record failed: {}", String::from_utf8_lossy(&output.stderr));
    profiler::profile::load(&out).expect("profile written")
}

/// Whether any ABI recorded this syscall.
pub fn has_syscall(profile: &Profile, name: &str) -> bool {
    profile.syscalls.values().any(|calls| calls.contains_key(name))
}

/// Capabilities the profile says were needed.
pub fn needed_capabilities(profile: &Profile) -> Vec<&str> {
    profile.capabilities.iter().filter(|(_, c)| c.needed()).map(|(n, _)| n.as_str()).collect()
}
