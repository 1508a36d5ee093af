//! Bad input: each a clear error naming the thing, a non-zero exit, and nothing overwritten.

use profiler_tests::{is_root_or_skip, profiler};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_corrupt_or_foreign_profile_is_refused_by_generate() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("package.json");
    std::fs::write(&foreign, b"{\"name\": \"left-pad\"}").unwrap();
    let out = profiler(&["generate", foreign.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("package.json is not a profile"), "{}", stderr(&out));

    let corrupt = dir.path().join("cut.json");
    std::fs::write(&corrupt, b"{\"format\": \"systemd-service-profile\", \"version\": 1, \"targ").unwrap();
    let out = profiler(&["generate", corrupt.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cut.json is corrupt"), "{}", stderr(&out));

    let out = profiler(&["generate", dir.path().join("absent.json").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("absent.json"), "{}", stderr(&out));
}

#[test]
fn record_refuses_to_overwrite_a_file_that_is_not_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("notes.txt");
    std::fs::write(&precious, b"my notes").unwrap();
    let out = profiler(&["record", "-o", precious.to_str().unwrap(), "--", "/bin/true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refusing to overwrite"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&precious).unwrap(), b"my notes");
}

#[test]
fn a_missing_command_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("p.json");
    let out = profiler(&["record", "-o", out_file.to_str().unwrap(), "--", "no-such-command-xyz"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("command not found: no-such-command-xyz"), "{}", stderr(&out));
    assert!(!out_file.exists());
}

#[test]
fn a_kernel_without_btf_is_a_clear_error() {
    if !is_root_or_skip("a_kernel_without_btf_is_a_clear_error") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("p.json");
    let out = std::process::Command::new(profiler_tests::profiler_bin())
        .args(["record", "-o", out_file.to_str().unwrap(), "--", "/bin/true"])
        .env("PROFILER_KERNEL_BTF", "/nonexistent/vmlinux")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no BTF (/nonexistent/vmlinux is missing"), "{}", stderr(&out));
}

#[test]
fn not_root_is_a_clear_error() {
    if !is_root_or_skip("not_root_is_a_clear_error (it drops to nobody itself)") {
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(profiler_tests::profiler_bin())
        .args(["record", "-o", "/tmp/never-written.json", "--", "/bin/true"])
        .output()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("must run as root"), "{}", stderr(&out));
}

#[test]
fn hidden_kernel_symbols_refuse_to_record() {
    if !is_root_or_skip("hidden_kernel_symbols_refuse_to_record") {
        return;
    }
    // Without CAP_SYSLOG, /proc/kallsyms shows zeros: no capability check could be classified.
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("never.json");
    let out = std::process::Command::new("setpriv")
        .args(["--bounding-set=-syslog", "--inh-caps=-syslog", "--"])
        .arg(profiler_tests::profiler_bin())
        .args(["record", "-o"])
        .arg(&output)
        .args(["--", "/bin/true"])
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("CAP_SYSLOG") && stderr(&out).contains("/proc/kallsyms"), "{}", stderr(&out));
    assert!(!output.exists(), "nothing is written");
}

#[test]
fn a_cgroup_that_is_not_one_is_named() {
    if !is_root_or_skip("a_cgroup_that_is_not_one_is_named") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = profiler(&["record", "-o", "/tmp/never.json", "--cgroup", dir.path().to_str().unwrap(), "--duration", "1s"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not a cgroup2 directory"), "{}", stderr(&out));
}

#[test]
fn record_refuses_a_corrupt_profile_or_another_targets_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.json");
    let text = b"{\"format\": \"systemd-service-profile\", \"version\": 3, \"targ";
    std::fs::write(&cut, text).unwrap();
    let out = profiler(&["record", "-o", cut.to_str().unwrap(), "--", "/bin/true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refusing to overwrite") && stderr(&out).contains("cut.json is corrupt"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&cut).unwrap(), text);

    // A sound profile of another target is not resumed into.
    let other = dir.path().join("other.json");
    let mut profile = profiler::profile::Profile { format: profiler::profile::FORMAT.into(), version: 3, ..Default::default() };
    profile.target.command = Some(vec!["/usr/sbin/nginx".into()]);
    profiler::profile::save(&profile, &other).unwrap();
    let before = std::fs::read(&other).unwrap();
    let out = profiler(&["record", "-o", other.to_str().unwrap(), "--", "/bin/true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is a profile of /usr/sbin/nginx, not of /bin/true"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&other).unwrap(), before);
}
