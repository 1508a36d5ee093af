//! `profiler report`: a profile as a review artefact, one self-contained HTML file (nothing is
//! fetched when it is viewed) or Markdown: the drop-in, each directive with the evidence above
//! it, what was left open and why, per-executable attribution, losses, and the convergence
//! curve (distinct items learned over time) that shows whether the soak plateaued, and the
//! exposure score before and after the drop-in.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::Context as _;

use crate::{
    commands::generate::{self, GenerateOptions, Rendered},
    exposure::{
        self, Comparison,
        analyze::{self, Verdicts},
        settings::UnitSecurity,
    },
    path_events::is_write,
    profile::{self, Profile},
    unit::Systemd,
};

/// A directive block of the drop-in: the comment lines above it and its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub lines: Vec<String>,
    pub evidence: Vec<String>,
}

/// What the report is made of, shared by both formats.
struct Parts {
    title: String,
    facts: Vec<(String, String)>,
    losses: Vec<(String, u64)>,
    directives: Vec<Directive>,
    left_open: Vec<(String, String)>,
    executables: Vec<ExecutableRow>,
    /// Distinct items learned by each second since the start (empty without `seen` times).
    curve: Vec<(f64, usize)>,
    /// Seconds watched: the curve's time axis.
    seconds: f64,
    dropin: String,
    exposure: ExposureView,
}

/// The exposure score before and after the drop-in, scored here and by systemd-analyze.
struct ExposureView {
    /// Which settings "before" stands for.
    basis: String,
    scored: Comparison,
    /// systemd-analyze's own verdicts, or why there are none.
    systemd: Result<Verdicts, String>,
}

struct ExecutableRow {
    path: String,
    execs: u64,
    syscalls: usize,
    capabilities: Vec<String>,
    written: usize,
}

pub fn run(options: &GenerateOptions, output: &Path, markdown: bool, systemd: &Systemd) -> anyhow::Result<()> {
    let rendered = generate::render(options)?;
    let exposure = exposure_view(&rendered, options, systemd);
    let parts = parts(&rendered.profile, rendered.dropin, exposure);
    let text = if markdown { render_markdown(&parts) } else { render_html(&parts) };
    profile::write_atomically(output, text.as_bytes()).with_context(|| format!("writing {}", output.display()))?;
    println!("report written to {}", output.display());
    Ok(())
}

/// "Before" is the unit's settings when given, else a unit that sets none of them.
/// systemd-analyze is asked only where the profiled unit is loaded.
fn exposure_view(rendered: &Rendered, options: &GenerateOptions, systemd: &Systemd) -> ExposureView {
    let (unit, basis) = match &options.unit_settings {
        Some(path) => (UnitSecurity::from_show(&rendered.unit_settings), format!("the unit's settings in {}", path.display())),
        None => (UnitSecurity::unset(), "a unit that sets none of them (--unit-settings gives the unit's own)".to_string()),
    };
    let verdicts = match &rendered.profile.target.unit {
        Some(name) => analyze::verdicts(systemd, name, &rendered.dropin),
        None => Err("the profile is not of a systemd unit".to_string()),
    };
    ExposureView { basis, scored: Comparison::new(&unit, &rendered.dropin, &rendered.groups), systemd: verdicts }
}

fn parts(profile: &Profile, dropin: String, exposure: ExposureView) -> Parts {
    let (directives, left_open) = directives(&dropin);
    let mut facts = vec![
        ("target".to_string(), profile.target_label()),
        ("host".to_string(), format!("{} (kernel {}, {})", profile.host.hostname, profile.host.kernel, profile.host.arch)),
        ("watched".to_string(), format!("{} s, {} to {}", profile.recording.seconds, profile.recording.started, profile.recording.ended)),
        ("runs, restarts".to_string(), format!("{}, {}", profile.recording.runs, profile.recording.restarts)),
    ];
    if let Some(inputs) = profile.recording.inputs {
        let hosts: Vec<&str> = profile.recording.hosts.iter().map(String::as_str).collect();
        facts.push(("merged".to_string(), format!("{inputs} profiles from {}", hosts.join(", "))));
    }
    Parts {
        title: format!("Hardening report: {}", profile.target_label()),
        facts,
        losses: profile.losses.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        directives,
        left_open,
        executables: executables(profile),
        curve: convergence(profile),
        seconds: profile.recording.seconds,
        dropin,
        exposure,
    }
}

/// The drop-in's directive blocks (comments, then lines, up to a blank line) and its list of
/// directives left open.
pub fn directives(dropin: &str) -> (Vec<Directive>, Vec<(String, String)>) {
    let body = dropin.split_once("[Service]\n").map_or(dropin, |(_, b)| b);
    let (blocks, open) = body.split_once("# Left open, with the observation that prevented each:\n").unwrap_or((body, ""));
    let mut out = Vec::new();
    for block in blocks.split("\n\n") {
        let evidence: Vec<String> = block.lines().filter_map(|l| l.strip_prefix('#')).map(|l| l.trim().to_string()).collect();
        let lines: Vec<String> = block.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(str::to_string).collect();
        if !lines.is_empty() {
            out.push(Directive { lines, evidence });
        }
    }
    let left_open = open
        .lines()
        .filter_map(|l| l.strip_prefix("#   ")?.split_once("=: "))
        .map(|(d, why)| (d.to_string(), why.to_string()))
        .collect();
    (out, left_open)
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
            written: profile.paths.values().filter(|p| p.executables.contains(path) && p.ops.iter().any(|o| is_write(o))).count(),
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

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The convergence curve as an inline SVG: distinct items (y) against time since the start (x).
fn svg(curve: &[(f64, usize)], seconds: f64) -> String {
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const PAD: f64 = 40.0;
    let max_t = seconds.max(curve.last().map_or(1.0, |p| p.0)).max(1.0);
    let max_n = curve.last().map_or(1, |p| p.1).max(1) as f64;
    let x = |t: f64| PAD + t / max_t * (W - 2.0 * PAD);
    let y = |n: f64| H - PAD - n / max_n * (H - 2.0 * PAD);
    // A step line: the count holds until the next item is learned, then to the end.
    let mut points = vec![format!("{:.1},{:.1}", x(0.0), y(0.0))];
    let mut last = 0.0;
    for &(t, n) in curve {
        points.push(format!("{:.1},{:.1}", x(t), y(last)));
        points.push(format!("{:.1},{:.1}", x(t), y(n as f64)));
        last = n as f64;
    }
    points.push(format!("{:.1},{:.1}", x(max_t), y(last)));
    format!(
        "<svg id=\"convergence\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"distinct items learned over time\">\
         <line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#555\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#555\"/>\
         <text x=\"{PAD}\" y=\"{ty}\" font-size=\"12\">0 s</text>\
         <text x=\"{r}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\">{max_t:.0} s</text>\
         <text x=\"4\" y=\"{PAD}\" font-size=\"12\">{max_n:.0}</text>\
         <polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\" points=\"{}\"/></svg>",
        points.join(" "),
        b = H - PAD,
        r = W - PAD,
        ty = H - PAD + 16.0,
    )
}

fn render_html(p: &Parts) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}}\
         pre{{background:#f4f4f4;padding:1em;overflow-x:auto}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}\
         .warn{{background:#fff3cd;padding:.5em 1em}}</style></head><body>\n<h1>{}</h1>\n<table>",
        html_escape(&p.title),
        html_escape(&p.title)
    );
    for (k, v) in &p.facts {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", html_escape(k), html_escape(v));
    }
    out.push_str("</table>\n");
    out.push_str(&exposure_html(&p.exposure));
    out.push_str("<h2>Losses</h2>\n");
    if p.losses.is_empty() {
        out.push_str("<p id=\"losses\">Nothing was lost while recording.</p>\n");
    } else {
        out.push_str("<div id=\"losses\" class=\"warn\"><p>Records were lost: the drop-in may be too tight.</p><ul>");
        for (k, v) in &p.losses {
            let _ = write!(out, "<li>{}: {v}</li>", html_escape(k));
        }
        out.push_str("</ul></div>\n");
    }
    out.push_str("<h2>Convergence</h2>\n<p>Distinct items (syscalls, capabilities, paths, ...) learned over the recording: a curve that has gone flat says the soak has seen what the service does.</p>\n");
    if p.curve.is_empty() {
        out.push_str("<p id=\"convergence-missing\">This profile has no first-seen times (written before version 3).</p>\n");
    } else {
        out.push_str(&svg(&p.curve, p.seconds));
        out.push('\n');
    }
    out.push_str("<h2>Directives and their evidence</h2>\n<table id=\"directives\"><tr><th>directive</th><th>evidence</th></tr>");
    for d in &p.directives {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            d.lines.iter().map(|l| html_escape(l)).collect::<Vec<_>>().join("<br>"),
            d.evidence.iter().map(|l| html_escape(l)).collect::<Vec<_>>().join("<br>")
        );
    }
    out.push_str("</table>\n<h2>Left open</h2>\n<table id=\"left-open\"><tr><th>directive</th><th>why</th></tr>");
    for (d, why) in &p.left_open {
        let _ = write!(out, "<tr><td><code>{}=</code></td><td>{}</td></tr>", html_escape(d), html_escape(why));
    }
    out.push_str("</table>\n<h2>Executables</h2>\n<table id=\"executables\"><tr><th>executable</th><th>execs</th><th>syscalls</th><th>capabilities needed</th><th>paths written</th></tr>");
    for e in &p.executables {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&e.path),
            e.execs,
            e.syscalls,
            html_escape(&e.capabilities.join(", ")),
            e.written
        );
    }
    let _ = write!(out, "</table>\n<h2>The drop-in</h2>\n<pre id=\"dropin\">{}</pre>\n</body></html>\n", html_escape(&p.dropin));
    out
}

/// What the exposure section says above its tables.
fn exposure_intro(e: &ExposureView) -> String {
    format!(
        "Scored with the checks and weights of systemd-analyze security (systemd {}): before is {}; after lays the drop-in over it, as systemd would. systemd-analyze's own after is its --offline verdict on a copy of the unit file with the drop-in beside it.",
        exposure::CHECKS_OF_SYSTEMD,
        e.basis
    )
}

/// systemd-analyze's before and after, or why there are none (Markdown has no colspan).
fn verdict_cells(e: &ExposureView) -> [String; 2] {
    match &e.systemd {
        Ok(v) => [v.before.clone(), v.after.clone()],
        Err(why) => [format!("not available: {why}"), String::new()],
    }
}

/// The two exposure tables as text cells: what stays exposed (check, badness, share) and
/// what the drop-in moved (check, before, after; badness with its share).
fn exposure_tables(s: &Comparison) -> (Vec<[String; 3]>, Vec<[String; 3]>) {
    let remaining = s.remaining().into_iter().map(|r| [r.id.to_string(), r.badness_text(), exposure::tenths_text(s.after.share(r))]).collect();
    let with_share = |e: &exposure::Exposure, r: &exposure::Row| format!("{} ({})", r.badness_text(), exposure::tenths_text(e.share(r)));
    let changed = s.changed().into_iter().map(|(b, a)| [b.id.to_string(), with_share(&s.before, b), with_share(&s.after, a)]).collect();
    (remaining, changed)
}

fn exposure_html(e: &ExposureView) -> String {
    let s = &e.scored;
    let analyzed = match &e.systemd {
        Ok(v) => format!("<td id=\"systemd-analyze-before\">{}</td><td id=\"systemd-analyze-after\">{}</td>", html_escape(&v.before), html_escape(&v.after)),
        Err(why) => format!("<td id=\"systemd-analyze-before\" colspan=\"2\">not available: {}</td>", html_escape(why)),
    };
    let mut out = format!(
        "<h2>Exposure</h2>\n<p>{}</p>\n<table id=\"exposure\"><tr><th></th><th>before</th><th>with the drop-in</th></tr>\
         <tr><th>scored here</th><td id=\"exposure-before\">{}</td><td id=\"exposure-after\">{}</td></tr>\
         <tr><th>systemd-analyze</th>{analyzed}</tr></table>\n",
        html_escape(&exposure_intro(e)),
        s.before.label(),
        s.after.label(),
    );
    let (remaining, changed) = exposure_tables(s);
    let rows = |rows: &[[String; 3]]| -> String {
        rows.iter().map(|[id, x, y]| format!("<tr><td><code>{}</code></td><td>{x}</td><td>{y}</td></tr>", html_escape(id))).collect()
    };
    let _ = write!(
        out,
        "<p>Still exposed with the drop-in, the largest share first:</p>\n<table id=\"exposure-remaining\">\
         <tr><th>check</th><th>badness</th><th>share</th></tr>{}</table>\n\
         <details><summary>The {} checks the drop-in changes (badness, and share of the score)</summary>\n\
         <table id=\"exposure-changes\"><tr><th>check</th><th>before</th><th>with the drop-in</th></tr>{}",
        rows(&remaining),
        changed.len(),
        rows(&changed)
    );
    out.push_str("</table></details>\n");
    out
}

fn exposure_markdown(e: &ExposureView) -> String {
    let s = &e.scored;
    let [sa_before, sa_after] = verdict_cells(e);
    let mut out = format!(
        "\n## Exposure\n\n{}\n\n| | before | with the drop-in |\n|---|---|---|\n| scored here | {} | {} |\n| systemd-analyze | {} | {} |\n",
        exposure_intro(e),
        s.before.label(),
        s.after.label(),
        cell(&sa_before),
        cell(&sa_after)
    );
    let (remaining, changed) = exposure_tables(s);
    let rows = |rows: &[[String; 3]]| -> String { rows.iter().map(|[id, x, y]| format!("| `{}` | {x} | {y} |\n", cell(id))).collect() };
    out.push_str("\nStill exposed with the drop-in, the largest share first:\n\n| check | badness | share |\n|---|---|---|\n");
    out.push_str(&rows(&remaining));
    out.push_str("\nWhat the drop-in changes (badness, and share of the score):\n\n| check | before | with the drop-in |\n|---|---|---|\n");
    out.push_str(&rows(&changed));
    out
}

/// Markdown table cells: no pipes or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn render_markdown(p: &Parts) -> String {
    let mut out = format!("# {}\n\n| | |\n|---|---|\n", p.title);
    for (k, v) in &p.facts {
        let _ = writeln!(out, "| {} | {} |", cell(k), cell(v));
    }
    out.push_str(&exposure_markdown(&p.exposure));
    out.push_str("\n## Losses\n\n");
    if p.losses.is_empty() {
        out.push_str("Nothing was lost while recording.\n");
    }
    for (k, v) in &p.losses {
        let _ = writeln!(out, "- **{}**: {v}", cell(k));
    }
    out.push_str("\n## Convergence\n\n");
    match p.curve.last() {
        Some((t, n)) => {
            let half = p.curve.iter().find(|(_, c)| *c * 2 >= *n).map_or(0.0, |(t, _)| *t);
            let _ = writeln!(out, "{n} distinct items; half of them were known after {half:.0} s, the last one was learned at {t:.0} s.");
        }
        None => out.push_str("This profile has no first-seen times (written before version 3).\n"),
    }
    out.push_str("\n## Directives and their evidence\n\n| directive | evidence |\n|---|---|\n");
    for d in &p.directives {
        let _ = writeln!(
            out,
            "| `{}` | {} |",
            d.lines.iter().map(|l| cell(l)).collect::<Vec<_>>().join("` `"),
            d.evidence.iter().map(|l| cell(l)).collect::<Vec<_>>().join("<br>")
        );
    }
    out.push_str("\n## Left open\n\n");
    for (d, why) in &p.left_open {
        let _ = writeln!(out, "- `{d}=`: {why}");
    }
    out.push_str("\n## Executables\n\n| executable | execs | syscalls | capabilities needed | paths written |\n|---|---|---|---|---|\n");
    for e in &p.executables {
        let _ = writeln!(out, "| `{}` | {} | {} | {} | {} |", cell(&e.path), e.execs, e.syscalls, cell(&e.capabilities.join(", ")), e.written);
    }
    let _ = write!(out, "\n## The drop-in\n\n```ini\n{}```\n", p.dropin);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_pair_each_block_with_the_comments_above_it() {
        let dropin = "# header\n\n[Service]\n# one\n# two\nA=1\nA=2\n\n# three\nB=x\n\n# Left open, with the observation that prevented each:\n#   C=: because\n";
        let (blocks, open) = directives(dropin);
        assert_eq!(blocks, vec![
            Directive { lines: vec!["A=1".into(), "A=2".into()], evidence: vec!["one".into(), "two".into()] },
            Directive { lines: vec!["B=x".into()], evidence: vec!["three".into()] },
        ]);
        assert_eq!(open, vec![("C".to_string(), "because".to_string())]);
    }

    #[test]
    fn the_html_escapes_what_the_profile_says() {
        let mut p = Profile::default();
        p.target.command = Some(vec!["<script>alert(1)</script>".into()]);
        let dropin = "[Service]\nX=<b>\n";
        let groups = crate::harden::syscall_groups::SyscallGroups::builtin("252").unwrap();
        let exposure = ExposureView {
            basis: "<b>".into(),
            scored: Comparison::new(&UnitSecurity::unset(), dropin, &groups),
            systemd: Err("<i>".into()),
        };
        let html = render_html(&parts(&p, dropin.into(), exposure));
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("X=&lt;b&gt;"));
        assert!(!html.contains("<b>") && !html.contains("<i>"));
    }
}
