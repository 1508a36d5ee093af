//! Text that goes into a unit file: numbers for humans, and comments that no observed string
//! (a hostile executable name, say) can break out of.

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `125.4` seconds -> `2 min 5 s`.
pub fn duration(seconds: f64) -> String {
    let total = seconds.round() as u64;
    let (d, h, m, s) = (total / 86_400, total / 3_600 % 24, total / 60 % 60, total % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "min"), (s, "s")]
        .into_iter()
        .filter(|(v, _)| *v > 0)
        .map(|(v, unit)| format!("{v} {unit}"))
        .collect();
    if parts.is_empty() { format!("{seconds:.1} s") } else { parts.join(" ") }
}

/// A string made safe for a `#` comment: control characters, backslashes and non-printing
/// characters are escaped, so nothing can end the comment line or continue it.
pub fn comment_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.extend(c.escape_default());
            }
            c => out.push(c),
        }
    }
    out
}

/// Up to `max` items joined with ", ", then "and N more".
pub fn some_of<'a>(items: impl IntoIterator<Item = &'a str>, max: usize) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    let shown: Vec<String> = items.iter().take(max).map(|s| comment_safe(s)).collect();
    match items.len().saturating_sub(max) {
        0 => shown.join(", "),
        rest => format!("{} and {rest} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_and_durations() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration(125.4), "2 min 5 s");
        assert_eq!(duration(90_061.0), "1 d 1 h 1 min 1 s");
        assert_eq!(duration(0.2), "0.2 s");
    }

    #[test]
    fn comments_cannot_be_escaped() {
        let hostile = "/tmp/x\n[Service]\nExecStartPre=/bin/evil\\";
        let safe = comment_safe(hostile);
        assert!(!safe.contains('\n'));
        assert!(!safe.ends_with('\\') || safe.ends_with("\\\\"));
        assert_eq!(safe, "/tmp/x\\n[Service]\\nExecStartPre=/bin/evil\\\\");
        assert_eq!(comment_safe("a\rb\u{7}c"), "a\\rb\\u{7}c");
        assert_eq!(some_of(["a", "b", "c"], 2), "a, b and 1 more");
    }
}
