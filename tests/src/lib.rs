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

/// Whether root-only tests can run; when not, the test is skipped (see `skip`) and returns.
pub fn is_root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip(test, "loading eBPF programs needs root");
    }
    root
}

/// Marks `test` as skipped: `SKIPPED: reason` on stderr and a line in the file named by
/// PROFILER_SKIP_LOG, which `cargo xtask test` counts as skipped, never as passed. Under
/// CI=true nothing may be skipped (CI has root, the testbed and every hook): it panics.
pub fn skip(test: &str, reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("SKIPPED: {test}: {reason}; under CI=true a skipped test is a failure");
    }
    eprintln!("SKIPPED: {test}: {reason}");
    if let Some(log) = std::env::var_os("PROFILER_SKIP_LOG") {
        use std::io::Write as _;
        // One write of the whole line: tests run in parallel, and O_APPEND keeps it whole.
        let line = format!("{test}: {reason}\n");
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log);
        if let Err(e) = file.and_then(|mut f| f.write_all(line.as_bytes())) {
            panic!("cannot note the skip of {test} in {}: {e}", Path::new(&log).display());
        }
    }
}

/// Runs the profiler with these arguments and returns its output.
pub fn profiler(args: &[&str]) -> Output {
    Command::new(profiler_bin()).args(args).output().expect("run profiler")
}

/// `profiler record -o DIR/profile.json -- CMD...`, asserting success; the profile's path.
fn record_into(dir: &Path, cmd: &[&str]) -> PathBuf {
    let out = dir.join("profile.json");
    let out_str = out.to_str().expect("utf-8 temp path");
    let mut args = vec!["record", "-o", out_str, "--"];
    args.extend_from_slice(cmd);
    let output = profiler(&args);
    assert!(output.status.success(), "record failed: {}", String::from_utf8_lossy(&output.stderr));
    out
}

/// `profiler record -o TMP -- CMD...`, asserting success, returning the profile.
pub fn record_command(cmd: &[&str]) -> Profile {
    let dir = tempfile::tempdir().expect("tempdir");
    profiler::profile::load(&record_into(dir.path(), cmd)).expect("profile written")
}

/// As `record_command`, and the drop-in `generate --systemd-version 252` writes for it.
pub fn record_and_generate(cmd: &[&str]) -> (Profile, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = record_into(dir.path(), cmd);
    let generated = profiler(&["generate", "--systemd-version", "252", out.to_str().expect("utf-8 temp path")]);
    assert!(generated.status.success(), "generate failed: {}", String::from_utf8_lossy(&generated.stderr));
    (profiler::profile::load(&out).expect("profile written"), String::from_utf8(generated.stdout).expect("a UTF-8 drop-in"))
}

/// The directive lines of a drop-in that start with `key`.
pub fn lines_of<'a>(dropin: &'a str, key: &str) -> Vec<&'a str> {
    dropin.lines().filter(|l| l.starts_with(key)).collect()
}

/// Whether any ABI recorded this syscall.
pub fn has_syscall(profile: &Profile, name: &str) -> bool {
    profile.syscalls.values().any(|calls| calls.contains_key(name))
}

/// Capabilities the profile says were needed.
pub fn needed_capabilities(profile: &Profile) -> Vec<&str> {
    profile.capabilities.iter().filter(|(_, c)| c.needed()).map(|(n, _)| n.as_str()).collect()
}

/// Notes that a hook (a capability hook by its name, a syscall hook as `syscalls NAME`) was
/// attached and checked by a test: a line in the file named by PROFILER_HOOK_LOG, which
/// `cargo xtask test` reads to require that every hook ran on some kernel of the matrix.
pub fn note_hook_exercised(hook: &str) {
    eprintln!("capability hook exercised: {hook}");
    if let Some(log) = std::env::var_os("PROFILER_HOOK_LOG") {
        use std::io::Write as _;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log);
        if let Err(e) = file.and_then(|mut f| f.write_all(format!("{hook}\n").as_bytes())) {
            panic!("cannot note the hook {hook} in {}: {e}", Path::new(&log).display());
        }
    }
}
