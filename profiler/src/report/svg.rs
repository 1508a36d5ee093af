//! The convergence curve as an inline SVG: distinct items learned against time.

/// The convergence curve as an inline SVG: distinct items (y) against time since the start (x).
pub fn svg(curve: &[(f64, usize)], seconds: f64) -> String {
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
