//! Root tests of long recordings: checkpoints survive a kill -9 of the recorder and a full
//! file system, and a new recording resumes onto the old profile without losing anything.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use profiler_tests::{Profile, is_root_or_skip, profiler_bin};

/// `profiler record --checkpoint 1s -o OUT -- sh -c SCRIPT` in the background.
fn start(out: &Path, script: &str) -> Child {
    Command::new(profiler_bin())
        .args(["record", "--checkpoint", "1s", "-o", out.to_str().unwrap(), "--", "sh", "-c", script])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the profile at `out` is readable and `done` holds for it.
fn wait_for(out: &Path, what: &str, done: impl Fn(&Profile) -> bool) -> Profile {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(p) = profiler::profile::load(out)
            && done(&p)
        {
            return p;
        }
        assert!(Instant::now() < deadline, "no checkpoint with {what} in {}", out.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn has_path(p: &Profile, path: &Path) -> bool {
    p.paths.contains_key(path.to_str().unwrap())
}

/// The command's processes, left behind in the recorder's cgroup when it is killed.
fn kill_cgroup_of(recorder: u32) {
    let root = profiler::recorder::cgroup::cgroup2_root().expect("a cgroup2 mount");
    let cgroup = root.join(format!("profiler-record-{recorder}"));
    if let Ok(pids) = std::fs::read_to_string(cgroup.join("cgroup.procs")) {
        for pid in pids.lines().filter_map(|l| l.parse::<i32>().ok()) {
            // SAFETY: signalling processes this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = std::fs::remove_dir(&cgroup);
}

#[test]
fn a_killed_recorder_loses_nothing_checkpointed_and_the_next_run_resumes() {
    if !is_root_or_skip("a_killed_recorder_loses_nothing_checkpointed_and_the_next_run_resumes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("soak.json");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    // The first run makes `first` and chowns it (CAP_CHOWN), then idles; the second run,
    // seeing `first`, makes `second` only.
    let d = dir.path().to_str().unwrap();
    let script = format!("if [ -e {d}/first ]; then mkdir {d}/second; else mkdir {d}/first; chown nobody {d}/first; exec sleep 60; fi");

    let mut recorder = start(&out, &script);
    let checkpointed = wait_for(&out, "the first mkdir", |p| has_path(p, &first) && p.capabilities.contains_key("CAP_CHOWN"));
    assert!(checkpointed.recording.live);
    recorder.kill().unwrap();
    recorder.wait().unwrap();
    kill_cgroup_of(recorder.id());

    // What the last checkpoint held is all there, in a valid file that says it was live.
    let left = profiler::profile::load(&out).unwrap();
    assert!(has_path(&left, &first) && left.capabilities["CAP_CHOWN"].needed());
    let status = Command::new(profiler_bin()).args(["status", "--format", "json", out.to_str().unwrap()]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["recorder"]["checkpoint_seconds"], 1);

    // Resume: the same command line again, into the same file.
    let resumed = start(&out, &script).wait_with_output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("resuming"), "{}", String::from_utf8_lossy(&resumed.stderr));
    let merged = profiler::profile::load(&out).unwrap();
    assert!(has_path(&merged, &first), "the killed run's path survived the resume: {:?}", merged.paths.keys());
    assert!(has_path(&merged, &second), "the resumed run's path is there: {:?}", merged.paths.keys());
    assert!(merged.capabilities["CAP_CHOWN"].needed(), "only the first run chowned");
    assert_eq!(merged.recording.runs, 2);
    assert!(!merged.recording.live);
    let first_seen = &merged.paths[first.to_str().unwrap()].seen.as_ref().unwrap().first;
    let second_seen = &merged.paths[second.to_str().unwrap()].seen.as_ref().unwrap().first;
    assert!(first_seen <= second_seen, "{first_seen} {second_seen}");
}

/// A small tmpfs, unmounted when dropped.
struct SmallFs(tempfile::TempDir);

impl SmallFs {
    fn mount(kib: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "profiler-test", dir.path().to_str().unwrap()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs");
        Self(dir)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Fills the file system holding `dir` with one file, until the write fails.
fn fill(dir: &Path) -> std::path::PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    filler
}

#[test]
fn a_full_file_system_keeps_the_last_good_profile_and_recording_goes_on() {
    if !is_root_or_skip("a_full_file_system_keeps_the_last_good_profile_and_recording_goes_on") {
        return;
    }
    let fs = SmallFs::mount(512);
    let out = fs.0.path().join("p.json");
    let work = tempfile::tempdir().unwrap();
    let (early, late) = (work.path().join("early"), work.path().join("late"));
    let w = work.path().to_str().unwrap();
    // `late` is made once the test lets it (when it removes `gate`), after the disk filled.
    let script = format!("mkdir {w}/early; touch {w}/gate; while [ -e {w}/gate ]; do sleep 0.2; done; mkdir {w}/late; sleep 2");
    let recorder = start(&out, &script);
    let good = wait_for(&out, "the early mkdir", |p| has_path(p, &early));

    let filler = fill(fs.0.path());
    std::thread::sleep(Duration::from_secs(3));
    // Checkpoints failed meanwhile; the file is still the last good one.
    let kept = profiler::profile::load(&out).expect("the last good profile is intact");
    assert!(has_path(&kept, &early) && !has_path(&kept, &late));
    assert!(kept.recording.ended >= good.recording.ended);
    std::fs::remove_file(work.path().join("gate")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    std::fs::remove_file(filler).unwrap();

    let done = recorder.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("No space left on device") && stderr.contains("previous profile there is kept"), "{stderr}");
    assert!(stderr.contains("written again"), "{stderr}");
    let last = profiler::profile::load(&out).unwrap();
    assert!(has_path(&last, &early) && has_path(&last, &late), "{:?}", last.paths.keys());
    let leftovers: Vec<_> = std::fs::read_dir(fs.0.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["p.json"], "no temporary file is left behind");
}

#[test]
fn a_second_recorder_on_the_same_file_is_refused_with_the_holders_pid() {
    if !is_root_or_skip("a_second_recorder_on_the_same_file_is_refused_with_the_holders_pid") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("one.json");
    let mut first = start(&out, "exec sleep 60");
    wait_for(&out, "a first checkpoint", |p| p.recording.live);
    // The same file, named another way: the lock is on the file, not on the spelling.
    let other_spelling = dir.path().join(".").join("one.json");
    let second = start(&other_spelling, "exec sleep 60").wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("another recorder (pid {}) is writing", first.id())), "{stderr}");
    let kept = profiler::profile::load(&out).unwrap();
    assert!(kept.recording.live, "the first recorder's file is untouched");
    first.kill().unwrap();
    first.wait().unwrap();
    kill_cgroup_of(first.id());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing but the profile beside it");
}

#[test]
fn a_map_read_that_fails_is_retried_not_the_end_of_the_recording() {
    if !is_root_or_skip("a_map_read_that_fails_is_retried_not_the_end_of_the_recording") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("retried.json");
    let made = dir.path().join("made");
    let script = format!("sleep 4; mkdir {}; sleep 4", made.display());
    let recorded = Command::new(profiler_bin())
        .args(["record", "--checkpoint", "1s", "-o", out.to_str().unwrap(), "--", "sh", "-c", &script])
        .env("PROFILER_INJECT_MAP_READ_ERRORS", "3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&recorded.stderr);
    assert!(recorded.status.success(), "{stderr}");
    assert!(stderr.contains("the read is retried") && stderr.contains("the kernel maps are read again"), "{stderr}");
    let profile = profiler::profile::load(&out).unwrap();
    assert!(has_path(&profile, &made), "{:?}", profile.paths.keys());
}
