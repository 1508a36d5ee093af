//! Which kernel hook sees capability checks, chosen by probing the running kernel: the
//! `capability:cap_capable` tracepoint (Linux 6.14+), else fexit on `cap_capable` (BTF
//! trampolines, Debian 12's and 13's kernels), else a kprobe/kretprobe pair, else none, in
//! which case the drop-in leaves `CapabilityBoundingSet=` open. `PROFILER_CAPABILITY_HOOK`
//! forces one (the tests use it to exercise each where the kernel has a better one).

/// One way of seeing capability checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityHook {
    Tracepoint,
    Fexit,
    Kprobe,
    None,
}

/// The environment variable that forces a hook.
pub const FORCE: &str = "PROFILER_CAPABILITY_HOOK";

impl CapabilityHook {
    /// Best first.
    pub const ALL: [Self; 4] = [Self::Tracepoint, Self::Fexit, Self::Kprobe, Self::None];

    /// The name the profile records (`recording.hooks.capabilities`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tracepoint => "tracepoint",
            Self::Fexit => "fexit",
            Self::Kprobe => "kprobe",
            Self::None => "none",
        }
    }

    /// The hooks to try, best first, and whether one was forced.
    pub fn candidates() -> Result<(Vec<Self>, bool), String> {
        match std::env::var(FORCE) {
            Err(_) => Ok((Self::ALL.to_vec(), false)),
            Ok(name) => match Self::ALL.into_iter().find(|h| h.name() == name) {
                Some(hook) => Ok((vec![hook], true)),
                None => Err(format!("{FORCE}={name:?}: expected one of tracepoint, fexit, kprobe, none")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_profiles() {
        let names: Vec<&str> = CapabilityHook::ALL.iter().map(|h| h.name()).collect();
        assert_eq!(names, ["tracepoint", "fexit", "kprobe", "none"]);
    }
}
