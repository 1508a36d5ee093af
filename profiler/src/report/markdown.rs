//! The report as Markdown, for pasting into a review.

use std::fmt::Write as _;

use super::{ExposureView, Parts, exposure_intro, exposure_tables, verdict_cells};

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

pub fn render(p: &Parts) -> String {
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
        let _ =
            writeln!(out, "| `{}` | {} | {} | {} | {} |", cell(&e.path), e.execs, e.syscalls, cell(&e.capabilities.join(", ")), e.written);
    }
    let _ = write!(out, "\n## The drop-in\n\n```ini\n{}```\n", p.dropin);
    out
}
