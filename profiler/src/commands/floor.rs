//! `profiler floor` (hidden, for `cargo xtask bench`): holds the empty program on the syscall
//! hook until SIGINT or SIGTERM, so a benchmark can measure what the hook alone costs.

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::recorder::{
    hooks::{HookChoice as _, SyscallHook},
    probes::Probes,
};

pub fn run(hook: &str) -> anyhow::Result<()> {
    let hook = SyscallHook::ALL
        .iter()
        .copied()
        .find(|h| h.name() == hook)
        .with_context(|| format!("--hook {hook:?}: expected tracepoint or fexit"))?;
    let attached = Probes::floor(hook)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        eprintln!("floor attached: an empty program on the syscall hook {}", hook.name());
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        anyhow::Ok(())
    })?;
    drop(attached);
    Ok(())
}
