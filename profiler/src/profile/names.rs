//! Names of kernel numbers: syscalls per ABI (from the `syscalls` crate's tables, generated
//! from the kernel's own syscall tables) and capabilities (from the `caps` crate).

use profiler_common::{abi, errno};

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
        // x32 shares the x86_64 numbering below 512, and has calls of its own above.
        abi::X32 if nr >= 512 => X32_CALLS.get(nr as usize - 512).copied(),
        _ => syscalls::x86_64::Sysno::new(nr as usize).map(|s| s.name()),
    };
    name.map_or_else(|| format!("syscall_{nr}"), str::to_string)
}

/// x32's own calls, 512 on (arch/x86/entry/syscalls/syscall_64.tbl, the `x32` lines): the
/// calls whose arguments differ for x32, under the names systemd's filters use.
const X32_CALLS: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];

/// `CAP_CHOWN` for 0, and so on; `CAP_N` for numbers newer than the table.
pub fn capability_name(cap: u32) -> String {
    caps::all().into_iter().find(|c| u32::from(c.index()) == cap).map_or_else(|| format!("CAP_{cap}"), |c| c.to_string())
}

/// `AF_INET` for 2, and so on (include/linux/socket.h); `AF_N` for numbers not named here.
pub fn family_name(family: u32) -> String {
    const NAMES: &[&str] = &[
        "AF_UNSPEC",
        "AF_UNIX",
        "AF_INET",
        "AF_AX25",
        "AF_IPX",
        "AF_APPLETALK",
        "AF_NETROM",
        "AF_BRIDGE",
        "AF_ATMPVC",
        "AF_X25",
        "AF_INET6",
        "AF_ROSE",
        "AF_DECnet",
        "AF_NETBEUI",
        "AF_SECURITY",
        "AF_KEY",
        "AF_NETLINK",
        "AF_PACKET",
        "AF_ASH",
        "AF_ECONET",
        "AF_ATMSVC",
        "AF_RDS",
        "AF_SNA",
        "AF_IRDA",
        "AF_PPPOX",
        "AF_WANPIPE",
        "AF_LLC",
        "AF_IB",
        "AF_MPLS",
        "AF_CAN",
        "AF_TIPC",
        "AF_BLUETOOTH",
        "AF_IUCV",
        "AF_RXRPC",
        "AF_ISDN",
        "AF_PHONET",
        "AF_IEEE802154",
        "AF_CAIF",
        "AF_ALG",
        "AF_NFC",
        "AF_VSOCK",
        "AF_KCM",
        "AF_QIPCRTR",
        "AF_SMC",
        "AF_XDP",
        "AF_MCTP",
    ];
    NAMES.get(family as usize).map_or_else(|| format!("AF_{family}"), |n| n.to_string())
}

/// The CLONE_NEW* flags (include/uapi/linux/sched.h) and their RestrictNamespaces= names.
pub const NAMESPACES: &[(u64, &str)] = &[
    (0x0002_0000, "mnt"),
    (0x0200_0000, "cgroup"),
    (0x0400_0000, "uts"),
    (0x0800_0000, "ipc"),
    (0x1000_0000, "user"),
    (0x2000_0000, "pid"),
    (0x4000_0000, "net"),
    (0x80, "time"),
];

/// The RestrictNamespaces= names of the CLONE_NEW* bits in `flags`.
pub fn namespace_kinds(flags: u64) -> Vec<&'static str> {
    NAMESPACES.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, name)| *name).collect()
}

/// The CLONE_NEW* flag of a RestrictNamespaces= name.
pub fn namespace_flag(name: &str) -> Option<u64> {
    NAMESPACES.iter().find(|(_, n)| *n == name).map(|(flag, _)| *flag)
}

/// A peer as IPAddressAllow= takes it: an IPv4 address, or an IPv6 /64 network (the kernel
/// side keeps the first 64 bits).
pub fn peer_address(family: u16, value: u64) -> String {
    if family == libc::AF_INET6 as u16 {
        let prefix = std::net::Ipv6Addr::from((value as u128) << 64);
        format!("{prefix}/64")
    } else {
        std::net::Ipv4Addr::from(value as u32).to_string()
    }
}

/// `mlockall EPERM` for an error return of the syscall in `slot`; other ABIs than the native
/// one are prefixed (`i386:socketcall EPERM`), as syscalls are named in reports.
pub fn error_name(slot: u32, errno: u16) -> String {
    let (abi_index, nr) = (slot / abi::NR_LIMIT, slot % abi::NR_LIMIT);
    let call = syscall_name(abi_index, nr);
    let errno = errno_name(errno);
    match abi_index {
        abi::NATIVE => format!("{call} {errno}"),
        _ => format!("{}:{call} {errno}", abi_name(abi_index)),
    }
}

/// `EPERM` for 1, and so on for the errnos recorded per syscall; `errno N` for others.
pub fn errno_name(errno: u16) -> String {
    // Besides the recorded ones, those a family or namespace attempt may get.
    const OTHERS: [(u16, &str); 4] = [(12, "ENOMEM"), (22, "EINVAL"), (24, "EMFILE"), (105, "ENOBUFS")];
    errno::RECORDED.iter().chain(&OTHERS).find(|(n, _)| *n == errno).map_or_else(|| format!("errno {errno}"), |(_, name)| name.to_string())
}

pub fn sched_policy(policy: u64) -> String {
    match policy {
        1 => "SCHED_FIFO".into(),
        2 => "SCHED_RR".into(),
        6 => "SCHED_DEADLINE".into(),
        n => format!("policy {n}"),
    }
}

/// DeviceAllow='s letters for the cgroup device access bits (mknod 1, read 2, write 4).
pub fn device_access(bits: u32) -> String {
    [(2, 'r'), (4, 'w'), (1, 'm')].iter().filter(|(b, _)| bits & b != 0).map(|(_, c)| *c).collect()
}

/// The union of two access strings, in `rwm` order.
pub fn merge_access(a: &str, b: &str) -> String {
    "rwm".chars().filter(|c| a.contains(*c) || b.contains(*c)).collect()
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
        assert_eq!((syscall_name(abi::X32, 512), syscall_name(abi::X32, 547)), ("rt_sigaction".into(), "pwritev2".into()));
        assert_eq!(syscall_name(abi::X32, 548), "syscall_548");
    }

    #[test]
    fn the_kernel_decoders_numbers_are_the_syscall_tables() {
        for (name, nr) in profiler_common::x86_64_nr::ALL {
            assert_eq!(syscall_name(abi::NATIVE, *nr as u32), name.to_ascii_lowercase(), "x86_64_nr::{name}");
        }
        assert_eq!(profiler_common::x86_64_nr::ALL.len(), 62);
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

    #[test]
    fn families_namespaces_and_devices_are_named_as_systemd_names_them() {
        assert_eq!(family_name(1), "AF_UNIX");
        assert_eq!(family_name(10), "AF_INET6");
        assert_eq!(family_name(16), "AF_NETLINK");
        assert_eq!(family_name(99), "AF_99");
        assert_eq!(namespace_kinds(0x0002_0000 | 0x4000_0000), ["mnt", "net"]);
        assert_eq!(device_access(2 | 4), "rw");
        assert_eq!(merge_access("r", "wm"), "rwm");
    }

    #[test]
    fn errors_name_the_call_and_the_errno() {
        assert_eq!(error_name(151, 1), "mlockall EPERM");
        assert_eq!(error_name(abi::IA32 * abi::NR_LIMIT + 102, 97), "i386:socketcall EAFNOSUPPORT");
        assert_eq!(error_name(2, 200), "open errno 200");
    }

    #[test]
    fn peers_are_named_as_ip_address_allow_takes_them() {
        assert_eq!(peer_address(2, 0xc000_0201), "192.0.2.1");
        assert_eq!(peer_address(10, 0x2001_0db8_0001_0002), "2001:db8:1:2::/64");
    }
}
