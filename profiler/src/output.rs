//! What every command shares about its output: the format asked for, the outcome that sets the
//! exit status, and numbers and durations written for people.

/// `text` for people, `json` for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// A command that compares found a difference: it has printed what; the process exits 1, as
/// diff(1) does, so scripts and CI can gate on it (errors exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Found(pub String);

/// Writes `text` to stdout; a closed pipe (`| head`) is not a failure.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

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
    let parts: Vec<String> =
        [(d, "d"), (h, "h"), (m, "min"), (s, "s")].into_iter().filter(|(v, _)| *v > 0).map(|(v, unit)| format!("{v} {unit}")).collect();
    if parts.is_empty() { format!("{seconds:.1} s") } else { parts.join(" ") }
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
}
