//! Text that goes into a unit file: comments that no observed string (a hostile executable
//! name, say) can break out of, and paths quoted as systemd's parser reads them.

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

/// A path as a unit file value: quoted, with `"` and `\` escaped and `%` doubled (specifiers).
pub fn unit_path(path: &str) -> String {
    let decoded = path.replace("\\\\", "\\");
    if decoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@,".contains(&b)) {
        return decoded;
    }
    let mut out = String::from("\"");
    for c in decoded.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
