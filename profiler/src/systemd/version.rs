//! The one parser of `systemctl --version`: the manager's major version and its build features.

use std::collections::BTreeSet;

/// The systemd assumed when nothing says which one a drop-in is for (Debian 12's).
pub const DEFAULT_SYSTEMD: u32 = 252;

/// What `systemctl --version` says: `systemd 252 (252.39-1~deb12u2)` and a line of
/// `+FEATURE -FEATURE` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdVersion {
    pub major: u32,
    /// The features built in (`BPF_FRAMEWORK`, `SECCOMP`, ...), without their `+`.
    pub features: BTreeSet<String>,
}

impl SystemdVersion {
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let major = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let features = lines.flat_map(str::split_whitespace).filter_map(|w| w.strip_prefix('+')).map(str::to_string).collect();
        Some(Self { major, features })
    }

    /// Built with its BPF framework: without it SocketBindAllow=, RestrictNetworkInterfaces=
    /// and RestrictFileSystems= are accepted but not enforced.
    pub fn bpf_framework(&self) -> bool {
        self.features.contains("BPF_FRAMEWORK")
    }
}

/// The major version, or Debian 12's with a warning when the target's is unknown.
pub fn major_or_default(version: Option<&SystemdVersion>) -> u32 {
    version.map_or_else(
        || {
            log::warn!("assuming systemd {DEFAULT_SYSTEMD}");
            DEFAULT_SYSTEMD
        },
        |v| v.major,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_major_version_and_features() {
        let text = "systemd 252 (252.39-1~deb12u2)\n+PAM +AUDIT -BPF_FRAMEWORK +SECCOMP default-hierarchy=unified\n";
        let v = SystemdVersion::parse(text).unwrap();
        assert_eq!(v.major, 252);
        assert!(!v.bpf_framework() && v.features.contains("SECCOMP"));
        let v = SystemdVersion::parse("systemd 257 (257.13-1~deb13u1)\n+BPF_FRAMEWORK\n").unwrap();
        assert!(v.major == 257 && v.bpf_framework());
        assert_eq!(SystemdVersion::parse("not systemd\n"), None);
    }
}
