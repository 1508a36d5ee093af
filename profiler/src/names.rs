//! Names of kernel numbers: syscalls per ABI (from the `syscalls` crate's tables, generated
//! from the kernel's own syscall tables) and capabilities (from the `caps` crate).

use profiler_common::abi;

/// The profile's name of the native ABI.
pub const NATIVE_ABI: &str = "x86_64";

/// The profile's name of a recorded ABI.
pub fn abi_name(abi_index: u32) -> &'static str {
    match abi_index {
        abi::IA32 => "i386",
        abi::X32 => "x32",
        _ => NATIVE_ABI,
    }
}

/// The `SystemCallArchitectures=` name of a profile ABI.
pub fn systemd_arch(abi_name: &str) -> &str {
    match abi_name {
        "i386" => "x86",
        other => other,
    }
}

/// A syscall's name in the given ABI, or `syscall_N` when the table has no such number.
pub fn syscall_name(abi_index: u32, nr: u32) -> String {
    let name = match abi_index {
        abi::IA32 => syscalls::x86::Sysno::new(nr as usize).map(|s| s.name()),
        // x32 shares the x86_64 numbering below 512.
        _ => syscalls::x86_64::Sysno::new(nr as usize).map(|s| s.name()),
    };
    name.map_or_else(|| format!("syscall_{nr}"), str::to_string)
}

/// `CAP_CHOWN` for 0, and so on; `CAP_N` for numbers newer than the table.
pub fn capability_name(cap: u32) -> String {
    caps::all()
        .into_iter()
        .find(|c| u32::from(c.index()) == cap)
        .map_or_else(|| format!("CAP_{cap}"), |c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_differ_by_abi() {
        assert_eq!(syscall_name(abi::NATIVE, 0), "read");
        assert_eq!(syscall_name(abi::NATIVE, 92), "chown");
        assert_eq!(syscall_name(abi::NATIVE, 260), "fchownat");
        assert_eq!(syscall_name(abi::IA32, 3), "read");
        assert_eq!(syscall_name(abi::IA32, 0), "restart_syscall");
        assert_eq!(syscall_name(abi::NATIVE, 511), "syscall_511");
    }

    #[test]
    fn capability_names_follow_the_kernel_numbers() {
        assert_eq!(capability_name(0), "CAP_CHOWN");
        assert_eq!(capability_name(1), "CAP_DAC_OVERRIDE");
        assert_eq!(capability_name(13), "CAP_NET_RAW");
        assert_eq!(capability_name(21), "CAP_SYS_ADMIN");
        assert_eq!(capability_name(40), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(capability_name(63), "CAP_63");
    }
}
