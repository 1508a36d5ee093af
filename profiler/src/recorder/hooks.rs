//! Which kernel hooks the recorder uses, chosen by probing the running kernel, best first;
//! an environment variable forces one (the tests use it to exercise each where the kernel
//! offers a better one).
//!
//! - Capability checks: the `capability:cap_capable` tracepoint (Linux 6.14+), else fexit on
//!   `cap_capable` (BTF trampolines, Debian 12's and 13's kernels), else a kprobe/kretprobe
//!   pair, else none, in which case the drop-in leaves `CapabilityBoundingSet=` open.
//! - Syscalls: the `sys_exit` tracepoint, which sees every call; fexit on the kernel's
//!   syscall tables (`x64_sys_call` and its siblings, with `__secure_computing` for seccomp's
//!   refusals) only when forced: it spares the rest of the host the tracepoint slow path, but
//!   is blind to a number past the end of the kernel's table (an `ENOSYS` probe for a call
//!   newer than the kernel, a need the tracepoint sees), and no gain was measured for it.

/// A kind of evidence that more than one kernel hook can give.
pub trait HookChoice: Copy + PartialEq + 'static {
    /// Best first.
    const ALL: &'static [Self];
    /// The environment variable that forces one.
    const FORCE: &'static str;

    /// The name the profile records (`recording.hooks`).
    fn name(self) -> &'static str;

    /// The hooks to try, best first, and whether one was forced.
    fn candidates() -> Result<(Vec<Self>, bool), String> {
        match std::env::var(Self::FORCE) {
            Err(_) => Ok((Self::ALL.to_vec(), false)),
            Ok(name) => match Self::ALL.iter().find(|h| h.name() == name) {
                Some(hook) => Ok((vec![*hook], true)),
                None => {
                    let names: Vec<&str> = Self::ALL.iter().map(|h| h.name()).collect();
                    Err(format!("{}={name:?}: expected one of {}", Self::FORCE, names.join(", ")))
                }
            },
        }
    }
}

/// One way of seeing capability checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityHook {
    Tracepoint,
    Fexit,
    Kprobe,
    None,
}

impl HookChoice for CapabilityHook {
    const ALL: &'static [Self] = &[Self::Tracepoint, Self::Fexit, Self::Kprobe, Self::None];
    const FORCE: &'static str = "PROFILER_CAPABILITY_HOOK";

    fn name(self) -> &'static str {
        match self {
            Self::Tracepoint => "tracepoint",
            Self::Fexit => "fexit",
            Self::Kprobe => "kprobe",
            Self::None => "none",
        }
    }
}

/// One way of seeing syscalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallHook {
    /// The `sys_exit` BTF raw tracepoint.
    Tracepoint,
    /// fexit on `x64_sys_call`, `ia32_sys_call`, `x32_sys_call` (where the kernel has them)
    /// and `__secure_computing`.
    Fexit,
}

impl HookChoice for SyscallHook {
    const ALL: &'static [Self] = &[Self::Tracepoint, Self::Fexit];
    const FORCE: &'static str = "PROFILER_SYSCALL_HOOK";

    fn name(self) -> &'static str {
        match self {
            Self::Fexit => "fexit",
            Self::Tracepoint => "tracepoint",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<H: HookChoice>() -> Vec<&'static str> {
        H::ALL.iter().map(|h| h.name()).collect()
    }

    #[test]
    fn names_are_the_profiles() {
        assert_eq!(names::<CapabilityHook>(), ["tracepoint", "fexit", "kprobe", "none"]);
        assert_eq!(names::<SyscallHook>(), ["tracepoint", "fexit"]);
    }
}
