//! Turns what the kernel programs aggregated into a `Profile`: sums per-CPU counters, names
//! syscalls, capabilities and executables, and reads capability call stacks.

use std::collections::{BTreeMap, BTreeSet};

use aya::maps::{Array, HashMap, MapError, PerCpuArray, PerCpuHashMap, StackTraceMap};
use log::{debug, warn};
use profiler_common::{
    CallerSlot, CapCounts, CapKey, EXE_SLOT_OVERFLOW, ExeInfo, ExeSyscalls, KernelPath, NO_STACK, ObservationKey, SYSCALL_SLOTS,
    SyscallCounts, abi, addr_class, loss, map_names, observation,
};

use super::{
    kernel_stack::{self, CheckSite, Symbols},
    path_log::PathLog,
    probes::{LoadError, Probes},
};
use crate::profile::{CallerUse, CapabilityUse, DeviceUse, ExecutableUse, ItemUse, PathUse, SocketUse, SyscallUse, names};

/// The profile's name for executables that could not be told apart.
pub const OTHER_EXECUTABLES: &str = "(other executables)";

/// Everything observed so far, named.
#[derive(Debug, Default)]
pub struct Observations {
    pub syscalls: BTreeMap<String, BTreeMap<String, SyscallUse>>,
    pub capabilities: BTreeMap<String, CapabilityUse>,
    pub executables: BTreeMap<String, ExecutableUse>,
    pub losses: BTreeMap<String, u64>,
    pub paths: BTreeMap<String, PathUse>,
    pub families: BTreeMap<String, ItemUse>,
    pub namespaces: BTreeMap<String, ItemUse>,
    pub devices: BTreeMap<String, DeviceUse>,
    pub sockets: BTreeMap<String, SocketUse>,
    pub acts: BTreeMap<String, ItemUse>,
    pub peers: BTreeMap<String, ItemUse>,
    pub errors: BTreeMap<String, ItemUse>,
    pub refused: BTreeMap<String, ItemUse>,
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> LoadError {
    move |source| LoadError::Map { map, source }
}

/// What each capability check's stack was found to mean, by stack id: stacks never change
/// once stored, so each is classified once per recording.
#[derive(Debug, Default)]
pub struct SiteCache(BTreeMap<u32, CheckSite>);

/// Reads every aggregation map, and takes the paths drained from the ring buffer.
pub fn collect(probes: &mut Probes, path_log: &PathLog, sites: &mut SiteCache) -> Result<Observations, LoadError> {
    let exe_names = executable_names(probes)?;
    let exe_name = |slot: u32| exe_names.get(&slot).map_or(OTHER_EXECUTABLES, String::as_str).to_string();
    let mut obs = Observations::default();

    let execs: PerCpuArray<_, u64> = probes.map(map_names::EXE_EXECS)?;
    for (&slot, name) in &exe_names {
        let count = execs.get(&slot, 0).map(|v| v.iter().sum()).unwrap_or(0);
        obs.executables.insert(name.clone(), ExecutableUse { execs: count, seen: None, coverage: None });
    }

    let users = syscall_users(probes, &exe_names)?;
    let counts: PerCpuArray<_, SyscallCounts> = probes.map(map_names::SYSCALL_COUNTS)?;
    let counts = counts.get(&0, 0).map_err(map_err(map_names::SYSCALL_COUNTS))?;
    for slot in 0..SYSCALL_SLOTS {
        let count: u64 = counts.iter().map(|cpu| cpu.calls[slot as usize]).sum();
        let executables: BTreeSet<String> =
            users.iter().filter(|(_, used)| used.used[slot as usize] != 0).map(|(s, _)| exe_name(*s)).collect();
        if count == 0 && executables.is_empty() {
            continue;
        }
        let (abi_index, nr) = (slot / abi::NR_LIMIT, slot % abi::NR_LIMIT);
        obs.syscalls
            .entry(names::abi_name(abi_index).to_string())
            .or_default()
            .insert(names::syscall_name(abi_index, nr), SyscallUse { count, executables, seen: None, coverage: None });
    }

    collect_capabilities(probes, &exe_name, sites, &mut obs)?;
    collect_observations(probes, &exe_name, &mut obs)?;
    // Peer addresses, and error returns as `syscall ERRNO`.
    collect_named(probes, map_names::PEERS, |k| names::peer_address(k.sub, k.value), &exe_name, &mut obs.peers)?;
    collect_named(probes, map_names::ERRORS, |k| names::error_name(k.value as u32, k.sub), &exe_name, &mut obs.errors)?;
    for (path, entry) in &path_log.entries {
        obs.paths.insert(
            path.clone(),
            PathUse {
                ops: entry.ops.clone(),
                failures: entry.failures.clone(),
                executables: entry.exe_slots.iter().map(|&s| exe_name(s)).collect(),
                incomplete: entry.incomplete,
                seen: None,
                coverage: None,
            },
        );
    }
    if path_log.malformed > 0 {
        obs.losses.insert("path_records_malformed".into(), path_log.malformed);
    }

    let skipped = probes.syscall_hook_misses();
    if skipped > 0 {
        obs.losses.insert("syscall_hook_runs_skipped".into(), skipped);
    }
    let unadopted = probes.tasks_unadopted();
    let losses: PerCpuArray<_, u64> = probes.map(map_names::LOSSES)?;
    for (index, name) in [
        (loss::TASKS_FULL, "tasks_table_full"),
        (loss::EXECUTABLES_FULL, "executables_table_full"),
        (loss::CAP_CHECKS_FULL, "capability_checks_table_full"),
        (loss::CAP_STACKS_FULL, "capability_stacks_unstored"),
        (loss::SYSCALL_OUT_OF_RANGE, "syscalls_out_of_range"),
        // Named as profiles before the rename call it, so old and new ones merge into one count.
        (loss::OBSERVATIONS_FULL, "signals_table_full"),
        (loss::PATH_EVENTS_LOST, "path_records_lost"),
        (loss::PATH_UNREADABLE, "paths_unreadable"),
        (loss::PEERS_FULL, "peers_table_full"),
        (loss::ERRORS_FULL, "errors_table_full"),
    ] {
        let mut lost: u64 = losses.get(&index, 0).map(|v| v.iter().sum()).unwrap_or(0);
        if index == loss::TASKS_FULL {
            lost += unadopted;
        }
        if lost > 0 {
            obs.losses.insert(name.to_string(), lost);
        }
    }
    Ok(obs)
}

fn executable_names(probes: &mut Probes) -> Result<BTreeMap<u32, String>, LoadError> {
    let map: HashMap<_, KernelPath, ExeInfo> = probes.map(map_names::EXECUTABLES)?;
    let mut names = BTreeMap::new();
    for entry in map.iter() {
        let (path, info) = entry.map_err(map_err(map_names::EXECUTABLES))?;
        let len = path.bytes.iter().position(|&b| b == 0).unwrap_or(path.bytes.len());
        names.insert(info.slot, String::from_utf8_lossy(&path.bytes[..len]).into_owned());
    }
    Ok(names)
}

/// The per-executable syscall marks of every slot that has any.
///
/// Only slots a task can carry are read: every one is claimed in SLOT_CLAIMS before any task
/// gets it (a claim is given back only by the program that lost a race to name the same
/// executable, before any task had it), or is the overflow slot. Reading all 256 took a
/// syscall each, every 5 s.
fn syscall_users(probes: &mut Probes, exe_names: &BTreeMap<u32, String>) -> Result<Vec<(u32, ExeSyscalls)>, LoadError> {
    let claims: HashMap<_, u32, u8> = probes.map(map_names::SLOT_CLAIMS)?;
    let mut slots: BTreeSet<u32> = claims.keys().collect::<Result<_, _>>().map_err(map_err(map_names::SLOT_CLAIMS))?;
    slots.extend(exe_names.keys());
    slots.insert(EXE_SLOT_OVERFLOW);
    let map: Array<_, ExeSyscalls> = probes.map(map_names::EXE_SYSCALLS)?;
    let mut users = Vec::new();
    for slot in slots {
        let used = map.get(&slot, 0).map_err(map_err(map_names::EXE_SYSCALLS))?;
        if used.used.iter().any(|&b| b != 0) {
            users.push((slot, used));
        }
    }
    Ok(users)
}

fn collect_capabilities(
    probes: &mut Probes,
    exe_name: &dyn Fn(u32) -> String,
    sites: &mut SiteCache,
    obs: &mut Observations,
) -> Result<(), LoadError> {
    let checks: Vec<(CapKey, CapCounts)> = {
        let map: PerCpuHashMap<_, CapKey, CapCounts> = probes.map(map_names::CAP_CHECKS)?;
        let mut checks = Vec::new();
        for entry in map.iter() {
            let (key, per_cpu) = entry.map_err(map_err(map_names::CAP_CHECKS))?;
            let total = per_cpu
                .iter()
                .fold(CapCounts::default(), |acc, c| CapCounts { granted: acc.granted + c.granted, denied: acc.denied + c.denied });
            checks.push((key, total));
        }
        checks
    };
    if checks.is_empty() {
        return Ok(());
    }
    // The kernel's symbol table is large: read only when a new stack needs naming, and let go.
    if checks.iter().any(|(key, _)| !sites.0.contains_key(&key.stack_id)) {
        let symbols = Symbols::load().map_err(|e| warn!("cannot read /proc/kallsyms: {e}")).ok();
        let stacks: StackTraceMap<_> = probes.map(map_names::CAP_STACKS)?;
        for (key, _) in &checks {
            sites.0.entry(key.stack_id).or_insert_with(|| check_site(&stacks, symbols.as_ref(), key.stack_id));
        }
    }
    if log::log_enabled!(log::Level::Debug) && checks.iter().any(|(key, _)| kernel_stack::probe_site(key.stack_id).is_some()) {
        log_caller_slots(probes)?;
    }
    for (key, counts) in checks {
        let site = sites.0[&key.stack_id].clone();
        let cap = obs.capabilities.entry(names::capability_name(key.cap)).or_default();
        if site.probe {
            cap.probes += counts.granted + counts.denied;
        } else {
            cap.granted += counts.granted;
            cap.denied += counts.denied;
        }
        cap.executables.insert(exe_name(key.exe_slot));
        let caller = cap.callers.entry(site.caller).or_insert(CallerUse { probe: site.probe, ..Default::default() });
        caller.granted += counts.granted;
        caller.denied += counts.denied;
    }
    Ok(())
}

/// Where each CPU found `cap_capable`'s return address (`CallerSlot`), for debugging the
/// probe sites.
fn log_caller_slots(probes: &mut Probes) -> Result<(), LoadError> {
    let map: PerCpuArray<_, CallerSlot> = probes.map(map_names::CALLER_SLOT)?;
    let per_cpu = map.get(&0, 0).map_err(map_err(map_names::CALLER_SLOT))?;
    for (cpu, slot) in per_cpu.iter().enumerate() {
        debug!(
            "probe site caller slot on CPU {cpu}: {:#x} + {} ({} confirmations, {} failures), holding {:#x}",
            slot.ip, slot.offset, slot.confirmed, slot.failures, slot.caller
        );
    }
    Ok(())
}

fn check_site(stacks: &StackTraceMap<&mut aya::maps::MapData>, symbols: Option<&Symbols>, id: u32) -> CheckSite {
    let unknown = CheckSite { caller: "(unknown: stack not stored)".into(), probe: false };
    if id == NO_STACK {
        return unknown;
    }
    if let Some(site) = kernel_stack::probe_site(id) {
        return site;
    }
    let (Some(symbols), Ok(stack)) = (symbols, stacks.get(&id, 0)) else {
        return unknown;
    };
    let frames = symbols.names(stack.frames().iter().map(|f| f.ip));
    log::debug!("capability check stack {id}: {}", frames.join(" < "));
    kernel_stack::classify(&frames)
}

/// Sums a per-executable table (`PEERS`, `ERRORS`) into `items`, each key named by `name`.
fn collect_named(
    probes: &mut Probes,
    map_name: &'static str,
    name: impl Fn(&ObservationKey) -> String,
    exe_name: &dyn Fn(u32) -> String,
    items: &mut BTreeMap<String, ItemUse>,
) -> Result<(), LoadError> {
    let map: PerCpuHashMap<_, ObservationKey, u64> = probes.map(map_name)?;
    for entry in map.iter() {
        let (key, per_cpu) = entry.map_err(map_err(map_name))?;
        let item = items.entry(name(&key)).or_default();
        item.count += per_cpu.iter().sum::<u64>();
        item.executables.insert(exe_name(key.exe_slot));
    }
    Ok(())
}

/// The errnos with which a sandbox or the kernel refuses a family or a namespace: not
/// permitted, not supported, not known.
const REFUSAL_ERRNOS: [u16; 8] = [1, 13, 22, 38, 93, 94, 95, 97];

/// Names the numeric observations of `OBSERVATIONS`.
fn collect_observations(probes: &mut Probes, exe_name: &dyn Fn(u32) -> String, obs: &mut Observations) -> Result<(), LoadError> {
    let map: PerCpuHashMap<_, ObservationKey, u64> = probes.map(map_names::OBSERVATIONS)?;
    for entry in map.iter() {
        let (key, per_cpu) = entry.map_err(map_err(map_names::OBSERVATIONS))?;
        let count: u64 = per_cpu.iter().sum();
        let exe = exe_name(key.exe_slot);
        let item = |table: &mut BTreeMap<String, ItemUse>, name: String| {
            let use_ = table.entry(name).or_default();
            use_.count += count;
            use_.executables.insert(exe.clone());
        };
        // A family or namespace asked for and not given (`sub` is the errno) was refused: the
        // service ran without it, so it is kept apart from what was used.
        // Only the errnos a refusal gets; another failure (EMFILE, ENOBUFS, ...) may pass
        // next time, so the attempt still counts as a use.
        let errno = REFUSAL_ERRNOS.contains(&key.sub).then(|| names::errno_name(key.sub));
        let used_or_refused = |obs: &mut Observations, what: &str, name: &str| match (&errno, what) {
            (None, "family") => item(&mut obs.families, name.to_string()),
            (None, _) => item(&mut obs.namespaces, name.to_string()),
            (Some(errno), _) => item(&mut obs.refused, format!("{what} {name} {errno}")),
        };
        match key.kind {
            observation::SOCKET_FAMILY => used_or_refused(obs, "family", &names::family_name(key.value as u32)),
            observation::NAMESPACE => {
                for kind in names::namespace_kinds(key.value) {
                    used_or_refused(obs, "namespace", kind);
                }
            }
            observation::SETNS => {
                let kinds = names::namespace_kinds(key.value);
                if kinds.is_empty() {
                    used_or_refused(obs, "namespace", "setns-any");
                }
                for kind in kinds {
                    used_or_refused(obs, "namespace", kind);
                }
            }
            observation::MMAP_WX => item(&mut obs.acts, "mmap-write-exec".into()),
            observation::MPROTECT_EXEC => item(&mut obs.acts, "mprotect-exec".into()),
            observation::PERSONALITY => item(&mut obs.acts, format!("personality {:#x}", key.value)),
            observation::REALTIME => item(&mut obs.acts, format!("realtime {}", names::sched_policy(key.value))),
            observation::SUID_MODE => item(&mut obs.acts, format!("setuid-mode {:05o}", key.value)),
            observation::PRIVILEGED_EXEC => item(&mut obs.acts, "setuid-exec".into()),
            observation::ABSTRACT_UNIX => {
                item(&mut obs.acts, if key.sub == 0 { "abstract-unix bind" } else { "abstract-unix connect" }.into())
            }
            observation::DEVICE => {
                let kind = if key.sub >> 8 == 1 { "block" } else { "char" };
                let (major, minor) = ((key.value >> 32) as u32, key.value as u32);
                let access = names::device_access(key.sub as u32 & 0xff);
                let dev = obs.devices.entry(format!("{kind} {major}:{minor}")).or_insert_with(|| DeviceUse {
                    kind: kind.into(),
                    major,
                    minor,
                    ..Default::default()
                });
                dev.access = names::merge_access(&dev.access, &access);
                dev.count += count;
                dev.executables.insert(exe);
            }
            observation::BIND | observation::CONNECT => {
                let op = if key.kind == observation::BIND { "bind" } else { "connect" };
                let family = if key.sub == 10 { "ipv6" } else { "ipv4" };
                let protocol = match (key.value >> 24) & 0xff {
                    6 => "tcp".to_string(),
                    17 => "udp".to_string(),
                    n => n.to_string(),
                };
                let scope = match key.value & 0xff {
                    addr_class::ANY => "any",
                    addr_class::LOOPBACK => "loopback",
                    _ => "other",
                };
                let port = ((key.value >> 8) & 0xffff) as u16;
                let sock = obs.sockets.entry(format!("{op} {family} {protocol} {scope}:{port}")).or_insert_with(|| SocketUse {
                    op: op.into(),
                    family: family.into(),
                    protocol,
                    scope: scope.into(),
                    port,
                    ..Default::default()
                });
                sock.count += count;
                sock.executables.insert(exe);
            }
            _ => {}
        }
    }
    Ok(())
}
