//! `profiler status`: a profile at a glance, for a person checking a soak or a monitor
//! polling it: what is watched and for how long, totals, when it last learned something,
//! losses, and whether its recorder is still writing.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::{
    output::{OutputFormat, duration},
    profile::{self, Profile, seen::KINDS},
};

#[derive(Debug, Serialize)]
pub struct Status {
    pub profile: String,
    pub target: String,
    pub host: String,
    pub started: String,
    pub ended: String,
    pub watched_seconds: f64,
    pub runs: u64,
    pub restarts: u64,
    /// Distinct items per kind (the profile's field names).
    pub totals: BTreeMap<&'static str, usize>,
    pub capabilities_needed: usize,
    /// When something was last seen for the first time, and how long the recording went on
    /// after that without learning anything.
    pub last_learned: Option<String>,
    pub quiet_seconds: Option<u64>,
    pub losses: BTreeMap<String, u64>,
    /// The kernel hooks the evidence came from, per kind (`recording.hooks`; capability checks
    /// from the tracepoint for profiles that do not say).
    pub hooks: BTreeMap<String, Vec<String>>,
    pub recorder: Recorder,
}

#[derive(Debug, Serialize)]
pub struct Recorder {
    /// `writing` (checkpoints arrive on time), `stale` (the recorder said it was live but its
    /// checkpoints stopped: it was killed or is stuck), or `stopped` (it finished normally).
    pub state: &'static str,
    pub checkpointed: Option<String>,
    pub checkpoint_age_seconds: Option<u64>,
    pub checkpoint_seconds: Option<u64>,
}

fn seconds_between(from: &str, to: SystemTime) -> Option<u64> {
    let from = humantime::parse_rfc3339(from).ok()?;
    Some(to.duration_since(from).unwrap_or(Duration::ZERO).as_secs())
}

pub fn status(path: &Path, profile: &Profile, now: SystemTime) -> Status {
    let mut totals: BTreeMap<&'static str, usize> = KINDS.iter().map(|k| (*k, 0)).collect();
    profile.visit_items(|kind, _, _| *totals.entry(kind).or_default() += 1);
    let rec = &profile.recording;
    let last_learned = profile.last_learned();
    let ended = humantime::parse_rfc3339(&rec.ended).ok();
    let quiet_seconds = last_learned.as_deref().zip(ended).and_then(|(l, e)| seconds_between(l, e));
    let age = rec.checkpointed.as_deref().and_then(|c| seconds_between(c, now));
    // Late by more than two intervals (and a margin for a slow disk): the recorder is gone.
    let on_time = match (age, rec.checkpoint_seconds) {
        (Some(age), Some(every)) => age <= 2 * every + 10,
        _ => false,
    };
    let state = match (rec.live, on_time) {
        (false, _) => "stopped",
        (true, true) => "writing",
        (true, false) => "stale",
    };
    Status {
        profile: path.display().to_string(),
        target: profile.target_label(),
        host: profile.host.hostname.clone(),
        started: rec.started.clone(),
        ended: rec.ended.clone(),
        watched_seconds: rec.seconds,
        runs: rec.runs,
        restarts: rec.restarts,
        totals,
        capabilities_needed: profile.capabilities.values().filter(|c| c.needed()).count(),
        last_learned,
        quiet_seconds,
        losses: profile.losses.clone(),
        hooks: {
            let mut hooks: BTreeMap<String, Vec<String>> =
                rec.hooks.iter().map(|(kind, hooks)| (kind.clone(), hooks.iter().cloned().collect())).collect();
            hooks.insert(crate::profile::CAPABILITY_HOOKS.to_string(), rec.capability_hooks().into_iter().map(str::to_string).collect());
            hooks
        },
        recorder: Recorder {
            state,
            checkpointed: rec.checkpointed.clone(),
            checkpoint_age_seconds: age,
            checkpoint_seconds: rec.checkpoint_seconds,
        },
    }
}

pub fn render_text(s: &Status) -> String {
    let mut out = String::new();
    let mut line = |label: &str, text: String| out.push_str(&format!("{label:<9} {text}\n"));
    line("profile", format!("{} ({} on {})", s.profile, s.target, s.host));
    line(
        "watched",
        format!(
            "{} over {} run(s), {} restart(s) of the service; {} .. {}",
            duration(s.watched_seconds),
            s.runs,
            s.restarts,
            s.started,
            s.ended
        ),
    );
    let totals: Vec<String> = KINDS.iter().map(|k| format!("{} {k}", s.totals[k])).collect();
    line("items", format!("{} ({} capabilities needed)", totals.join(", "), s.capabilities_needed));
    line(
        "learned",
        match (&s.last_learned, s.quiet_seconds) {
            (Some(at), Some(0)) => format!("something new at the last sample ({at})"),
            (Some(at), Some(quiet)) => format!("nothing new for {} (last new item {at})", duration(quiet as f64)),
            (Some(at), None) => format!("last new item {at}"),
            (None, _) => "no first-seen times (a profile older than version 3, or nothing seen)".into(),
        },
    );
    line(
        "losses",
        if s.losses.is_empty() { "none".into() } else { s.losses.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ") },
    );
    let hooks: Vec<String> = s.hooks.iter().map(|(kind, hooks)| format!("{kind} from {}", hooks.join(" and "))).collect();
    line("hooks", hooks.join("; "));
    let r = &s.recorder;
    let every = r.checkpoint_seconds.map_or(String::new(), |e| format!(", every {}", duration(e as f64)));
    let age = match r.checkpoint_age_seconds {
        None => "at an unknown time".into(),
        Some(0) => "just now".into(),
        Some(a) => format!("{} ago", duration(a as f64)),
    };
    line(
        "recorder",
        match r.state {
            "writing" => format!("writing: last checkpoint {age}{every}"),
            "stale" => format!("STALE: it was recording, but its last checkpoint was {age}{every}; is it still running?"),
            _ => format!("stopped: the recording ended and was written {age}"),
        },
    );
    out
}

pub fn run(path: &Path, format: OutputFormat) -> anyhow::Result<()> {
    let profile = profile::load(path)?;
    let status = status(path, &profile, SystemTime::now());
    match format {
        OutputFormat::Text => print!("{}", render_text(&status)),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{ItemUse, Seen};

    fn soak() -> Profile {
        let mut p = crate::profile::tests::sample();
        p.recording.started = "2026-11-20T08:00:00Z".into();
        p.recording.ended = "2026-11-22T11:00:00Z".into();
        p.recording.seconds = 183_600.0;
        p.recording.checkpointed = Some("2026-11-22T11:00:00Z".into());
        p.recording.checkpoint_seconds = Some(60);
        p.recording.live = true;
        let seen = Seen { first: "2026-11-20T08:00:00Z".into(), last: "2026-11-22T10:00:00Z".into(), phase: Some("start-up".into()) };
        p.families.insert("AF_UNIX".into(), ItemUse { count: 4, executables: Default::default(), seen: Some(seen), coverage: None });
        let seen = Seen { first: "2026-11-20T08:00:00Z".into(), last: "2026-11-20T08:00:00Z".into(), phase: None };
        p.syscalls.get_mut("x86_64").unwrap().get_mut("read").unwrap().seen = Some(seen);
        p
    }

    #[test]
    fn a_live_soak_that_stopped_learning_says_so() {
        let now = humantime::parse_rfc3339("2026-11-22T11:00:30Z").unwrap();
        let s = status(Path::new("nginx.json"), &soak(), now);
        assert_eq!(s.recorder.state, "writing");
        assert_eq!(s.quiet_seconds, Some(2 * 86_400 + 3 * 3_600));
        assert_eq!(s.totals["families"], 1);
        let text = render_text(&s);
        assert!(text.contains("nothing new for 2 d 3 h"), "{text}");
        assert!(text.contains("last checkpoint 30 s ago, every 1 min"), "{text}");
    }

    #[test]
    fn a_recorder_whose_checkpoints_stopped_is_stale_and_a_finished_one_stopped() {
        let late = humantime::parse_rfc3339("2026-11-22T11:05:00Z").unwrap();
        assert_eq!(status(Path::new("p"), &soak(), late).recorder.state, "stale");
        let mut done = soak();
        done.recording.live = false;
        assert_eq!(status(Path::new("p"), &done, late).recorder.state, "stopped");
    }
}
