//! Cgroup hooks: device accesses, and inet binds and connects of watched tasks.
//!
//! These run for every task of the cgroup they are attached to; they only look and always
//! return "allow" (1). They are attached in multi mode, so systemd's own programs (DeviceAllow=,
//! IPAddressDeny=, SocketBindDeny=) still run beside them and still decide.

use aya_ebpf::{
    macros::{cgroup_device, cgroup_sock_addr},
    programs::{DeviceContext, SockAddrContext},
};
use profiler_common::{addr_class, observation};

use crate::{
    filter::watched_task,
    observations::{note, note_peer},
};

const ALLOW: i32 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

#[cgroup_device]
pub fn device_access(ctx: DeviceContext) -> i32 {
    if let Some(task) = watched_task() {
        // SAFETY: the context the kernel passed; `task` points into TASKS.
        unsafe {
            let dev = &*ctx.device;
            // access_type: device type in the low 16 bits, access (mknod/read/write) above.
            let sub = ((dev.access_type & 0xffff) << 8 | (dev.access_type >> 16) & 0xff) as u16;
            let value = (dev.major as u64) << 32 | dev.minor as u64;
            note(observation::DEVICE, sub, value, (*task).exe_slot);
        }
    }
    ALLOW
}

#[cgroup_sock_addr(bind4)]
pub fn bind4(ctx: SockAddrContext) -> i32 {
    inet(&ctx, observation::BIND, AF_INET)
}

#[cgroup_sock_addr(bind6)]
pub fn bind6(ctx: SockAddrContext) -> i32 {
    inet(&ctx, observation::BIND, AF_INET6)
}

#[cgroup_sock_addr(connect4)]
pub fn connect4(ctx: SockAddrContext) -> i32 {
    inet(&ctx, observation::CONNECT, AF_INET)
}

#[cgroup_sock_addr(connect6)]
pub fn connect6(ctx: SockAddrContext) -> i32 {
    inet(&ctx, observation::CONNECT, AF_INET6)
}

#[inline(always)]
fn inet(ctx: &SockAddrContext, kind: u16, family: u16) -> i32 {
    let Some(task) = watched_task() else {
        return ALLOW;
    };
    // SAFETY: the context the kernel passed; each field is a 4-byte aligned load the verifier
    // allows for this attach type. Addresses and the port are in network byte order.
    unsafe {
        let addr = &*ctx.sock_addr;
        let port = u16::from_be((addr.user_port & 0xffff) as u16) as u64;
        let ip6 = || (u32::from_be(addr.user_ip6[0]) as u64) << 32 | u32::from_be(addr.user_ip6[1]) as u64;
        let class = if family == AF_INET {
            let ip = addr.user_ip4;
            if ip == 0 {
                addr_class::ANY
            } else if ip & 0xff == 127 {
                addr_class::LOOPBACK
            } else {
                addr_class::OTHER
            }
        } else {
            let (a, b, c, d) = (addr.user_ip6[0], addr.user_ip6[1], addr.user_ip6[2], addr.user_ip6[3]);
            if a | b | c | d == 0 {
                addr_class::ANY
            } else if a | b | c == 0 && d == u32::from_be(1) {
                addr_class::LOOPBACK
            } else if a | b == 0 && c == u32::from_be(0xffff) && d & 0xff == 127 {
                addr_class::LOOPBACK
            } else {
                addr_class::OTHER
            }
        };
        let value = (addr.protocol as u64 & 0xff) << 24 | port << 8 | class;
        note(kind, family, value, (*task).exe_slot);
        // Peers are kept for IPAddressAllow= pinning; a bind names no peer.
        if kind == observation::CONNECT && class == addr_class::OTHER {
            let peer = if family == AF_INET { u32::from_be(addr.user_ip4) as u64 } else { ip6() };
            note_peer(family, peer, (*task).exe_slot);
        }
    }
    ALLOW
}
