//! Paths that watched tasks write (and read, where a directive depends on it), resolved in the
//! kernel to the names a unit file would use, deduplicated, and sent through a ring buffer.
//!
//! A relative path or an `*at(dirfd, ..)` call is resolved by walking the dentries of the base
//! directory (the task's cwd or the dirfd's file) up to the task's root, crossing mounts the way
//! `d_path` does. Fentry/LSM hooks and `bpf_d_path` are not available on these kernels, so the
//! walk reads struct members at offsets the loader takes from the running kernel's BTF.

use core::ffi::c_void;

use aya_ebpf::{
    Global,
    helpers::{
        bpf_get_current_task, bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes, bpf_probe_read_user_str_bytes, generated::bpf_loop,
    },
    macros::map,
    maps::{LruHashMap, PerCpuArray, RingBuf},
};
use profiler_common::{
    FileId, KernelOffsets, PATH_DEDUP_ENTRIES, PATH_DEPTH, PATH_LEN, PATH_NAME_LEN, PATH_RING_BYTES, PathEvent, loss, path_flags,
};

use crate::{filter::count_loss, regs};

#[unsafe(no_mangle)]
static KERNEL_OFFSETS: Global<KernelOffsets> = Global::new(KernelOffsets {
    valid: 0,
    task_fs: 0,
    task_files: 0,
    task_mm: 0,
    mm_exe_file: 0,
    file_inode: 0,
    inode_mode: 0,
    fs_root: 0,
    fs_pwd: 0,
    path_mnt: 0,
    path_dentry: 0,
    files_fdt: 0,
    fdt_max_fds: 0,
    fdt_fd: 0,
    file_path: 0,
    dentry_parent: 0,
    dentry_name: 0,
    qstr_name: 0,
    vfsmount_root: 0,
    mount_mnt: 0,
    mount_parent: 0,
    mount_mountpoint: 0,
    thread_status: 0,
    task_pid: 0,
    inode_ino: 0,
    inode_sb: 0,
    sb_dev: 0,
});

/// The members every relative path is resolved through, each a read-only global of its own,
/// set by the loader from BTF: read alone, it is the constant the verifier needs to let a
/// load through the kernel's typed pointer stand in for a helper call (KERNEL_OFFSETS, read
/// whole, may reach its members through the stack, where older verifiers lose the value).
#[unsafe(no_mangle)]
static TASK_FS_OFFSET: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static TASK_FILES_OFFSET: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static FS_PWD_OFFSET: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static FS_ROOT_OFFSET: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static FILES_FDT_OFFSET: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static FDT_MAX_FDS_OFFSET: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static FDT_FD_OFFSET: Global<u32> = Global::new(0);

#[map]
pub static PATH_EVENTS: RingBuf = RingBuf::with_byte_size(PATH_RING_BYTES, 0);

/// Hashes of (executable, op, base, string) recently sent: a repeat costs a lookup, no event.
#[map]
static PATH_SEEN: LruHashMap<u64, u8> = LruHashMap::with_max_entries(PATH_DEDUP_ENTRIES, 0);

/// What `emit` works with on this CPU, in one map value: one lookup, where a map each cost a
/// dependent load apiece on a busy server's every path call.
#[repr(C)]
struct PathScratch {
    /// The record under construction: far too big for the 512-byte BPF stack.
    event: PathEvent,
    /// The keys this CPU last sent or found in PATH_SEEN, one per slot of a small
    /// direct-mapped table (`recent_slot`): a service opening the same files over and over (a
    /// web server, once per request) finds its key here, which costs a load and a comparison,
    /// where the shared LRU map costs a hashed bucket walk. Set only for a record userspace
    /// has (sent, or already in PATH_SEEN), so a hit never hides one it has not.
    recent: [u64; RECENT_SLOTS],
}
const RECENT_SLOTS: usize = 64;
const _: () = assert!(RECENT_SLOTS.is_power_of_two());

#[map]
static EMIT_SCRATCH: PerCpuArray<PathScratch> = PerCpuArray::with_max_entries(1, 0);

/// Where a `struct path` read through typed pointers is written and read back as two numbers
/// (`as_numbers`). Like EMIT_SCRATCH, it relies on programs not being preempted on
/// their CPU: true of the tracepoint, and fexit is refused on preemptible kernels
/// (`recorder/probes.rs`, `full_preemption`).
#[map]
static KPATH_SCRATCH: PerCpuArray<KPath> = PerCpuArray::with_max_entries(1, 0);

/// `AT_FDCWD` (include/uapi/linux/fcntl.h): "relative to the current directory".
pub const AT_FDCWD: i64 = -100;

/// The kernel's struct member offsets, as the loader found them in BTF.
#[inline(always)]
pub fn offsets() -> KernelOffsets {
    KERNEL_OFFSETS.load()
}

#[inline(always)]
fn read_u64(addr: u64) -> u64 {
    // SAFETY: a checked helper read; a bad address yields 0, which every caller treats as absent.
    unsafe { bpf_probe_read_kernel(addr as *const u64) }.unwrap_or(0)
}

#[inline(always)]
fn read_u32(addr: u64) -> u32 {
    // SAFETY: as above.
    unsafe { bpf_probe_read_kernel(addr as *const u32) }.unwrap_or(0)
}

/// A `struct path`: (vfsmount, dentry), in that order at 0 and 8, as the loader checks.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
struct KPath {
    mnt: u64,
    dentry: u64,
}

/// The `struct path` at kernel address `addr`: one helper read of both members.
fn read_kpath(addr: u64) -> KPath {
    // SAFETY: a checked helper read; a bad address yields nothing, which callers treat as absent.
    unsafe { bpf_probe_read_kernel(addr as *const KPath) }.unwrap_or(KPath { mnt: 0, dentry: 0 })
}

/// The current task's working directory (`FS_PWD_OFFSET`) or root (`FS_ROOT_OFFSET`), read
/// through typed pointers: plain loads, where helper reads cost about 35 ns each here, and
/// took four (the task, its `fs`, both members) per `struct path`.
#[inline(always)]
fn task_fs_path(member: &Global<u32>) -> KPath {
    let fs = regs::load_ptr(regs::current(), TASK_FS_OFFSET.load());
    // The `struct path` there: mnt at its start, dentry 8 bytes on (see `KPath`).
    let at = member.load();
    as_numbers(regs::load_ptr(fs, at), regs::load_ptr(fs, at + 8))
}

/// The two typed pointers of a `struct path` as plain numbers, which a hash and the helper
/// reads of the walk take: the verifier allows neither on a pointer, so they are stored in a
/// map and read back, where it knows them only as numbers.
#[inline(always)]
fn as_numbers(mnt: *const u8, dentry: *const u8) -> KPath {
    let Some(slot) = KPATH_SCRATCH.get_ptr_mut(0) else {
        return KPath { mnt: 0, dentry: 0 };
    };
    // SAFETY: this CPU's entry of our own map; programs on one CPU do not interleave.
    unsafe {
        (*slot).mnt = mnt as u64;
        (*slot).dentry = dentry as u64;
        KPath { mnt: core::ptr::read_volatile(&(*slot).mnt), dentry: core::ptr::read_volatile(&(*slot).dentry) }
    }
}

/// The `struct file *` behind a descriptor of the current task. The table is reached through
/// typed pointers; its slots are an array of pointers, which the verifier types as a number,
/// so the slot is a helper read.
#[inline(always)]
fn current_file(fd: i64) -> u64 {
    if fd < 0 {
        return 0;
    }
    let files = regs::load_ptr(regs::current(), TASK_FILES_OFFSET.load());
    let fdt = regs::load_ptr(files, FILES_FDT_OFFSET.load());
    if fdt.is_null() || fd as u64 >= regs::load_u32(fdt, FDT_MAX_FDS_OFFSET.load()) as u64 {
        return 0;
    }
    let array = regs::load_ptr(fdt, FDT_FD_OFFSET.load()) as u64;
    if array == 0 {
        return 0;
    }
    read_u64(array + 8 * fd as u64)
}

/// The inode mode of the current task's executable (for set-user-ID detection after exec).
#[inline(always)]
pub fn current_exe_mode() -> Option<u32> {
    let inode = current_exe_inode()?;
    // SAFETY: i_mode is an umode_t (u16).
    unsafe { bpf_probe_read_kernel((inode + offsets().inode_mode as u64) as *const u16) }.ok().map(u32::from)
}

/// The current task's executable as a file: what it is, whatever path or descriptor the
/// exec named.
pub fn current_exe_id() -> Option<FileId> {
    let inode = current_exe_inode()?;
    let off = offsets();
    let sb = read_u64(inode + off.inode_sb as u64);
    if sb == 0 {
        return None;
    }
    Some(FileId { dev: read_u32(sb + off.sb_dev as u64) as u64, ino: read_u64(inode + off.inode_ino as u64) })
}

/// The inode of the current task's executable (`mm->exe_file->f_inode`).
fn current_exe_inode() -> Option<u64> {
    let off = offsets();
    if off.valid == 0 {
        return None;
    }
    // SAFETY: as in `current_file`.
    let task = unsafe { bpf_get_current_task() };
    let mm = read_u64(task + off.task_mm as u64);
    let file = read_u64(mm + off.mm_exe_file as u64);
    let inode = read_u64(file + off.file_inode as u64);
    (mm != 0 && file != 0 && inode != 0).then_some(inode)
}

/// Records a path operation: `user` is the task's path string (0 when the operation names only
/// a descriptor), `dirfd` its base (`AT_FDCWD` for the cwd).
#[inline(never)]
pub fn emit(op: u32, exe_slot: u32, dirfd: i64, user: u64, errno: u16) {
    let Some(scratch) = EMIT_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's scratch entry; programs on one CPU do not interleave.
    let PathScratch { event, recent } = unsafe { &mut *scratch };
    event.op = op;
    event.exe_slot = exe_slot;
    event.depth = 0;
    // In the dedup key too: a refused write and a later one that succeeds are both sent.
    event.flags = (errno as u32) << path_flags::ERRNO_SHIFT;
    event.tail[0] = 0;
    let mut len = 0;
    if user != 0 {
        // SAFETY: a checked helper read of the task's own memory into our buffer.
        match unsafe { bpf_probe_read_user_str_bytes(user as *const u8, &mut event.tail) } {
            Ok(read) => {
                len = read.len();
                if len >= PATH_LEN - 1 {
                    event.flags |= path_flags::TRUNCATED;
                }
            }
            Err(_) => {
                count_loss(loss::PATH_UNREADABLE);
                return;
            }
        }
    }
    let absolute = event.tail[0] == b'/';
    let off = offsets();
    let mut base = KPath { mnt: 0, dentry: 0 };
    if !absolute {
        if off.valid == 0 {
            event.flags |= path_flags::BASE_UNKNOWN;
        } else if dirfd == AT_FDCWD {
            base = task_fs_path(&FS_PWD_OFFSET);
        } else {
            let file = current_file(dirfd);
            if file != 0 {
                base = read_kpath(file + off.file_path as u64);
            }
        }
        if off.valid != 0 && (base.mnt == 0 || base.dentry == 0) {
            event.flags |= path_flags::BASE_UNKNOWN;
        }
    }
    let key = dedup_key(event, len, base);
    let recent = &mut recent[recent_slot(key)];
    if *recent == key {
        return;
    }
    if PATH_SEEN.get_ptr(&key).is_some() {
        *recent = key;
        return;
    }
    let _ = PATH_SEEN.insert(&key, &1, 0);
    if base.dentry != 0 {
        walk(event, base);
    }
    if PATH_EVENTS.output::<PathEvent>(&*event, 0).is_err() {
        count_loss(loss::PATH_EVENTS_LOST);
        // Forget it, so the next occurrence is sent again.
        let _ = PATH_SEEN.remove(&key);
    } else {
        *recent = key;
    }
}

/// The slot of `key` in the recent keys: its top bits. A product's low bits depend only on the
/// factors' low bits, so FNV's low bits never see what differs only in a word's upper half,
/// the op among them: a web server's stat and open of one file (one key each, per request)
/// shared a slot by the low bits and pushed each other out, a PATH_SEEN lookup apiece.
#[inline(always)]
fn recent_slot(key: u64) -> usize {
    (key >> (64 - RECENT_SLOTS.trailing_zeros())) as usize
}

/// FNV-1a over what makes a record distinct, the path's `len` bytes 8 at a time: every
/// open of a watched service hashes its path before the dedup, so this is on its hot path
/// (a byte at a time, an 18-byte path cost 14 ns more per open in the kernel's accounting).
/// The bytes past the path are left from earlier paths in the scratch buffer: masked off.
#[inline(always)]
fn dedup_key(event: &PathEvent, len: usize, base: KPath) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const WORDS: usize = PATH_LEN / 8;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    hash = (hash ^ ((event.op as u64) << 32 | event.exe_slot as u64)).wrapping_mul(PRIME);
    hash = (hash ^ (event.flags >> path_flags::ERRNO_SHIFT) as u64).wrapping_mul(PRIME);
    hash = (hash ^ base.mnt).wrapping_mul(PRIME);
    hash = (hash ^ base.dentry).wrapping_mul(PRIME);
    hash = (hash ^ len as u64).wrapping_mul(PRIME);
    let mut i = 0;
    while i < WORDS {
        let start = i * 8;
        if start >= len {
            break;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&event.tail[start..start + 8]);
        let mut word = u64::from_le_bytes(word);
        let left = len - start;
        if left < 8 {
            word &= (1u64 << (left * 8)) - 1;
        }
        hash = (hash ^ word).wrapping_mul(PRIME);
        i += 1;
    }
    hash
}

/// Where the walk is, between `bpf_loop` steps (on the caller's stack).
#[repr(C)]
struct Walk {
    at: KPath,
    root: KPath,
    depth: u64,
    complete: u64,
}

/// Fills `event.names` with the base's components, innermost first, up to the task's root.
///
/// One `bpf_loop` step per component or mount crossed: the verifier checks the step once,
/// where an unrolled loop would make it check every combination of branches.
#[inline(always)]
fn walk(event: &mut PathEvent, base: KPath) {
    let root = task_fs_path(&FS_ROOT_OFFSET);
    // Without the root the walk would not stop at it, and would name a path under
    // `RootDirectory=` from the host's root: no name rather than a wrong one.
    if root.mnt == 0 || root.dentry == 0 {
        event.flags |= path_flags::BASE_UNKNOWN;
        return;
    }
    let mut state = Walk { at: base, root, depth: 0, complete: 0 };
    // SAFETY: the callback is a static function of this object; the context is our stack.
    unsafe {
        bpf_loop(2 * PATH_DEPTH as u32, walk_step as *mut c_void, &mut state as *mut Walk as *mut c_void, 0);
    }
    if state.complete == 0 {
        event.flags |= path_flags::TRUNCATED;
    }
    event.depth = state.depth as u32;
}

const STOP: i64 = 1;
const NEXT: i64 = 0;

extern "C" fn walk_step(_index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `Walk` that `walk` passed to bpf_loop.
    let state = unsafe { &mut *(ctx as *mut Walk) };
    let off = offsets();
    if state.at == state.root {
        state.complete = 1;
        return STOP;
    }
    if state.at.dentry == read_u64(state.at.mnt + off.vfsmount_root as u64) {
        // The root of a mount: continue from where it is mounted (container_of the vfsmount
        // inside its `struct mount`).
        let mount = state.at.mnt - off.mount_mnt as u64;
        let parent = read_u64(mount + off.mount_parent as u64);
        if parent == mount || parent == 0 {
            // The root of the mount tree, outside the task's root: as far as it goes.
            state.complete = 1;
            return STOP;
        }
        state.at = KPath { mnt: parent + off.mount_mnt as u64, dentry: read_u64(mount + off.mount_mountpoint as u64) };
        return NEXT;
    }
    let parent = read_u64(state.at.dentry + off.dentry_parent as u64);
    if parent == state.at.dentry || parent == 0 {
        state.complete = 1;
        return STOP;
    }
    let depth = state.depth as usize;
    if depth >= PATH_DEPTH {
        return STOP;
    }
    let Some(scratch) = EMIT_SCRATCH.get_ptr_mut(0) else {
        return STOP;
    };
    // SAFETY: this CPU's scratch entry, the one `emit` is filling.
    let event = unsafe { &mut (*scratch).event };
    let name = read_u64(state.at.dentry + off.dentry_name as u64 + off.qstr_name as u64);
    // SAFETY: a bounded kernel string read into our own buffer.
    match unsafe { bpf_probe_read_kernel_str_bytes(name as *const u8, &mut event.names[depth]) } {
        Ok(read) if read.len() < PATH_NAME_LEN - 1 => {}
        _ => event.flags |= path_flags::TRUNCATED,
    }
    state.depth += 1;
    state.at.dentry = parent;
    NEXT
}
