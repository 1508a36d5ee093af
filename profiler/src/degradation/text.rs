//! `check`'s report for people: causes first, each with what followed from it.

use std::fmt::Write as _;

use super::{Finding, Findings, QUIET_WATCH_SHARE};
use crate::profile::{Profile, names};

/// The findings for people: a summary line, then each cause with its likely directive and
/// what followed from it, then the information that is no finding, then what was refused.
pub fn report(unit: &str, baseline: &Profile, hardened: &Profile, found: &Findings) -> String {
    let mut out = String::new();
    let causes = found.findings.iter().filter(|f| !f.effects.is_empty() || !is_effect(f)).count();
    let _ = writeln!(
        out,
        "{unit}: hardened run watched {:.0} s, baseline {:.0} s: {}",
        hardened.recording.seconds,
        baseline.recording.seconds,
        match found.count() {
            0 => "no sign that hardening changed what it does".to_string(),
            n => format!("{n} finding(s), {causes} of them a cause to look at first"),
        }
    );
    if hardened.recording.seconds < baseline.recording.seconds * QUIET_WATCH_SHARE {
        out.push_str("  (watched for less time than the baseline: what went quiet is not judged)\n");
    }
    for f in &found.findings {
        write_finding(&mut out, f, "  ");
        if !f.effects.is_empty() {
            let _ = writeln!(out, "      then, most likely because of it:");
            for effect in &f.effects {
                write_finding(&mut out, effect, "        ");
            }
        }
    }
    if !found.info.is_empty() {
        out.push_str("\n  information, not findings:\n");
        for f in &found.info {
            let _ = writeln!(out, "    {} by {}: {}", f.operation, processes(f), f.directive);
        }
    }
    let refused = refusals(hardened);
    if !refused.is_empty() {
        out.push_str("\n  refused in the hardened run (the sandbox at work; a finding above says where that hurt):\n");
        for line in refused {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// Whether a finding is an effect kind (standing alone when no cause explains it).
fn is_effect(f: &Finding) -> bool {
    matches!(f.kind, "quiet" | "new-read" | "new-write")
}

fn processes(f: &Finding) -> String {
    if f.process.is_empty() { "?".to_string() } else { f.process.join(", ") }
}

fn write_finding(out: &mut String, f: &Finding, indent: &str) {
    let _ = writeln!(
        out,
        "\n{indent}[{}] {} by {}\n{indent}    baseline {} time(s), hardened {} time(s)\n{indent}    likely: {}",
        f.kind,
        f.operation,
        processes(f),
        f.baseline,
        f.hardened,
        f.directive
    );
}

/// The hardened run's refused attempts, one line each: refused syscalls and the families and
/// namespaces asked for and not given.
pub fn refusals(profile: &Profile) -> Vec<String> {
    let syscalls = profile.refused_syscalls().into_iter().map(|((abi, name), r)| {
        let abi = if abi == names::NATIVE_ABI { String::new() } else { format!("{abi}:") };
        format!("syscall {abi}{name} {} ({} time(s))", r.errnos.join(","), r.count)
    });
    syscalls.chain(profile.refused.iter().map(|(what, u)| format!("{what} ({} time(s))", u.count))).collect()
}
