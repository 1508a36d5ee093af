//! Reads the kernel call stack behind a capability check: which function asked, and whether
//! it asked only to choose a behaviour (a "noaudit" probe) rather than because it needed it.

use std::collections::BTreeMap;

use profiler_common::{PROBE_SITE_STACK, ProbeSites};

/// Functions that implement capability checking itself (or the tracing around it): skipped
/// to find the caller that made the check.
const CAPABILITY_LAYER: &[&str] = &[
    "cap_capable",
    "security_capable",
    "ns_capable",
    "ns_capable_noaudit",
    "ns_capable_setid",
    "ns_capable_common",
    "capable",
    "has_capability",
    "has_capability_noaudit",
    "has_ns_capability",
    "has_ns_capability_noaudit",
    "file_ns_capable",
    "capable_wrt_inode_uidgid",
    "privileged_wrt_inode_uidgid",
    "sk_ns_capable",
    "sk_capable",
    "sk_net_capable",
    "netlink_ns_capable",
    "netlink_capable",
    "netlink_net_capable",
    "bpf_capable",
    "perfmon_capable",
    "checkpoint_restore_ns_capable",
];

/// Callers that check with CAP_OPT_NOAUDIT directly, without a `*_noaudit` wrapper in the
/// stack: the check only decides a behaviour (e.g. the overcommit reserve on mmap, where
/// `cap_vm_enough_memory` is inlined into the LSM hook on current kernels).
const PROBE_CALLERS: [&str; profiler_common::PROBE_CALLER_COUNT] =
    ["cap_vm_enough_memory", "security_vm_enough_memory_mm", "__vm_enough_memory"];

/// The function every check passes through first: `classify` skips it as part of the
/// capability layer, and the kernel side's probe sites start from it.
const CHECKER: &str = "cap_capable";

/// Kernel symbol table, from /proc/kallsyms.
pub struct Symbols {
    by_address: BTreeMap<u64, String>,
}

impl Symbols {
    pub fn load() -> std::io::Result<Self> {
        let by_address = aya::util::kernel_symbols()?;
        // Hidden addresses all read as 0: every name would land on one address.
        if by_address.range(1..).next().is_none() {
            return Err(std::io::Error::other("kernel symbol addresses are hidden (no CAP_SYSLOG)"));
        }
        Ok(Self { by_address })
    }

    fn name(&self, ip: u64) -> &str {
        self.by_address.range(..=ip).next_back().map_or("?", |(_, name)| name.as_str())
    }

    pub fn names(&self, ips: impl IntoIterator<Item = u64>) -> Vec<String> {
        ips.into_iter().map(|ip| self.name(ip).to_string()).collect()
    }

    /// The address range [start, end) of the first function named `name` (or a compiler clone
    /// of it): from its address to the next symbol's. [0, 0) when there is none.
    fn range(&self, name: &str) -> [u64; 2] {
        let mut symbols = self.by_address.iter();
        for (start, symbol) in symbols.by_ref() {
            if base_name(symbol) == name {
                // The last symbol has no end: no range rather than an unbounded one.
                return symbols.next().map_or([0, 0], |(end, _)| [*start, *end]);
            }
        }
        [0, 0]
    }

    /// Where the kernel side may tell a probe by its caller alone (`ProbeSites`): only
    /// stacks that `classify` would call a probe of one of `PROBE_CALLERS` (the first function
    /// of each name; a check from another clone takes its whole stack).
    pub fn probe_sites(&self) -> ProbeSites {
        ProbeSites { checker: self.range(CHECKER), callers: PROBE_CALLERS.map(|name| self.range(name)) }
    }
}

/// What a check the kernel side recognised at `ProbeSites::callers[i]` (`PROBE_SITE_STACK +
/// i`) says: what `classify` makes of a stack whose frames are `CHECKER`, then that caller.
pub fn probe_site(stack_id: u32) -> Option<CheckSite> {
    let i = stack_id.checked_sub(PROBE_SITE_STACK)? as usize;
    PROBE_CALLERS.get(i).map(|caller| CheckSite { caller: caller.to_string(), probe: true })
}

/// Whether /proc/kallsyms shows this process real addresses: it shows zeros to a process
/// without CAP_SYSLOG (or to everyone under kernel.kptr_restrict=2). The first lines may be
/// zero anyway: per-CPU symbols start at 0 (`fixed_percpu_data` on kernels before 6.15).
pub fn symbols_visible() -> bool {
    use std::io::BufRead as _;
    let Ok(file) = std::fs::File::open("/proc/kallsyms") else { return false };
    std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.split_whitespace().next().and_then(|a| u64::from_str_radix(a, 16).ok()).is_some_and(|a| a != 0))
}

/// What a capability check's stack says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSite {
    /// The first function outside the capability layer.
    pub caller: String,
    /// The check was a probe: it cannot justify granting the capability.
    pub probe: bool,
}

/// Classifies a stack, innermost frame first.
pub fn classify(frames: &[String]) -> CheckSite {
    let mut probe = false;
    for frame in frames {
        let name = base_name(frame);
        if is_tracing_frame(name) {
            continue;
        }
        if CAPABILITY_LAYER.contains(&name) {
            probe |= name.contains("noaudit");
            continue;
        }
        probe |= PROBE_CALLERS.contains(&name);
        return CheckSite { caller: name.to_string(), probe };
    }
    CheckSite { caller: "?".into(), probe }
}

/// `foo.isra.0` and `foo.constprop.0` are compiler clones of `foo`.
fn base_name(frame: &str) -> &str {
    frame.split('.').next().unwrap_or(frame)
}

/// Frames of the hook itself: BPF programs and trampolines (fexit), tracepoint plumbing, and
/// kprobe/kretprobe handlers (`kprobe_ftrace_handler`, `arch_rethook_trampoline`, ...).
fn is_tracing_frame(name: &str) -> bool {
    ["kprobe", "__kprobe", "kretprobe", "__kretprobe", "rethook", "arch_rethook", "ftrace", "__ftrace"].iter().any(|p| name.starts_with(p))
        || name.starts_with("bpf_")
        || name.starts_with("__bpf_")
        || name.starts_with("perf_")
        || name.starts_with("trace_")
        || name.starts_with("__traceiter_")
        || name.starts_with("__do_trace")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_noaudit_wrapper_makes_a_probe() {
        let site = classify(&frames(&["cap_capable", "security_capable", "has_ns_capability_noaudit", "some_caller"]));
        assert_eq!(site, CheckSite { caller: "some_caller".into(), probe: true });
    }

    #[test]
    fn overcommit_accounting_is_a_probe() {
        let site = classify(&frames(&["cap_capable", "cap_vm_enough_memory", "security_vm_enough_memory_mm", "mmap_region"]));
        assert_eq!(site, CheckSite { caller: "cap_vm_enough_memory".into(), probe: true });
    }

    #[test]
    fn a_check_told_at_a_probe_site_reads_as_its_two_frames_would() {
        for (i, caller) in PROBE_CALLERS.iter().enumerate() {
            let told = probe_site(PROBE_SITE_STACK + i as u32);
            assert_eq!(told, Some(classify(&frames(&[CHECKER, caller, "do_mmap"]))), "{caller}");
        }
        for id in [0, 5, profiler_common::MAX_CAP_STACKS - 1, profiler_common::NO_STACK - 1, profiler_common::NO_STACK] {
            assert_eq!(probe_site(id), None, "{id}");
        }
    }

    #[test]
    fn a_function_spans_up_to_the_next_symbol() {
        let by_address = [(0x100, "cap_capable"), (0x180, "ns_capable"), (0x200, "__vm_enough_memory.constprop.0"), (0x260, "_etext")];
        let symbols = Symbols { by_address: by_address.iter().map(|&(a, n)| (a, n.to_string())).collect() };
        let sites = symbols.probe_sites();
        assert_eq!(sites.checker, [0x100, 0x180]);
        assert_eq!(sites.callers, [[0, 0], [0, 0], [0x200, 0x260]]);
        // The last symbol has no known end.
        assert_eq!(symbols.range("_etext"), [0, 0]);
    }

    #[test]
    fn a_plain_check_names_its_caller() {
        let site = classify(&frames(&["cap_capable", "security_capable", "ns_capable", "chown_common.isra.0", "do_fchownat"]));
        assert_eq!(site, CheckSite { caller: "chown_common".into(), probe: false });
    }
}
