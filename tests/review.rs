//! Profiles as review artefacts, on real recordings of the integration workloads: `diff` and
//! `merge` with exact expectations, and the published JSON Schema against what `record` and
//! `merge` write and against profiles checked in from older profilers.

use std::path::{Path, PathBuf};

use profiler_tests::{is_root_or_skip, profiler};
use serde_json::Value;

const WORKLOAD: &str = env!("CARGO_BIN_EXE_workload");

/// Records `workload ARGS` into DIR/NAME.json and returns the path.
fn record(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    let mut cmd = vec!["record", "-o", path.to_str().unwrap(), "--", WORKLOAD];
    cmd.extend_from_slice(args);
    let out = profiler(&cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

fn names<'a>(value: &'a Value, side: &str, kind: &str) -> Vec<&'a str> {
    value[side][kind].as_array().map_or_else(Vec::new, |items| items.iter().filter_map(|i| i["name"].as_str()).collect())
}

#[test]
fn diff_tells_what_each_recording_needs_that_the_other_does_not() {
    if !is_root_or_skip("diff_tells_what_each_recording_needs_that_the_other_does_not") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let chown = record(dir.path(), "chown", &["chown", file.to_str().unwrap()]);
    let raw = record(dir.path(), "raw", &["raw-icmp"]);

    let out = profiler(&["diff", chown.to_str().unwrap(), raw.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&d, "added", "capabilities"), ["CAP_NET_RAW"]);
    assert_eq!(names(&d, "removed", "capabilities"), ["CAP_CHOWN"]);
    assert_eq!(names(&d, "added", "syscalls"), ["x86_64:socket"], "{d}");
    assert_eq!(names(&d, "removed", "syscalls"), ["x86_64:chown"], "{d}");
    assert_eq!(names(&d, "added", "families"), ["AF_INET"], "{d}");
    // Each run's own /proc/PID is not a difference; the chowned file is.
    assert_eq!(names(&d, "added", "paths"), Vec::<&str>::new(), "{d}");
    assert_eq!(names(&d, "removed", "paths"), [file.to_str().unwrap()], "{d}");
    let kinds: Vec<&String> = d["added"].as_object().unwrap().keys().chain(d["removed"].as_object().unwrap().keys()).collect();
    assert_eq!(kinds, ["capabilities", "families", "syscalls", "capabilities", "paths", "syscalls"], "{d}");
    let executables = &d["added"]["capabilities"][0]["executables"];
    assert_eq!(executables, &serde_json::json!([WORKLOAD]));
    // The drop-ins differ in their capability line.
    let added: Vec<&str> = d["dropin_added"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(added.contains(&"CapabilityBoundingSet=CAP_NET_RAW"), "{added:?}");

    // A recording against itself differs in nothing; the text form says so.
    let out = profiler(&["diff", chown.to_str().unwrap(), chown.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("need the same"));
}

#[test]
fn merge_keeps_how_many_recordings_saw_each_item() {
    if !is_root_or_skip("merge_keeps_how_many_recordings_saw_each_item") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let one = record(dir.path(), "one", &["chown", file.to_str().unwrap()]);
    let two = record(dir.path(), "two", &["chown", file.to_str().unwrap()]);
    let raw = record(dir.path(), "raw", &["raw-icmp"]);
    let merged = dir.path().join("merged.json");

    // Two services' profiles are not merged unless asked.
    let out = profiler(&["merge", one.to_str().unwrap(), raw.to_str().unwrap(), "-o", merged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("merging them would mix two services' needs"));
    assert!(!merged.exists());

    let out = profiler(&["merge", one.to_str().unwrap(), two.to_str().unwrap(), "-o", merged.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = profiler::profile::load(&merged).unwrap();
    let (a, b) = (profiler::profile::load(&one).unwrap(), profiler::profile::load(&two).unwrap());
    assert_eq!(m.recording.inputs, Some(2));
    assert_eq!(m.capabilities["CAP_CHOWN"].coverage, Some(2));
    assert_eq!(m.capabilities["CAP_CHOWN"].granted, a.capabilities["CAP_CHOWN"].granted + b.capabilities["CAP_CHOWN"].granted);
    let first = |p: &profiler::profile::Profile| p.capabilities["CAP_CHOWN"].seen.clone().unwrap().first;
    assert_eq!(m.capabilities["CAP_CHOWN"].seen.clone().unwrap().first, first(&a).min(first(&b)));

    let out = profiler(&["merge", "--any-target", merged.to_str().unwrap(), raw.to_str().unwrap(), "-o", merged.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = profiler::profile::load(&merged).unwrap();
    assert_eq!(m.recording.inputs, Some(3));
    assert_eq!(m.capabilities["CAP_CHOWN"].coverage, Some(2));
    assert_eq!(m.capabilities["CAP_NET_RAW"].coverage, Some(1));
    assert_eq!(m.syscalls["x86_64"]["execve"].coverage, Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("merged 3 profiles"));
}

/// The text of the element with this id in a serialised DOM, unescaped.
fn element_text(dom: &str, open: &str) -> Option<String> {
    let start = dom.find(open)? + open.len();
    let end = start + dom[start..].find("</")?;
    Some(dom[start..end].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&"))
}

/// The HTML report opened in headless Chromium: it renders, the plot is there, and the drop-in
/// in it is `generate`'s, byte for byte; the Markdown variant carries the same drop-in.
#[test]
fn the_report_renders_in_chromium_with_the_plot_and_generates_dropin() {
    if !is_root_or_skip("the_report_renders_in_chromium_with_the_plot_and_generates_dropin") {
        return;
    }
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists()) else {
        eprintln!("SKIPPED the_report_renders_in_chromium_with_the_plot_and_generates_dropin: no chromium (cargo xtask test installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let profile = record(dir.path(), "chown", &["chown", file.to_str().unwrap()]);
    let out = profiler(&["generate", "--systemd-version", "252", profile.to_str().unwrap()]);
    assert!(out.status.success());
    let dropin = String::from_utf8(out.stdout).unwrap();
    let html = dir.path().join("report.html");
    let md = dir.path().join("report.md");
    for (path, extra) in [(&html, None), (&md, Some("--markdown"))] {
        let mut args = vec!["report", profile.to_str().unwrap(), "-o", path.to_str().unwrap(), "--systemd-version", "252"];
        args.extend(extra);
        let out = profiler(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    let url = format!("file://{}", html.display());
    let headless = |extra: &[&str]| {
        std::process::Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1200,2400"])
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium")
    };
    let dump = headless(&["--dump-dom"]);
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dom = String::from_utf8_lossy(&dump.stdout);
    assert!(dom.contains("<svg id=\"convergence\"") && dom.contains("<polyline"), "no plot in the rendered page");
    assert_eq!(element_text(&dom, "<pre id=\"dropin\">").as_deref(), Some(dropin.as_str()));
    assert!(dom.contains("CAP_CHOWN"));
    // Without --unit-settings, before is a unit that sets nothing: systemd-analyze's 9.6 for
    // such a unit (tests/e2e_systemd.rs checks the scores against systemd-analyze itself).
    let before = element_text(&dom, "<td id=\"exposure-before\">").unwrap();
    let after = element_text(&dom, "<td id=\"exposure-after\">").unwrap();
    assert_eq!(before, "9.6 UNSAFE");
    let score = |label: &str| label.split_whitespace().next().unwrap().parse::<f64>().unwrap();
    assert!(score(&after) < 3.0, "the drop-in of a chown recording leaves {after}");
    assert!(
        element_text(&dom, "<td id=\"systemd-analyze-before\" colspan=\"2\">")
            .unwrap()
            .starts_with("not available: the profile is not of a systemd unit")
    );

    // A screenshot, kept in cargo's scratch directory for tests, out of the repository.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let out = headless(&[&format!("--screenshot={}", shot.display())]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a blank or missing screenshot ({} bytes)", png.len());
    eprintln!("screenshot: {}", shot.display());

    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains(&format!("```ini\n{dropin}```")), "the Markdown drop-in differs");
    assert!(markdown.contains(&format!("| scored here | {before} | {after} |")), "the Markdown exposure differs");
}

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/profile-v5.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn assert_valid(validator: &jsonschema::Validator, path: &Path) {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{} does not match the schema: {errors:#?}", path.display());
}

#[test]
fn what_record_and_merge_write_matches_the_published_schema() {
    if !is_root_or_skip("what_record_and_merge_write_matches_the_published_schema") {
        return;
    }
    let validator = schema();
    let dir = tempfile::tempdir().unwrap();
    let errors = record(dir.path(), "errors", &["errors"]);
    let setns = record(dir.path(), "setns", &["setns-net"]);
    let merged = dir.path().join("merged.json");
    let out = profiler(&["merge", "--any-target", errors.to_str().unwrap(), setns.to_str().unwrap(), "-o", merged.to_str().unwrap()]);
    assert!(out.status.success());
    for path in [&errors, &setns, &merged] {
        assert_valid(&validator, path);
    }
    // The schema is strict: a field it does not know is an error.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&errors).unwrap()).unwrap();
    doc["recording"]["surprise"] = Value::Bool(true);
    assert!(!validator.is_valid(&doc));
}

/// Profiles written by earlier profilers (tests/fixtures), read by this one: they match the
/// schema, load, and give a drop-in.
#[test]
fn profiles_from_older_profilers_still_load() {
    let validator = schema();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        assert_valid(&validator, &path);
        let profile = profiler::profile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen.push(profile.version);
        let out = profiler(&["generate", "--systemd-version", "252", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("SystemCallFilter="));
    }
    seen.sort();
    assert_eq!(seen, [1, 3], "the fixtures are one profile of version 1 and one of version 3");
}
