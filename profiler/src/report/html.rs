//! The report as one self-contained HTML file: nothing is fetched when it is viewed, and every
//! recorded string is escaped.

use std::fmt::Write as _;

use super::{ExposureView, Parts, exposure_intro, exposure_tables, svg::svg};

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn render(p: &Parts) -> String {
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
    out.push_str("</table>\n<h2>Refused</h2>\n<p>Attempts the sandbox (or the kernel) refused: evidence of a refusal, never of a need, so none of them is allowed by the drop-in.</p>\n<table id=\"refused\"><tr><th>attempt</th><th>times</th><th>by</th></tr>");
    for (what, count, by) in &p.refused {
        let _ = write!(out, "<tr><td><code>{}</code></td><td>{count}</td><td>{}</td></tr>", html_escape(what), html_escape(by));
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

fn exposure_html(e: &ExposureView) -> String {
    let s = &e.scored;
    let analyzed = match &e.systemd {
        Ok(v) => format!(
            "<td id=\"systemd-analyze-before\">{}</td><td id=\"systemd-analyze-after\">{}</td>",
            html_escape(&v.before),
            html_escape(&v.after)
        ),
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
