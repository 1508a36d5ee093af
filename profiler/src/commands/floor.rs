//! `profiler floor` (hidden, for `cargo xtask bench`): holds the empty program on the syscall
//! hook until SIGINT or SIGTERM, so a benchmark can measure what the hook alone costs.

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::recorder::probes::Probes;

pub fn run() -> anyhow::Result<()> {
    let attached = Probes::floor()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        eprintln!("floor attached: an empty tp_btf program on sys_exit");
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        anyhow::Ok(())
    })?;
    drop(attached);
    Ok(())
}
