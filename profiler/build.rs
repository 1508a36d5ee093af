//! Compiles the kernel programs (profiler-ebpf) for bpfel and leaves the object in OUT_DIR,
//! where `loader` embeds it.
//!
//! The toolchain recipe is DESIGN §2: Debian's rustc ships a precompiled `core` for the BPF
//! targets, so no `-Z build-std` (and no rust-src download) is needed. `cargo xtask build`
//! installs the pieces; this script only finds them and says what is missing.

use std::{env, path::PathBuf};

use anyhow::{Context as _, anyhow};

/// A rustup toolchain name `cargo xtask build` links to Debian's /usr toolchain.
const LINKED_TOOLCHAIN: &str = "profiler-bpf";

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=PROFILER_EBPF_TOOLCHAIN");
    println!("cargo:rerun-if-env-changed=PROFILER_CACHE");
    let metadata = cargo_metadata::MetadataCommand::new().no_deps().exec().context("reading the workspace metadata")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "profiler-ebpf")
        .ok_or_else(|| anyhow!("profiler-ebpf is not in the workspace"))?;
    let root_dir = ebpf.manifest_path.parent().ok_or_else(|| anyhow!("profiler-ebpf has no manifest directory"))?.to_string();

    put_bpf_linker_on_path()?;
    // aya_ebpf uses unstable features; allowing them for that one crate keeps stable rustc
    // and does not make aya-build switch to -Z build-std (which "1" would).
    if env::var_os("RUSTC_BOOTSTRAP").is_none() {
        // SAFETY: build scripts are single-threaded at this point.
        unsafe { env::set_var("RUSTC_BOOTSTRAP", "aya_ebpf") };
    }
    let toolchain = env::var("PROFILER_EBPF_TOOLCHAIN").unwrap_or_else(|_| LINKED_TOOLCHAIN.into());
    // The kernel programs log only in builds with the debug-probes feature.
    let features: &[&str] = if env::var_os("CARGO_FEATURE_DEBUG_PROBES").is_some() { &["debug-probes"] } else { &[] };
    let package = aya_build::Package { name: "profiler-ebpf", root_dir: &root_dir, features, ..Default::default() };
    aya_build::build_ebpf([package], aya_build::Toolchain::Custom(&toolchain)).with_context(|| {
        format!(
            "building the eBPF programs with toolchain {toolchain:?}; run `cargo xtask build` to \
             install bpf-linker and link Debian's BPF-capable rustc as {LINKED_TOOLCHAIN:?}"
        )
    })
}

/// bpf-linker lives in the build cache (PROFILER_CACHE, default /var/cache/profiler-build)
/// unless it is already on PATH.
fn put_bpf_linker_on_path() -> anyhow::Result<()> {
    let path = env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = env::split_paths(&path).collect();
    if dirs.iter().any(|d| d.join("bpf-linker").is_file()) {
        return Ok(());
    }
    let cache = env::var_os("PROFILER_CACHE").map_or_else(|| "/var/cache/profiler-build".into(), PathBuf::from);
    let bin = cache.join("bpf-linker/bin");
    if !bin.join("bpf-linker").is_file() {
        return Err(anyhow!("bpf-linker is neither on PATH nor in {}; run `cargo xtask build`", bin.display()));
    }
    dirs.insert(0, bin);
    // SAFETY: build scripts are single-threaded at this point.
    unsafe { env::set_var("PATH", env::join_paths(dirs)?) };
    Ok(())
}
