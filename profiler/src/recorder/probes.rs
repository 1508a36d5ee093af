//! Loads the embedded kernel programs, fits them to the running kernel (tracepoint field
//! and struct member offsets), points them at a cgroup, and attaches them. The programs only
//! observe: none of them can change what a watched task may do.

use std::{collections::BTreeSet, fs, path::Path};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, ProgramArray, RingBuf},
    programs::{BtfTracePoint, CgroupAttachMode, CgroupDevice, CgroupSockAddr, FExit, KProbe, Program, TracePoint},
};
use log::{debug, info, warn};
use profiler_common::{
    CallerHint, EXE_SLOT_OVERFLOW, ExeInfo, FileId, KernelOffsets, KernelPath, PATH_LEN, ProbeSites, TargetConfig, TaskState, globals,
    map_names,
};

use super::{
    btf::Btf,
    cgroup::WatchedCgroup,
    exec_helpers,
    hooks::{CapabilityHook, HookChoice, SyscallHook},
    kernel_stack,
    tracefs::{self, TracefsError},
};

/// The object built from `profiler-ebpf` by build.rs.
static PROBES_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler-probes"));

/// Kernel BTF; overridable so tests can show the error on a kernel without it.
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the profiler must run as root to load eBPF programs (euid is {0})")]
    NotRoot(u32),
    #[error("this kernel has no BTF ({0} is missing; it needs CONFIG_DEBUG_INFO_BTF=y)")]
    NoBtf(String),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error("loading the eBPF object: {0}")]
    Object(#[source] aya::EbpfError),
    #[error("eBPF program {program}: {source}")]
    Program { program: &'static str, source: aya::programs::ProgramError },
    #[error("eBPF map {map}: {source}")]
    Map { map: &'static str, source: aya::maps::MapError },
    #[error("cannot open cgroup {0} to attach the device and socket hooks: {1}")]
    Cgroup(String, #[source] std::io::Error),
    #[error(
        "kernel symbol addresses in /proc/kallsyms read as zero (this process lacks CAP_SYSLOG, or \
         kernel.kptr_restrict is 2): a capability check could not be told from the kernel's own \
         probes, and CapabilityBoundingSet= would rest on evidence the recorder cannot read; run it \
         with CAP_SYSLOG"
    )]
    SymbolsHidden,
    #[error("reading the kernel programs' log (debug-probes): {0}")]
    Log(String),
    #[error("eBPF object has no {0}")]
    Missing(&'static str),
    #[error("reading the kernel's BTF to attach the BTF tracepoints and trampolines: {0}")]
    Btf(String),
    #[error("{kind}: {reason}")]
    Hook { kind: &'static str, reason: String },
    #[error(transparent)]
    KernelBtf(#[from] super::btf::BtfError),
}

/// The loaded programs and their maps.
pub struct Probes {
    pub(crate) ebpf: Ebpf,
    /// The kernel programs' log lines (`debug-probes` builds only).
    #[cfg(feature = "debug-probes")]
    log: aya_log::EbpfLogger<&'static dyn log::Log>,
    /// systemd's exec helpers (see `exec_helpers`): their execs arm no task.
    exec_helpers: BTreeSet<FileId>,
    /// Whether this kernel has the `capability:cap_capable` tracepoint.
    cap_tracepoint: bool,
    /// Whether the kernel side can read an exec's file (its BTF had every member of the path
    /// to it): without it, set-user-ID executions go unseen.
    exe_files: bool,
    /// The hook attached for capability checks, once attached.
    capability_hook: Option<CapabilityHook>,
    /// The hook attached for syscalls, once attached.
    syscall_hook: Option<SyscallHook>,
    /// Running threads adoption could not put in TASKS: lost, as the kernel side's
    /// `loss::TASKS_FULL` counts its own.
    tasks_unadopted: u64,
}

impl Probes {
    /// Checks the host, then loads (but does not attach) the programs.
    /// What loading needs from this process and kernel (root, BTF), checked before anything
    /// is created, so a run that cannot record leaves nothing behind.
    pub fn preflight() -> Result<String, LoadError> {
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(LoadError::NotRoot(euid));
        }
        let btf = std::env::var("PROFILER_KERNEL_BTF").unwrap_or_else(|_| KERNEL_BTF.into());
        if !Path::new(&btf).is_file() {
            return Err(LoadError::NoBtf(btf));
        }
        if !kernel_stack::symbols_visible() {
            return Err(LoadError::SymbolsHidden);
        }
        Ok(btf)
    }

    pub fn load() -> Result<Self, LoadError> {
        let btf = Self::preflight()?;
        tracefs::ensure_mounted()?;
        raise_memlock_limit();

        let kernel_btf = Btf::from_file(Path::new(&btf))?;
        let tracepoint_offsets = kernel_btf.tracepoint_offsets()?;
        let offsets = [
            (globals::MKDIR_ROOT, tracefs::field_offset("cgroup", "cgroup_mkdir", "root")?),
            (globals::MKDIR_LEVEL, tracefs::field_offset("cgroup", "cgroup_mkdir", "level")?),
            (globals::MKDIR_ID, tracefs::field_offset("cgroup", "cgroup_mkdir", "id")?),
            (globals::MKDIR_PATH, tracefs::field_offset("cgroup", "cgroup_mkdir", "path")?),
            (globals::BINPRM_FILENAME_OFFSET, tracepoint_offsets.binprm_filename),
            (globals::SIGINFO_CODE_OFFSET, tracepoint_offsets.siginfo_code),
        ];
        // Without these the kernel side still records absolute paths, but cannot resolve a
        // relative one, nor tell systemd's exec helper or a set-user-ID executable by its
        // file: say so once, loudly, instead of failing the whole recording.
        let mut kernel_offsets = kernel_btf.kernel_offsets().unwrap_or_else(|e| {
            warn!(
                "{e}: relative paths will be recorded without their directory, and executables will not be told by their file \
                 (systemd's exec helper, set-user-ID programs)"
            );
            KernelOffsets::default()
        });
        kernel_offsets.task_pid = tracepoint_offsets.task_pid;
        let exe_files = kernel_offsets.valid != 0;
        let mut loader = EbpfLoader::new();
        for (name, offset) in &offsets {
            loader.override_global(name, offset, true);
        }
        // The capability tracepoint is 6.14's: older kernels get another hook (`hooks`).
        let cap_fields =
            (tracefs::field_offset("capability", "cap_capable", "cap"), tracefs::field_offset("capability", "cap_capable", "ret"));
        // Only the tracepoint's program tells probes by their site. Unreadable symbols leave
        // the sites empty: every check then takes its whole stack.
        let probe_sites = match &cap_fields {
            (Ok(_), Ok(_)) => kernel_stack::Symbols::load().map(|symbols| symbols.probe_sites()).unwrap_or_else(|e| {
                debug!("no probe sites: cannot read /proc/kallsyms: {e}");
                ProbeSites::default()
            }),
            _ => ProbeSites::default(),
        };
        let cap_tracepoint = if let (Ok(cap), Ok(ret)) = &cap_fields {
            loader.override_global(globals::CAP_CAP, cap, true);
            loader.override_global(globals::CAP_RET, ret, true);
            loader.override_global(globals::PROBE_SITES, &probe_sites, true);
            true
        } else {
            false
        };
        // CPU ids, not a count: the possible set may have holes. Unknown: every id the kernel
        // side can name (it clears a thread's memory on each, see `filter::forget_caller`).
        let possible_cpus = cpu_id_bound().unwrap_or(u32::MAX);
        loader.override_global(globals::POSSIBLE_CPUS, &possible_cpus, true);
        loader.override_global(globals::KERNEL_OFFSETS, &kernel_offsets, true);
        loader.override_global(globals::THREAD_STATUS_OFFSET, &kernel_offsets.thread_status, true);
        loader.override_global(globals::TASK_PID_OFFSET, &kernel_offsets.task_pid, true);
        let path_members = [
            (globals::TASK_FS_OFFSET, kernel_offsets.task_fs),
            (globals::TASK_FILES_OFFSET, kernel_offsets.task_files),
            (globals::FS_PWD_OFFSET, kernel_offsets.fs_pwd),
            (globals::FS_ROOT_OFFSET, kernel_offsets.fs_root),
            (globals::FILES_FDT_OFFSET, kernel_offsets.files_fdt),
            (globals::FDT_MAX_FDS_OFFSET, kernel_offsets.fdt_max_fds),
            (globals::FDT_FD_OFFSET, kernel_offsets.fdt_fd),
        ];
        for (name, offset) in &path_members {
            loader.override_global(name, offset, true);
        }
        #[cfg_attr(not(feature = "debug-probes"), allow(unused_mut))]
        let mut ebpf = loader.load(PROBES_OBJECT).map_err(LoadError::Object)?;
        #[cfg(feature = "debug-probes")]
        let log = aya_log::EbpfLogger::init(&mut ebpf).map_err(|e| LoadError::Log(e.to_string()))?;
        Ok(Self {
            ebpf,
            #[cfg(feature = "debug-probes")]
            log,
            exec_helpers: BTreeSet::new(),
            cap_tracepoint,
            exe_files,
            capability_hook: None,
            syscall_hook: None,
            tasks_unadopted: 0,
        })
    }

    /// Attaches only the empty program on a syscall hook (`sys_exit_floor`, or
    /// `x64_sys_call_floor` for fexit): the floor any syscall recorder pays on that hook, for
    /// the benchmark. Detached when the value drops.
    pub fn floor(hook: SyscallHook) -> Result<Ebpf, LoadError> {
        Self::preflight()?;
        tracefs::ensure_mounted()?;
        let mut ebpf = EbpfLoader::new().load(PROBES_OBJECT).map_err(LoadError::Object)?;
        let btf = aya::Btf::from_sys_fs().map_err(|source| LoadError::Btf(source.to_string()))?;
        let (name, target) = match hook {
            SyscallHook::Tracepoint => ("sys_exit_floor", "sys_exit"),
            SyscallHook::Fexit => ("x64_sys_call_floor", "x64_sys_call"),
        };
        let program = ebpf.program_mut(name).ok_or(LoadError::Missing(name))?;
        let attached = match (hook, program) {
            (SyscallHook::Tracepoint, Program::BtfTracePoint(p)) => p.load(target, &btf).and_then(|()| p.attach().map(drop)),
            (SyscallHook::Fexit, Program::FExit(p)) => p.load(target, &btf).and_then(|()| p.attach().map(drop)),
            _ => return Err(LoadError::Missing(name)),
        };
        attached.map_err(|source| LoadError::Program { program: name, source })?;
        Ok(ebpf)
    }

    /// Points the programs at `cgroup`: tasks that exec in it or below it become watched, and
    /// so do tasks in any cgroup created later at the same path.
    pub fn watch(&mut self, cgroup: &WatchedCgroup) -> Result<(), LoadError> {
        let mut path: Array<_, KernelPath> = self.map(map_names::WATCH_PATH)?;
        path.set(0, kernel_path(&cgroup.relative), 0).map_err(|source| LoadError::Map { map: map_names::WATCH_PATH, source })?;
        let mut config: Array<_, TargetConfig> = self.map(map_names::CONFIG)?;
        let value = TargetConfig { cgroup_id: cgroup.id.unwrap_or(0), level: cgroup.level, enabled: 1, recreated: 0 };
        config.set(0, value, 0).map_err(|source| LoadError::Map { map: map_names::CONFIG, source })
    }

    /// Passes the kernel programs' log lines to the log (`debug-probes` builds; else nothing).
    pub fn flush_log(&mut self) {
        #[cfg(feature = "debug-probes")]
        self.log.flush();
    }

    /// How often the watched cgroup was created anew while recording (unit starts).
    pub fn cgroup_recreations(&mut self) -> Result<u64, LoadError> {
        let config: Array<_, TargetConfig> = self.map(map_names::CONFIG)?;
        config.get(&0, 0).map(|c| c.recreated).map_err(|source| LoadError::Map { map: map_names::CONFIG, source })
    }

    /// Attaches every program. Lifecycle first, so no fork or exec is missed once syscalls
    /// are counted. The cgroup hooks go on `hooks_cgroup` (the cgroup2 root, so a restarted
    /// unit and processes that leave its cgroup stay covered), in multi mode, allowing all.
    pub fn attach(&mut self, hooks_cgroup: &Path) -> Result<(), LoadError> {
        let cgroup_mkdir: &mut TracePoint = self.program("cgroup_mkdir")?;
        let program = "cgroup_mkdir";
        cgroup_mkdir.load().map_err(|source| LoadError::Program { program, source })?;
        cgroup_mkdir.attach("cgroup", "cgroup_mkdir").map_err(|source| LoadError::Program { program, source })?;
        let btf = aya::Btf::from_sys_fs().map_err(|source| LoadError::Btf(source.to_string()))?;
        // Every one of these is in Debian 12's 6.1 (BTF tracepoints date from 5.5).
        for program in ["sched_process_exit", "sched_process_fork", "sched_process_exec", "signal_generate"] {
            let tp: &mut BtfTracePoint = self.program(program)?;
            tp.load(program, &btf).map_err(|source| LoadError::Program { program, source })?;
            tp.attach().map_err(|source| LoadError::Program { program, source })?;
        }
        self.capability_hook = Some(self.choose("capability hook", |probes, hook| probes.try_capability_hook(hook, &btf))?);
        self.attach_cgroup_hooks(hooks_cgroup)?;
        self.syscall_hook = Some(self.choose("syscall hook", |probes, hook| probes.try_syscall_hook(hook, &btf))?);
        Ok(())
    }

    /// The hooks attached for capability checks and for syscalls, once attached.
    pub fn hooks(&self) -> (Option<CapabilityHook>, Option<SyscallHook>) {
        (self.capability_hook, self.syscall_hook)
    }

    /// Whether an exec's file is read (its mode, device and inode), or only its name.
    pub fn reads_exec_files(&self) -> bool {
        self.exe_files
    }

    /// Runs of the syscall hook's programs the kernel skipped, host-wide: it runs a program
    /// only once at a time per CPU, and a task preempted inside one (possible with fexit, on
    /// a kernel booted with `preempt=full`) makes the next call on that CPU go unseen.
    pub fn syscall_hook_misses(&self) -> u64 {
        const PROGRAMS: [&str; 8] = [
            "sys_exit",
            "decode_args",
            "x64_sys_call_exit",
            "ia32_sys_call_exit",
            "x32_sys_call_exit",
            "seccomp_refused",
            "decode_args_x64",
            "decode_args_seccomp",
        ];
        PROGRAMS
            .iter()
            .filter_map(|name| self.ebpf.program(name)?.fd().ok())
            .filter_map(|fd| {
                use std::os::fd::{AsFd as _, AsRawFd as _};
                let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_fd().as_raw_fd())).ok()?;
                info.lines().find_map(|l| l.strip_prefix("recursion_misses:")).and_then(|v| v.trim().parse::<u64>().ok())
            })
            .sum()
    }

    /// Attaches the best hook of kind `H` this kernel takes (`attach` tries one), or the
    /// forced one.
    fn choose<H: HookChoice>(
        &mut self,
        kind: &'static str,
        mut attach: impl FnMut(&mut Self, H) -> Result<(), String>,
    ) -> Result<H, LoadError> {
        let (candidates, forced) = H::candidates().map_err(|reason| LoadError::Hook { kind, reason })?;
        let mut refused = Vec::new();
        for hook in candidates {
            match attach(self, hook) {
                Ok(()) => {
                    if !refused.is_empty() {
                        info!("{kind}: {} ({})", hook.name(), refused.join("; "));
                    }
                    return Ok(hook);
                }
                Err(reason) if forced => {
                    let reason = format!("{}={}: not offered by this kernel: {reason}", H::FORCE, hook.name());
                    return Err(LoadError::Hook { kind, reason });
                }
                Err(reason) => refused.push(format!("no {}: {reason}", hook.name())),
            }
        }
        Err(LoadError::Hook { kind, reason: format!("none this kernel offers ({})", refused.join("; ")) })
    }

    /// Attaches one way of seeing syscalls, with the argument decoder it tail-calls in place
    /// first; on failure, nothing of it stays attached.
    fn try_syscall_hook(&mut self, hook: SyscallHook, btf: &aya::Btf) -> Result<(), String> {
        match hook {
            SyscallHook::Tracepoint => {
                self.install_decoder("decode_args", "sys_exit", map_names::ARG_DECODERS, btf)?;
                let exit: &mut BtfTracePoint = self.program("sys_exit").map_err(|e| e.to_string())?;
                exit.load("sys_exit", btf).map_err(|e| format!("{e} ({})", error_chain(&e)))?;
                exit.attach().map(drop).map_err(|e| format!("{e} ({})", error_chain(&e)))
            }
            SyscallHook::Fexit => {
                if let Some(mode) = full_preemption() {
                    return Err(format!(
                        "this kernel preempts inside programs ({mode}): an fexit program could be interrupted \
                         and runs of it on the same CPU skipped"
                    ));
                }
                self.install_decoder("decode_args_x64", "x64_sys_call", map_names::ARG_DECODERS_X64, btf)?;
                self.install_decoder("decode_args_seccomp", "__secure_computing", map_names::ARG_DECODERS_SECCOMP, btf)?;
                let mut attached = Vec::new();
                let result = self.attach_syscall_tables(btf, &mut attached);
                if result.is_err() {
                    for program in attached {
                        if let Some(Program::FExit(p)) = self.ebpf.program_mut(program) {
                            let _ = p.unload();
                        }
                    }
                }
                result
            }
        }
    }

    /// fexit on each syscall table and on seccomp's verdict (see `syscalls.rs` in the kernel
    /// programs), the x86_64 table last; the names attached go in `attached`.
    fn attach_syscall_tables(&mut self, btf: &aya::Btf, attached: &mut Vec<&'static str>) -> Result<(), String> {
        // A table the kernel's BTF lacks is one it was built without (the i386 or x32 ABI,
        // seccomp): there are no such calls to see. The x86_64 one is always there, on a
        // kernel that has the tables at all (6.9, and stable kernels since 2024).
        for (program, function, required) in [
            ("seccomp_refused", "__secure_computing", false),
            ("ia32_sys_call_exit", "ia32_sys_call", false),
            ("x32_sys_call_exit", "x32_sys_call", false),
            ("x64_sys_call_exit", "x64_sys_call", true),
        ] {
            let exit: &mut FExit = self.program(program).map_err(|e| e.to_string())?;
            match exit.load(function, btf) {
                Err(aya::programs::ProgramError::Btf(aya::BtfError::UnknownBtfTypeName { .. })) if !required => continue,
                Err(e) => return Err(format!("{function}: {e} ({})", error_chain(&e))),
                Ok(()) => {}
            }
            exit.attach().map_err(|e| format!("{function}: {e} ({})", error_chain(&e)))?;
            attached.push(program);
        }
        Ok(())
    }

    /// Loads decoder `program` for `target` and puts it in slot 0 of the program array `map`.
    fn install_decoder(&mut self, program: &'static str, target: &str, map: &'static str, btf: &aya::Btf) -> Result<(), String> {
        let loaded = match self.ebpf.program_mut(program) {
            Some(Program::BtfTracePoint(p)) => p.load(target, btf),
            Some(Program::FExit(p)) => p.load(target, btf),
            _ => return Err(format!("the eBPF object has no decoder {program}")),
        };
        loaded.map_err(|e| format!("{program}: {e} ({})", error_chain(&e)))?;
        let fd = self
            .ebpf
            .program(program)
            .ok_or_else(|| format!("the eBPF object has no decoder {program}"))?
            .fd()
            .and_then(|fd| fd.try_clone().map_err(aya::programs::ProgramError::IOError))
            .map_err(|e| format!("{program}: {e}"))?;
        let mut decoders: ProgramArray<_> = self.map(map).map_err(|e| e.to_string())?;
        decoders.set(0, &fd, 0).map_err(|e| format!("{map}: {e}"))
    }

    fn try_capability_hook(&mut self, hook: CapabilityHook, btf: &aya::Btf) -> Result<(), String> {
        match hook {
            CapabilityHook::Tracepoint => {
                if !self.cap_tracepoint {
                    return Err("the capability:cap_capable tracepoint is missing (it appeared in 6.14)".into());
                }
                let tp: &mut TracePoint = self.program("cap_capable").map_err(|e| e.to_string())?;
                tp.load().map_err(|e| e.to_string())?;
                tp.attach("capability", "cap_capable").map(drop).map_err(|e| e.to_string())
            }
            CapabilityHook::Fexit => {
                let exit: &mut FExit = self.program("cap_capable_exit").map_err(|e| e.to_string())?;
                exit.load("cap_capable", btf).map_err(|e| format!("{e} ({})", error_chain(&e)))?;
                exit.attach().map(drop).map_err(|e| format!("{e} ({})", error_chain(&e)))
            }
            // The return first: an entry without its return would only fill the pending map.
            CapabilityHook::Kprobe => {
                for program in ["cap_capable_return", "cap_capable_entry"] {
                    let probe: &mut KProbe = self.program(program).map_err(|e| e.to_string())?;
                    probe.load().map_err(|e| format!("{e} ({})", error_chain(&e)))?;
                    probe.attach("cap_capable", 0).map_err(|e| format!("{e} ({})", error_chain(&e)))?;
                }
                Ok(())
            }
            CapabilityHook::None => Ok(()),
        }
    }

    /// Attaches through bpf_link (aya does on 5.7+). A cgroup link is always multi-attach in
    /// the kernel, which refuses an explicit BPF_F_ALLOW_MULTI flag on link_create; hence
    /// `Single`, which passes no flag.
    fn attach_cgroup_hooks(&mut self, cgroup: &Path) -> Result<(), LoadError> {
        const LINK: CgroupAttachMode = CgroupAttachMode::Single;
        let dir = fs::File::open(cgroup).map_err(|e| LoadError::Cgroup(cgroup.display().to_string(), e))?;
        let device: &mut CgroupDevice = self.program("device_access")?;
        device.load().map_err(|source| LoadError::Program { program: "device_access", source })?;
        device.attach(&dir, LINK).map_err(|source| LoadError::Program { program: "device_access", source })?;
        for program in ["bind4", "bind6", "connect4", "connect6"] {
            let hook: &mut CgroupSockAddr = self.program(program)?;
            hook.load().map_err(|source| LoadError::Program { program, source })?;
            hook.attach(&dir, LINK).map_err(|source| LoadError::Program { program, source })?;
        }
        Ok(())
    }

    /// The ring buffer of path records, for the collector to drain while recording.
    pub fn take_path_events(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        let map = self.ebpf.take_map(map_names::PATH_EVENTS).ok_or(LoadError::Missing(map_names::PATH_EVENTS))?;
        RingBuf::try_from(map).map_err(|source| LoadError::Map { map: map_names::PATH_EVENTS, source })
    }

    /// Watches processes already running in the cgroup (a unit recorded mid-life): they
    /// exec'd before the programs were attached, so no exec will arm them.
    pub fn adopt_running(&mut self, cgroup: &WatchedCgroup) -> Result<usize, LoadError> {
        let pids = cgroup.processes().unwrap_or_else(|e| {
            warn!("cannot list processes of {}: {e}", cgroup.path.display());
            Vec::new()
        });
        let (mut adopted, mut unadopted) = (0, 0);
        for pid in pids {
            // A process that exited meanwhile has no entry left: nothing to adopt.
            let Ok(process) = procfs::process::Process::new(pid as i32) else { continue };
            // It arms itself at its exec of the service, as if the recording had been there.
            if self.runs_exec_helper(pid as i32) {
                continue;
            }
            let slot = match process.exe() {
                Ok(exe) => self.claim_exe_slot(&exe.to_string_lossy())?,
                Err(_) => EXE_SLOT_OVERFLOW,
            };
            let Ok(tasks) = process.tasks() else { continue };
            let mut map: HashMap<_, u32, TaskState> = self.map(map_names::TASKS)?;
            for task in tasks.flatten() {
                let tid = task.tid as u32;
                // NOEXIST: a task the kernel side armed meanwhile keeps its own state.
                match map.insert(tid, TaskState { exe_slot: slot, flags: 0 }, 1) {
                    Ok(()) => {}
                    Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => continue,
                    Err(e) => {
                        warn!("thread {tid} of process {pid} is not watched: {e}");
                        unadopted += 1;
                        continue;
                    }
                }
                // A thread that ended, or is ending, had its exit seen before it was watched:
                // its id would stay, and a later task given the same id would be taken for the
                // unit's. Looked at after the insert, so an exit from now on is the exit
                // hook's to clean up.
                if is_running(&task) {
                    adopted += 1;
                } else {
                    let _ = map.remove(&tid);
                }
            }
        }
        self.tasks_unadopted += unadopted;
        // A CPU may have taken one of these threads for unwatched before it was put in TASKS.
        // Cleared twice: a program run that straddled the first clear has ended by the second.
        for pass in 0..2 {
            if pass > 0 {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            self.forget_callers()?;
        }
        Ok(adopted)
    }

    /// Running threads adoption could not watch (the tasks table was full).
    pub fn tasks_unadopted(&self) -> u64 {
        self.tasks_unadopted
    }

    /// Clears every CPU's memory of the threads it ran, by id and by saved-register address
    /// (`filter::CALLER_HINT` in the kernel).
    fn forget_callers(&mut self) -> Result<(), LoadError> {
        let cpus = aya::util::nr_cpus()
            .map_err(|(_, e)| LoadError::Map { map: map_names::CALLER_HINT, source: aya::maps::MapError::IoError(e) })?;
        let mut hints: PerCpuArray<_, CallerHint> = self.map(map_names::CALLER_HINT)?;
        let none = aya::maps::PerCpuValues::try_from(vec![CallerHint::default(); cpus])
            .map_err(|e| LoadError::Map { map: map_names::CALLER_HINT, source: aya::maps::MapError::IoError(e) })?;
        hints.set(0, none, 0).map_err(|source| LoadError::Map { map: map_names::CALLER_HINT, source })
    }

    /// Tells the kernel side which files are systemd's exec helpers (`exec_helpers`).
    pub fn ignore_exec_helpers(&mut self, helpers: BTreeSet<FileId>) -> Result<(), LoadError> {
        let mut map: HashMap<_, FileId, u8> = self.map(map_names::EXEC_HELPERS)?;
        for helper in &helpers {
            map.insert(helper, 1, 0).map_err(|source| LoadError::Map { map: map_names::EXEC_HELPERS, source })?;
        }
        self.exec_helpers.extend(helpers);
        Ok(())
    }

    /// Whether a running process is still one of systemd's helpers, setting the unit up.
    fn runs_exec_helper(&self, pid: i32) -> bool {
        exec_helpers::file_id(Path::new(&format!("/proc/{pid}/exe")))
            .is_some_and(|id| self.exec_helpers.contains(&id) || self.exec_helpers.contains(&FileId { dev: 0, ino: id.ino }))
    }

    /// The same slot claim the kernel makes at exec (a NOEXIST insert), from userspace.
    fn claim_exe_slot(&mut self, path: &str) -> Result<u32, LoadError> {
        let key = kernel_path(path);
        let executables: HashMap<_, KernelPath, ExeInfo> = self.map(map_names::EXECUTABLES)?;
        if let Ok(info) = executables.get(&key, 0) {
            return Ok(info.slot);
        }
        let mut claims: HashMap<_, u32, u8> = self.map(map_names::SLOT_CLAIMS)?;
        let Some(slot) = (0..EXE_SLOT_OVERFLOW).find(|slot| claims.insert(slot, 1, 1).is_ok()) else {
            return Ok(EXE_SLOT_OVERFLOW);
        };
        let mut executables: HashMap<_, KernelPath, ExeInfo> = self.map(map_names::EXECUTABLES)?;
        match executables.insert(key, ExeInfo { slot, _pad: 0 }, 1) {
            Ok(()) => Ok(slot),
            Err(_) => Ok(executables.get(&key, 0).map_or(EXE_SLOT_OVERFLOW, |info| info.slot)),
        }
    }

    fn program<'a, P>(&'a mut self, name: &'static str) -> Result<&'a mut P, LoadError>
    where
        &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
    {
        let program = self.ebpf.program_mut(name).ok_or(LoadError::Missing(name))?;
        program.try_into().map_err(|source| LoadError::Program { program: name, source })
    }

    pub(crate) fn map<'a, M>(&'a mut self, name: &'static str) -> Result<M, LoadError>
    where
        M: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map_mut(name).ok_or(LoadError::Missing(name))?;
        M::try_from(map).map_err(|source| LoadError::Map { map: name, source })
    }
}

/// The kernel's preemption mode, if it can preempt a task inside an fexit program (`full`,
/// `lazy`, PREEMPT_RT): from debugfs where mounted (`none voluntary (full) lazy`), else the
/// command line's `preempt=`, else the build (`uname -v`). fexit programs run with only
/// migration disabled; tracepoint programs run with preemption disabled.
fn full_preemption() -> Option<String> {
    let current = fs::read_to_string("/sys/kernel/debug/sched/preempt")
        .ok()
        .and_then(|modes| modes.split_whitespace().find(|m| m.starts_with('(')).map(|m| m.trim_matches(['(', ')']).to_string()));
    let current = current.or_else(|| {
        let cmdline = fs::read_to_string("/proc/cmdline").ok()?;
        cmdline.split_whitespace().find_map(|arg| arg.strip_prefix("preempt=")).map(str::to_string)
    });
    match current {
        Some(mode) => (mode != "none" && mode != "voluntary").then_some(mode),
        None => {
            let version = fs::read_to_string("/proc/sys/kernel/version").unwrap_or_default();
            // "PREEMPT_DYNAMIC" alone defaults to the build's choice, voluntary on Debian.
            (version.contains("PREEMPT_RT") || version.split_whitespace().any(|w| w == "PREEMPT")).then(|| version.trim().to_string())
        }
    }
}

/// One past the highest possible CPU id (`/sys/devices/system/cpu/possible`, e.g. `0-3,8-11`).
fn cpu_id_bound() -> Option<u32> {
    let list = fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
    let last = list.trim().rsplit([',', '-']).next()?;
    last.parse::<u32>().ok().map(|max| max + 1)
}

/// The causes behind an error, innermost last ("EPERM" behind "attaching failed").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut causes = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        causes.push(c.to_string());
        cause = c.source();
    }
    causes.join(": ")
}

/// A path as the kernel side keys it: NUL-padded, cut at `PATH_LEN - 1` bytes.
pub fn kernel_path(path: &str) -> KernelPath {
    let mut key = KernelPath { bytes: [0; PATH_LEN] };
    let len = path.len().min(PATH_LEN - 1);
    key.bytes[..len].copy_from_slice(&path.as_bytes()[..len]);
    key
}

/// Older kernels charge BPF maps to RLIMIT_MEMLOCK; 5.11+ charge memory cgroups instead, and
/// the limit cannot be raised without CAP_SYS_RESOURCE (absent on some hosts): not fatal.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: a plain setrlimit with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        debug!("cannot raise RLIMIT_MEMLOCK ({}); relying on memcg accounting", std::io::Error::last_os_error());
    }
}

/// `PF_EXITING` (include/linux/sched.h): set at the start of `do_exit`, before the exit
/// tracepoint runs.
const PF_EXITING: u32 = 0x4;

/// Whether `task` has not begun to exit: a thread ending, or a leader whose process lives on
/// in its other threads (a zombie), still has its directory under /proc.
fn is_running(task: &procfs::process::Task) -> bool {
    task.stat().is_ok_and(|stat| !matches!(stat.state, 'Z' | 'X' | 'x') && stat.flags & PF_EXITING == 0)
}
