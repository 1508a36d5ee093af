//! `profiler report`: a profile as a review artefact, one self-contained HTML file or Markdown:
//! the drop-in, each directive with the evidence above it, what was left open and why,
//! per-executable attribution, losses, the convergence curve (distinct items learned over time)
//! that shows whether the soak plateaued, and the exposure score before and after the drop-in.

mod html;
mod markdown;
mod svg;

use std::collections::BTreeMap;

use crate::{
    exposure::{self, Comparison},
    harden::unit::UnitSecurity,
    harden::{Block, DropIn, Target},
    profile::Profile,
    systemd::analyze::Verdicts,
};

/// A directive block of the drop-in: its lines and the evidence comments above them.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub lines: Vec<String>,
    pub evidence: Vec<String>,
}

impl Directive {
    /// The block's lines and evidence; `None` for a block of comments only.
    fn of(block: &Block) -> Option<Self> {
        let lines: Vec<String> = block.settings().map(ToString::to_string).collect();
        let evidence = block.comments().map(|c| c.trim().to_string()).collect();
        (!lines.is_empty()).then_some(Self { lines, evidence })
    }
}

/// What the report is made of, shared by both formats.
struct Parts {
    title: String,
    facts: Vec<(String, String)>,
    losses: Vec<(String, u64)>,
    directives: Vec<Directive>,
    left_open: Vec<(String, String)>,
    /// Attempts the sandbox refused: what was asked, how often, by whom.
    refused: Vec<(String, u64, String)>,
    executables: Vec<ExecutableRow>,
    /// Distinct items learned by each second since the start (empty without `seen` times).
    curve: Vec<(f64, usize)>,
    /// Seconds watched: the curve's time axis.
    seconds: f64,
    /// The drop-in as `generate` writes it.
    dropin: String,
    exposure: ExposureView,
}

/// The exposure score before and after the drop-in, scored here and by systemd-analyze.
pub struct ExposureView {
    /// Which settings "before" stands for.
    pub basis: String,
    /// Which table scored it (`exposure::table_for`).
    pub table: String,
    pub scored: Comparison,
    /// systemd-analyze's own verdicts, or why there are none.
    pub systemd: Result<Verdicts, String>,
}

impl ExposureView {
    /// "Before" is `unit` (described by `basis`), "after" the drop-in laid over it.
    pub fn new(unit: &UnitSecurity, basis: String, dropin: &DropIn, target: &Target, systemd: Result<Verdicts, String>) -> Self {
        let table = exposure::table_for(target.systemd_version);
        Self { basis, table, scored: Comparison::new(unit, dropin, &target.groups), systemd }
    }
}

struct ExecutableRow {
    path: String,
    execs: u64,
    syscalls: usize,
    capabilities: Vec<String>,
    written: usize,
}

/// The report of `profile` and its drop-in: HTML, or Markdown.
pub fn render(profile: &Profile, dropin: &DropIn, exposure: ExposureView, markdown: bool) -> String {
    let parts = parts(profile, dropin, exposure);
    if markdown { markdown::render(&parts) } else { html::render(&parts) }
}

fn parts(profile: &Profile, dropin: &DropIn, exposure: ExposureView) -> Parts {
    let mut facts = vec![
        ("target".to_string(), profile.target_label()),
        ("host".to_string(), format!("{} (kernel {}, {})", profile.host.hostname, profile.host.kernel, profile.host.arch)),
        ("watched".to_string(), format!("{} s, {} to {}", profile.recording.seconds, profile.recording.started, profile.recording.ended)),
        ("runs, restarts".to_string(), format!("{}, {}", profile.recording.runs, profile.recording.restarts)),
    ];
    let hooks: Vec<&str> = profile.recording.capability_hooks().into_iter().collect();
    facts.push(("capability checks from".to_string(), hooks.join(" and ")));
    if let Some(inputs) = profile.recording.inputs {
        let hosts: Vec<&str> = profile.recording.hosts.iter().map(String::as_str).collect();
        facts.push(("merged".to_string(), format!("{inputs} profiles from {}", hosts.join(", "))));
    }
    Parts {
        title: format!("Hardening report: {}", profile.target_label()),
        facts,
        losses: profile.losses.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        directives: dropin.blocks.iter().filter_map(Directive::of).collect(),
        left_open: dropin.left_open.iter().map(|o| (o.directive.clone(), o.why.clone())).collect(),
        refused: refusals(profile),
        executables: executables(profile),
        curve: convergence(profile),
        seconds: profile.recording.seconds,
        dropin: dropin.to_string(),
        exposure,
    }
}

/// Refused syscalls, families and namespaces, each with its count and executables.
fn refusals(profile: &Profile) -> Vec<(String, u64, String)> {
    let by = |exes: &std::collections::BTreeSet<String>| exes.iter().cloned().collect::<Vec<_>>().join(", ");
    let syscalls = profile.refused_syscalls().into_iter().map(|((abi, name), r)| {
        let abi = if abi == crate::profile::names::NATIVE_ABI { String::new() } else { format!("{abi}:") };
        (format!("syscall {abi}{name} {}", r.errnos.join(",")), r.count, by(&r.executables))
    });
    let others = profile.refused.iter().map(|(what, u)| (what.clone(), u.count, by(&u.executables)));
    syscalls.chain(others).collect()
}

fn executables(profile: &Profile) -> Vec<ExecutableRow> {
    profile
        .executables
        .iter()
        .map(|(path, use_)| ExecutableRow {
            path: path.clone(),
            execs: use_.execs,
            syscalls: profile.syscalls.values().flat_map(|m| m.values()).filter(|u| u.executables.contains(path)).count(),
            capabilities: profile
                .capabilities
                .iter()
                .filter(|(_, c)| c.needed() && c.executables.contains(path))
                .map(|(n, _)| n.clone())
                .collect(),
            written: profile.paths.values().filter(|p| p.executables.contains(path) && p.ops.iter().any(|o| o.is_write())).count(),
        })
        .collect()
}

/// Seconds since the start of the recording at which the distinct-item count grew, and the
/// count then.
fn convergence(profile: &Profile) -> Vec<(f64, usize)> {
    let Some(start) = parse_time(&profile.recording.started) else { return Vec::new() };
    let mut firsts: Vec<f64> = Vec::new();
    profile.visit_items(|_, _, item| {
        if let Some(t) = item.seen().and_then(|s| parse_time(&s.first)) {
            firsts.push((t - start).max(0.0));
        }
    });
    firsts.sort_by(f64::total_cmp);
    let mut curve: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, t) in firsts.iter().enumerate() {
        curve.insert(*t as u64, i + 1);
    }
    curve.into_iter().map(|(t, n)| (t as f64, n)).collect()
}

fn parse_time(text: &str) -> Option<f64> {
    humantime::parse_rfc3339(text).ok()?.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

/// What the exposure section says above its tables.
pub(crate) fn exposure_intro(e: &ExposureView) -> String {
    format!(
        "Scored with the checks and weights of systemd-analyze security ({}), with the target's syscall groups: before is {}; after lays the drop-in over it, as systemd would. systemd-analyze's own after is its --offline verdict on a copy of the unit file with the drop-in beside it.",
        e.table, e.basis
    )
}

/// systemd-analyze's before and after, or why there are none (Markdown has no colspan).
pub(crate) fn verdict_cells(e: &ExposureView) -> [String; 2] {
    match &e.systemd {
        Ok(v) => [v.before.clone(), v.after.clone()],
        Err(why) => [format!("not available: {why}"), String::new()],
    }
}

/// The two exposure tables as text cells: what stays exposed (check, badness, share) and
/// what the drop-in moved (check, before, after; badness with its share).
pub(crate) fn exposure_tables(s: &Comparison) -> (Vec<[String; 3]>, Vec<[String; 3]>) {
    let remaining =
        s.remaining().into_iter().map(|r| [r.id.to_string(), r.badness_text(), exposure::tenths_text(s.after.share(r))]).collect();
    let with_share = |e: &exposure::Exposure, r: &exposure::Row| format!("{} ({})", r.badness_text(), exposure::tenths_text(e.share(r)));
    let changed = s.changed().into_iter().map(|(b, a)| [b.id.to_string(), with_share(&s.before, b), with_share(&s.after, a)]).collect();
    (remaining, changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::{LeftOpen, Setting};

    #[test]
    fn directives_pair_each_block_with_the_comments_above_it() {
        let mut one = Block::default();
        one.comment("one").comment("two").set("A", "1").set("A", "2");
        let mut three = Block::default();
        three.comment("three").set("B", "x");
        let mut notes_only = Block::default();
        notes_only.comment("no line here");
        let dropin = DropIn {
            header: vec!["header".into()],
            blocks: vec![one, three, notes_only],
            notes: vec![],
            left_open: vec![LeftOpen { directive: "C".into(), why: "because".into() }],
        };
        let blocks: Vec<Directive> = dropin.blocks.iter().filter_map(Directive::of).collect();
        assert_eq!(
            blocks,
            vec![
                Directive { lines: vec!["A=1".into(), "A=2".into()], evidence: vec!["one".into(), "two".into()] },
                Directive { lines: vec!["B=x".into()], evidence: vec!["three".into()] },
            ]
        );
        let p = parts(&Profile::default(), &dropin, view(&dropin));
        assert_eq!(p.left_open, vec![("C".to_string(), "because".to_string())]);
    }

    fn view(dropin: &DropIn) -> ExposureView {
        let target = Target::systemd(252, crate::harden::syscall_groups::SyscallGroups::builtin("252").unwrap());
        ExposureView::new(&UnitSecurity::unset(), "<b>".into(), dropin, &target, Err("<i>".into()))
    }

    #[test]
    fn the_html_escapes_what_the_profile_says() {
        let mut p = Profile::default();
        p.target.command = Some(vec!["<script>alert(1)</script>".into()]);
        let mut block = Block::default();
        block.entries.push(crate::harden::Entry::Setting(Setting::new("X", "<b>")));
        let dropin = DropIn { blocks: vec![block], ..Default::default() };
        let html = render(&p, &dropin, view(&dropin), false);
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("X=&lt;b&gt;"));
        assert!(!html.contains("<b>") && !html.contains("<i>"));
    }

    #[test]
    fn the_markdown_escapes_what_the_profile_says() {
        let mut p = Profile::default();
        p.target.command = Some(vec!["<script>alert(1)</script>".into()]);
        let exe = "/srv/a|b`c\n## Heading [x](javascript:1) <img src=x>".to_string();
        p.executables.insert(exe.clone(), crate::profile::ExecutableUse { execs: 1, seen: None, coverage: None });
        p.refused.insert(
            "family AF_X`|` EPERM".into(),
            crate::profile::ItemUse { count: 1, executables: [exe].into(), seen: None, coverage: None },
        );
        let mut block = Block::default();
        block.comment("evidence ```` with fences").set("X", "1");
        let dropin = DropIn { blocks: vec![block], ..Default::default() };
        let md = render(&p, &dropin, view(&dropin), true);
        assert!(!md.contains("<script>"), "{md}");
        // Raw HTML only ever inside a code span, where Markdown shows it as text.
        for line in md.lines().filter(|l| l.contains("<img")) {
            assert!(line.contains("`` /srv/a|") || line.contains("`` /srv/a\\|"), "{line}");
        }
        assert!(!md.lines().any(|l| l.starts_with("## Heading")), "a name cannot start a heading: {md}");
        // Table rows keep their cells: a pipe in a name is escaped.
        for row in md.lines().filter(|l| l.starts_with("| `") && l.contains("/srv/a")) {
            assert!(row.contains("a\\|b"), "{row}");
        }
        // The drop-in's fence is longer than any run of backticks in it.
        assert!(md.contains("`````ini\n"), "{md}");
    }
}
