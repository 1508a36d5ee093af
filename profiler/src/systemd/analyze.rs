//! systemd-analyze's own verdict, where the unit is loaded: `systemd-analyze security UNIT`
//! before, and after, the same on a copy of the unit file with the drop-in beside it
//! (`--offline=yes`), so nothing is installed to learn it.

use super::{Systemd, dropin_file::run_there};
use crate::harden::{DROPIN_NAME, DropIn};

/// systemd-analyze's overall line for the unit as it is and with the drop-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdicts {
    /// "9.6 UNSAFE".
    pub before: String,
    pub after: String,
}

/// Asks `systemd`'s systemd-analyze. The error says why there is no verdict, for the report.
pub fn verdicts(systemd: &Systemd, unit: &str, dropin: &DropIn) -> Result<Verdicts, String> {
    // The name comes from the profile: `--`, so it can never be read as an option.
    let before = security(systemd, &["--", unit])?;
    let fragment =
        systemd.systemctl_ok(&["show", "--property=FragmentPath", "--value", "--", unit]).map_err(|e| e.to_string())?.trim().to_string();
    if fragment.is_empty() {
        return Err(format!("{unit} has no unit file to copy (a transient unit?)"));
    }
    // A copy of the unit file with the drop-in beside it, in a scratch directory made, used
    // and removed where that systemd runs (inside a container: in its own root).
    let script = "d=$(mktemp -d) || exit 1; trap 'rm -rf -- \"$d\"' EXIT
        cat -- \"$1\" > \"$d/$2\" && mkdir -- \"$d/$2.d\" && cat > \"$d/$2.d/$3\" \
        && systemd-analyze security --no-pager --offline=yes \"$d/$2\"";
    let (_, text) = run_there(
        systemd,
        "systemd-analyze security --offline=yes on a copy",
        script,
        &[&fragment, unit, DROPIN_NAME],
        Some(&dropin.to_string()),
        false,
    )
    .map_err(|e| e.to_string())?;
    let after = overall(&text)
        .ok_or_else(|| format!("systemd-analyze security --offline=yes on a copy of {fragment}: no overall exposure line"))?;
    Ok(Verdicts { before, after })
}

fn security(systemd: &Systemd, args: &[&str]) -> Result<String, String> {
    let output = systemd
        .command("systemd-analyze")
        .args(["security", "--no-pager"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run systemd-analyze: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    overall(&text).ok_or_else(|| {
        let said = String::from_utf8_lossy(&output.stderr);
        let first = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("no overall exposure line");
        format!("systemd-analyze security {}: {}", args.join(" "), first.trim())
    })
}

/// "9.6 UNSAFE" from `→ Overall exposure level for nginx.service: 9.6 UNSAFE 😨`.
pub fn overall(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("Overall exposure level for "))?;
    let (_, verdict) = line.rsplit_once(": ")?;
    let mut words = verdict.split_whitespace();
    let score = words.next()?;
    score.parse::<f64>().ok()?;
    Some(format!("{score} {}", words.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_overall_line() {
        let text = "  NAME  DESCRIPTION\n✗ PrivateNetwork= ...  0.5\n\n→ Overall exposure level for nginx.service: 9.6 UNSAFE 😨\n";
        assert_eq!(overall(text).as_deref(), Some("9.6 UNSAFE"));
        assert_eq!(overall("Unit x.service not found, cannot analyze.\n"), None);
    }
}
