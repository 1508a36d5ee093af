//! `profiler floor` (hidden, for `cargo xtask bench`): holds the empty program on the syscall
//! hook until SIGINT or SIGTERM, so a benchmark can measure what the hook alone costs.

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::recorder::{
    hooks::{HookChoice as _, SyscallHook},
    probes::Probes,
};

/// `hook`: `auto` (the one `record` would take here), `fexit` or `tracepoint`.
pub fn run(hook: &str) -> anyhow::Result<()> {
    let candidates = match hook {
        "auto" => SyscallHook::candidates().map_err(anyhow::Error::msg)?.0,
        name => vec![
            SyscallHook::ALL
                .iter()
                .copied()
                .find(|h| h.name() == name)
                .with_context(|| format!("--hook {name:?}: expected auto, fexit or tracepoint"))?,
        ],
    };
    let mut refused = Vec::new();
    let (hook, attached) = loop {
        let Some(hook) = candidates.get(refused.len()).copied() else {
            anyhow::bail!("no syscall hook could be attached: {}", refused.join("; "));
        };
        match Probes::floor(hook) {
            Ok(attached) => break (hook, attached),
            Err(e) => refused.push(format!("{}: {e}", hook.name())),
        }
    };
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
