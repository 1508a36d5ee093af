//! Checked row by row against systemd-analyze 252 (Debian 12, in the test bed): each fixture
//! pair is a unit's `systemctl show` output and what `SYSTEMD_ANALYZE_DEBUG=1 systemd-analyze
//! security` printed for it; the overlays were judged with the drop-in installed, as the
//! administrator will see them after `apply`. (`--offline=yes` judges two things otherwise: it
//! does not count PrivateMounts= as implied by ProtectSystem= and the like, and it takes an
//! allowed 127.0.0.1/32 for localhost; pfz-overlay is the case that tells them apart.)

use std::collections::BTreeMap;

use super::*;
use crate::harden::{Setting, syscall_groups::SyscallGroups};

fn groups() -> SyscallGroups {
    SyscallGroups::builtin("252").unwrap()
}

fn show(text: &str) -> UnitSecurity {
    UnitSecurity::from_show(&crate::systemd::unit::properties(text))
}

/// The `Key=value` lines of a unit file (an installed drop-in captured in the test bed).
fn conf(text: &str) -> Vec<Setting> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '['])).map(Setting::parse).collect()
}

/// systemd-analyze's debug table: check id → badness (`None` for "does not apply").
fn analyzed(text: &str) -> (BTreeMap<String, Option<u64>>, String) {
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("✓ ").or_else(|| line.strip_prefix("✗ ")).or_else(|| line.strip_prefix("  ")) else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let Some(id) = words.first().filter(|w| w.ends_with('=') || w.contains("=~") || w.contains("=/")) else { continue };
        let mut numbers: Vec<&str> =
            words.iter().rev().take_while(|w| w.chars().all(|c| c.is_ascii_digit() || c == '.')).copied().collect();
        numbers.reverse();
        if numbers.last().is_some_and(|n| n.contains('.')) {
            numbers.pop();
        }
        let [_, badness, _] = numbers[numbers.len() - 3..] else { panic!("no weight, badness, range in {line:?}") };
        let badness: u64 = badness.parse().unwrap();
        rows.insert(id.to_string(), (badness != u64::MAX).then_some(badness));
    }
    (rows, crate::systemd::analyze::overall(text).unwrap())
}

fn assert_matches_systemd(unit: &UnitSecurity, analyze: &str) {
    let (expected, overall) = analyzed(analyze);
    let ours = assess(unit, &groups());
    let mine: BTreeMap<String, Option<u64>> = ours.rows.iter().map(|r| (r.id.to_string(), r.badness)).collect();
    let differ: Vec<String> = expected
        .iter()
        .filter(|(id, b)| mine.get(*id) != Some(b))
        .map(|(id, b)| format!("{id}: systemd {b:?}, ours {:?}", mine.get(id)))
        .collect();
    assert!(differ.is_empty(), "rows that differ:\n{}", differ.join("\n"));
    assert_eq!(mine.len(), expected.len(), "the same checks");
    assert_eq!(ours.label(), overall);
}

#[test]
fn an_unhardened_unit_scores_as_systemd_says() {
    assert_matches_systemd(&show(include_str!("fixtures/nginx.show")), include_str!("fixtures/nginx.analyze"));
}

#[test]
fn a_hardened_unit_scores_as_systemd_says() {
    assert_matches_systemd(&show(include_str!("fixtures/redis-server.show")), include_str!("fixtures/redis-server.analyze"));
}

#[test]
fn deny_lists_partial_namespaces_ip_pins_and_a_nobody_user_score_as_systemd_says() {
    assert_matches_systemd(&show(include_str!("fixtures/pfx.show")), include_str!("fixtures/pfx.analyze"));
}

#[test]
fn an_early_boot_dynamic_user_unit_scores_as_systemd_says() {
    // DefaultDependencies=no takes four checks out; DynamicUser=yes makes RemoveIPC= count.
    assert_matches_systemd(&show(include_str!("fixtures/pfy.show")), include_str!("fixtures/pfy.analyze"));
}

#[test]
fn a_drop_in_over_a_deny_list_scores_as_systemd_says() {
    let unit = show(include_str!("fixtures/pfx.show")).with_settings(&conf(include_str!("fixtures/pfx-overlay.conf")), &groups());
    assert_matches_systemd(&unit, include_str!("fixtures/pfx-overlay.analyze"));
}

#[test]
fn a_full_drop_in_over_an_unhardened_unit_scores_as_systemd_says() {
    // Every directive `generate` writes, with lists reset, grown, and cut (~@resources).
    let unit = show(include_str!("fixtures/nginx.show")).with_settings(&conf(include_str!("fixtures/nginx-overlay.conf")), &groups());
    assert_matches_systemd(&unit, include_str!("fixtures/nginx-overlay.analyze"));
}

#[test]
fn a_unit_without_settings_is_the_unhardened_one() {
    let unset = assess(&UnitSecurity::unset(), &groups());
    assert_eq!(unset, assess(&show(include_str!("fixtures/nginx.show")), &groups()));
    assert_eq!(unset.label(), "9.6 UNSAFE");
}

#[test]
fn later_lines_merge_the_way_systemd_merges_them() {
    let g = groups();
    let base = UnitSecurity::unset();
    let caps = base.with_settings(
        &conf("[Service]\nCapabilityBoundingSet=CAP_CHOWN\nCapabilityBoundingSet=CAP_KILL\nCapabilityBoundingSet=~CAP_CHOWN\n"),
        &g,
    );
    assert_eq!(caps.capability_bounding_set, 1 << 5, "replace, then OR, then take away");
    let ns = base.with_settings(&conf("RestrictNamespaces=~user\nRestrictNamespaces=~net\n"), &g);
    assert_eq!(ns.restrict_namespaces & 0x5000_0000, 0, "user and net both denied");
    let families = base.with_settings(&conf("RestrictAddressFamilies=AF_UNIX\nRestrictAddressFamilies=~AF_UNIX\n"), &g);
    assert_eq!(families.address_families.unwrap().items.len(), 0);
    let filter = base.with_settings(&conf("SystemCallFilter=read\n"), &g);
    assert!(filter.system_call_filter.as_ref().unwrap().items.contains("exit_group"), "an allow list starts with @default");
    let reset = filter.with_settings(&conf("SystemCallFilter=\n"), &g);
    assert_eq!(reset.system_call_filter, None);
}

#[test]
fn levels_follow_systemds_thresholds() {
    let levels: Vec<&str> = [0, 1, 9, 10, 49, 50, 74, 75, 89, 90, 99, 100].into_iter().map(level).collect();
    assert_eq!(levels, ["PERFECT", "SAFE", "SAFE", "OK", "OK", "MEDIUM", "MEDIUM", "EXPOSED", "EXPOSED", "UNSAFE", "UNSAFE", "DANGEROUS"]);
}

#[test]
fn half_measures_score_as_systemd_says() {
    // A static user with a supplementary group, ProtectHome=tmpfs, ProtectSystem=yes, an
    // IPv4-only deny, one non-native architecture, DevicePolicy=strict, KeyringMode=shared.
    assert_matches_systemd(&show(include_str!("fixtures/pfz.show")), include_str!("fixtures/pfz.analyze"));
}

#[test]
fn a_drop_in_completing_half_measures_scores_as_systemd_says() {
    // The IPv6 half of deny-all, native only, ProtectClock= under a strict policy (the RTC
    // is then allowed), a reset group list, a namespace merged into a ~list, an ambient cap.
    let unit = show(include_str!("fixtures/pfz.show")).with_settings(&conf(include_str!("fixtures/pfz-overlay.conf")), &groups());
    assert_matches_systemd(&unit, include_str!("fixtures/pfz-overlay.analyze"));
}
