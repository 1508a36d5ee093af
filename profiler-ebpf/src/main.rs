//! The profiler's kernel programs: observe and aggregate, never decide or deny.
//!
//! Every program asks `filter` first whether the current task is watched; only watched tasks
//! touch the aggregation maps. Only new paths reach userspace as events, after an in-kernel
//! dedup; everything else is aggregated in maps the collector reads.
#![no_std]
#![no_main]

mod args;
mod caps;
mod cgroup_hooks;
mod filter;
mod lifecycle;
mod observations;
mod paths;
mod regs;
mod syscalls;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// The address of a tracepoint record, for its `__data_loc` fields (offsets into the record).
#[inline(always)]
pub fn context_base(ctx: &aya_ebpf::programs::TracePointContext) -> usize {
    use aya_ebpf::EbpfContext as _;
    ctx.as_ptr() as usize
}

/// Required by the BPF target's linker for a `no_std` binary.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
