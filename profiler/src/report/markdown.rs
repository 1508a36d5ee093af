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
        text(&sa_before),
        text(&sa_after)
    );
    let (remaining, changed) = exposure_tables(s);
    let rows = |rows: &[[String; 3]]| -> String { rows.iter().map(|[id, x, y]| format!("| {} | {x} | {y} |\n", code(id))).collect() };
    out.push_str("\nStill exposed with the drop-in, the largest share first:\n\n| check | badness | share |\n|---|---|---|\n");
    out.push_str(&rows(&remaining));
    out.push_str("\nWhat the drop-in changes (badness, and share of the score):\n\n| check | before | with the drop-in |\n|---|---|---|\n");
    out.push_str(&rows(&changed));
    out
}

/// Recorded text (a path, an executable, a reason) as Markdown prose inside a table cell or
/// a list: every character Markdown or inline HTML would act on is escaped, and line breaks
/// become spaces, so a hostile file name stays text.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Recorded text as a code span in a table cell: fenced by more backticks than it holds in a
/// row, pipes escaped (GitHub's tables split on them even in code), no line breaks.
fn code(s: &str) -> String {
    let s = s.replace('|', "\\|").replace(['\n', '\r'], " ");
    let fence = "`".repeat(longest_run(&s, '`') + 1);
    format!("{fence} {s} {fence}")
}

/// The longest run of `c` in `s`.
fn longest_run(s: &str, c: char) -> usize {
    s.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

pub fn render(p: &Parts) -> String {
    let mut out = format!("# {}\n\n| | |\n|---|---|\n", text(&p.title));
    for (k, v) in &p.facts {
        let _ = writeln!(out, "| {} | {} |", text(k), text(v));
    }
    out.push_str(&exposure_markdown(&p.exposure));
    out.push_str("\n## Losses\n\n");
    if p.losses.is_empty() {
        out.push_str("Nothing was lost while recording.\n");
    }
    for (k, v) in &p.losses {
        let _ = writeln!(out, "- **{}**: {v}", text(k));
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
            "| {} | {} |",
            d.lines.iter().map(|l| code(l)).collect::<Vec<_>>().join(" "),
            d.evidence.iter().map(|l| text(l)).collect::<Vec<_>>().join("<br>")
        );
    }
    out.push_str("\n## Left open\n\n");
    for (d, why) in &p.left_open {
        let _ = writeln!(out, "- {}: {}", code(&format!("{d}=")), text(why));
    }
    out.push_str("\n## Refused\n\nAttempts the sandbox (or the kernel) refused: evidence of a refusal, never of a need.\n\n| attempt | times | by |\n|---|---|---|\n");
    for (what, count, by) in &p.refused {
        let _ = writeln!(out, "| {} | {count} | {} |", code(what), text(by));
    }
    out.push_str("\n## Executables\n\n| executable | execs | syscalls | capabilities needed | paths written |\n|---|---|---|---|---|\n");
    for e in &p.executables {
        let _ =
            writeln!(out, "| {} | {} | {} | {} | {} |", code(&e.path), e.execs, e.syscalls, text(&e.capabilities.join(", ")), e.written);
    }
    // A fence longer than any run of backticks in the drop-in, which a recorded name can hold.
    let fence = "`".repeat(longest_run(&p.dropin, '`').max(2) + 1);
    let _ = write!(out, "\n## The drop-in\n\n{fence}ini\n{}{fence}\n", p.dropin);
    out
}
