//! Stamps when each item was first and last seen, as successive samples of the kernel maps
//! arrive during a recording, and names the unit's phase at the time.

use std::collections::HashMap;

use crate::profile::{Profile, Seen};

/// What the recorder remembers of each item between samples: its activity when last sampled
/// and its sightings. Grows with what is distinct, never with what is repeated.
#[derive(Debug, Default)]
pub struct Timeline {
    known: HashMap<(&'static str, String), (u64, Seen)>,
}

impl Timeline {
    /// Stamps every item of `sample` (a whole recording's observations so far): one not seen
    /// before is first seen `now`, in `phase`; one whose activity grew is last seen `now`.
    /// Returns how many items were new.
    pub fn stamp(&mut self, sample: &mut Profile, now: &str, phase: Option<&str>) -> usize {
        let mut new = 0;
        sample.visit_items_mut(|kind, key, item| {
            let activity = item.activity();
            let entry = self.known.entry((kind, key.to_string())).or_insert_with(|| {
                new += 1;
                (activity, Seen { first: now.to_string(), last: now.to_string(), phase: phase.map(str::to_string) })
            });
            if activity > entry.0 {
                entry.0 = activity;
                entry.1.last = now.to_string();
            }
            *item.seen_mut() = Some(entry.1.clone());
        });
        new
    }
}

/// The phase a unit is in, from systemd's ActiveState.
pub fn phase_of(active_state: &str) -> &'static str {
    match active_state {
        "activating" => "start-up",
        "reloading" => "reload",
        "deactivating" | "inactive" | "failed" => "stop",
        _ => "steady",
    }
}

/// Of the phases seen since the last sample, the one new items are put in: a transient phase
/// wins over `steady`, since what it needed is what would break if it were taken away.
pub fn dominant<'a>(phases: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let rank = |p: &str| match p {
        "start-up" => 3,
        "reload" => 2,
        "stop" => 1,
        _ => 0,
    };
    phases.into_iter().max_by_key(|p| rank(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ItemUse;

    #[test]
    fn new_items_are_first_seen_once_and_last_seen_when_done_again() {
        let mut timeline = Timeline::default();
        let mut sample = Profile::default();
        sample.families.insert("AF_INET".into(), ItemUse { count: 1, ..Default::default() });
        assert_eq!(timeline.stamp(&mut sample, "2026-11-22T08:00:00Z", Some("start-up")), 1);

        sample.families.get_mut("AF_INET").unwrap().count = 5;
        sample.families.insert("AF_UNIX".into(), ItemUse { count: 1, ..Default::default() });
        assert_eq!(timeline.stamp(&mut sample, "2026-11-22T08:00:05Z", Some("steady")), 1);
        let inet = sample.families["AF_INET"].seen.clone().unwrap();
        assert_eq!(
            (inet.first.as_str(), inet.last.as_str(), inet.phase.as_deref()),
            ("2026-11-22T08:00:00Z", "2026-11-22T08:00:05Z", Some("start-up"))
        );

        // Unchanged activity leaves the last sighting where it was.
        assert_eq!(timeline.stamp(&mut sample, "2026-11-22T08:00:10Z", Some("steady")), 0);
        assert_eq!(sample.families["AF_UNIX"].seen.as_ref().unwrap().last, "2026-11-22T08:00:05Z");
    }

    #[test]
    fn transient_phases_win_over_steady() {
        assert_eq!(dominant(["steady", "start-up", "steady"]), Some("start-up"));
        assert_eq!(dominant(["steady", "reload"]), Some("reload"));
        assert_eq!(dominant([]), None);
        assert_eq!(phase_of("activating"), "start-up");
        assert_eq!(phase_of("active"), "steady");
    }
}
