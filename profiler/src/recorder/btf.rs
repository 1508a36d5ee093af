//! Struct member offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`), so the
//! path walk in the kernel programs reads the right fields on any kernel, not the build host's.
//!
//! Only what the offsets need is parsed: the type section's structs and unions, and names.

use std::{collections::HashMap, path::Path};

use profiler_common::KernelOffsets;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read kernel BTF {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("kernel BTF {path} is malformed: {reason}")]
    Malformed { path: String, reason: &'static str },
    #[error("kernel BTF has no member {0}")]
    NoMember(String),
    #[error("kernel BTF lays out a struct unlike what the kernel programs read: {0}")]
    Layout(String),
}

/// See `Btf::tracepoint_offsets`.
#[derive(Debug, Clone, Copy)]
pub struct TracepointOffsets {
    pub task_pid: u32,
    pub binprm_filename: u32,
    pub siginfo_code: u32,
}

const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;

/// A struct or union: its members as (name, type id, bit offset).
struct Composite {
    members: Vec<(String, u32, u32)>,
}

/// The structs and unions of a BTF blob, by id, and the named ones by name.
pub struct Btf {
    composites: HashMap<u32, Composite>,
    by_name: HashMap<String, u32>,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

impl Btf {
    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read { path: path.display().to_string(), source })?;
        Self::parse(&data).map_err(|reason| BtfError::Malformed { path: path.display().to_string(), reason })
    }

    pub fn parse(data: &[u8]) -> Result<Self, &'static str> {
        if data.get(0..2) != Some(&[0x9f, 0xeb]) {
            return Err("bad magic (not little-endian BTF)");
        }
        let header = |i: usize| u32_at(data, 8 + 4 * i).ok_or("truncated header");
        let hdr_len = u32_at(data, 4).ok_or("truncated header")? as usize;
        let (type_off, type_len, str_off, str_len) = (header(0)? as usize, header(1)? as usize, header(2)? as usize, header(3)? as usize);
        let types = data.get(hdr_len + type_off..hdr_len + type_off + type_len).ok_or("type section out of bounds")?;
        let strings = data.get(hdr_len + str_off..hdr_len + str_off + str_len).ok_or("string section out of bounds")?;
        let name = |off: u32| -> String {
            let tail = strings.get(off as usize..).unwrap_or_default();
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            String::from_utf8_lossy(&tail[..end]).into_owned()
        };
        let mut btf = Btf { composites: HashMap::new(), by_name: HashMap::new() };
        let mut at = 0;
        let mut id = 1u32;
        while at < types.len() {
            let word = |i: usize| u32_at(types, at + 4 * i).ok_or("truncated type");
            let (name_off, info) = (word(0)?, word(1)?);
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            at += 12;
            let extra = match kind {
                1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
                3 => 12,                      // ARRAY
                4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
                6 | 13 => 8 * vlen,           // ENUM, FUNC_PROTO
                2 | 7..=12 | 16 | 18 => 0,
                _ => return Err("unknown type kind"),
            };
            if kind == KIND_STRUCT || kind == KIND_UNION {
                let mut members = Vec::with_capacity(vlen);
                for m in 0..vlen {
                    let base = at + 12 * m;
                    let member = |i: usize| u32_at(types, base + 4 * i).ok_or("truncated member");
                    let offset = member(2)?;
                    // With kind_flag, the top 8 bits hold a bitfield size.
                    let bits = if kind_flag { offset & 0x00ff_ffff } else { offset };
                    members.push((name(member(0)?), member(1)?, bits));
                }
                let type_name = name(name_off);
                if !type_name.is_empty() {
                    btf.by_name.entry(type_name).or_insert(id);
                }
                btf.composites.insert(id, Composite { members });
            }
            at += extra;
            id += 1;
        }
        Ok(btf)
    }

    /// The byte offset of `member` in `struct_name`, looking inside anonymous struct and union
    /// members the way C does (`dentry.d_name` sits in an anonymous union on recent kernels).
    pub fn offset(&self, struct_name: &str, member: &str) -> Result<u32, BtfError> {
        let missing = || BtfError::NoMember(format!("{struct_name}.{member}"));
        let id = *self.by_name.get(struct_name).ok_or_else(missing)?;
        self.find(id, member, 0).map(|bits| bits / 8).ok_or_else(missing)
    }

    fn find(&self, id: u32, member: &str, depth: u32) -> Option<u32> {
        let composite = self.composites.get(&id)?;
        for (name, type_id, bits) in &composite.members {
            if name == member {
                return Some(*bits);
            }
            if name.is_empty() && depth < 8 {
                // Anonymous members are typed directly as the struct/union (no typedef).
                if let Some(inner) = self.find(*type_id, member, depth + 1) {
                    return Some(bits + inner);
                }
            }
        }
        None
    }

    /// What the BTF tracepoints of fork, exec and signals read through the kernel's
    /// pointers: without these the recorder could not tell which task a fork made or what an
    /// exec ran, so none of them is optional.
    pub fn tracepoint_offsets(&self) -> Result<TracepointOffsets, BtfError> {
        Ok(TracepointOffsets {
            task_pid: self.offset("task_struct", "pid")?,
            binprm_filename: self.offset("linux_binprm", "filename")?,
            siginfo_code: self.offset("kernel_siginfo", "si_code")?,
        })
    }

    /// Every offset the kernel programs need.
    pub fn kernel_offsets(&self) -> Result<KernelOffsets, BtfError> {
        // The kernel side reads a `struct path` whole, as (mnt, dentry): so it has been laid
        // out since Linux 2.6, and a kernel that changed it is told apart, not misread.
        let (mnt, dentry) = (self.offset("path", "mnt")?, self.offset("path", "dentry")?);
        if (mnt, dentry) != (0, 8) {
            return Err(BtfError::Layout(format!("struct path has mnt at {mnt} and dentry at {dentry}, not at 0 and 8")));
        }
        Ok(KernelOffsets {
            valid: 1,
            task_fs: self.offset("task_struct", "fs")?,
            task_files: self.offset("task_struct", "files")?,
            task_mm: self.offset("task_struct", "mm")?,
            mm_exe_file: self.offset("mm_struct", "exe_file")?,
            file_inode: self.offset("file", "f_inode")?,
            inode_mode: self.offset("inode", "i_mode")?,
            fs_root: self.offset("fs_struct", "root")?,
            fs_pwd: self.offset("fs_struct", "pwd")?,
            path_mnt: self.offset("path", "mnt")?,
            path_dentry: self.offset("path", "dentry")?,
            files_fdt: self.offset("files_struct", "fdt")?,
            fdt_max_fds: self.offset("fdtable", "max_fds")?,
            fdt_fd: self.offset("fdtable", "fd")?,
            file_path: self.offset("file", "f_path")?,
            dentry_parent: self.offset("dentry", "d_parent")?,
            dentry_name: self.offset("dentry", "d_name")?,
            qstr_name: self.offset("qstr", "name")?,
            vfsmount_root: self.offset("vfsmount", "mnt_root")?,
            mount_mnt: self.offset("mount", "mnt")?,
            mount_parent: self.offset("mount", "mnt_parent")?,
            mount_mountpoint: self.offset("mount", "mnt_mountpoint")?,
            // Optional: without it the syscall ABI is told by the code segment.
            thread_status: self
                .offset("task_struct", "thread_info")
                .and_then(|ti| Ok(ti + self.offset("thread_info", "status")?))
                .unwrap_or(0),
            inode_ino: self.offset("inode", "i_ino")?,
            inode_sb: self.offset("inode", "i_sb")?,
            sb_dev: self.offset("super_block", "s_dev")?,
            // Optional: without it the syscall hook asks a helper for the thread id.
            task_pid: self.offset("task_struct", "pid").unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_btf() {
        assert!(Btf::parse(b"\x7fELF....").is_err());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0]).is_err());
    }

    /// A BTF blob of named structs, each member as (name, bit offset), typed void.
    fn blob(structs: &[(&str, &[(&str, u32)])]) -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut name = |text: &str| {
            let at = strings.len() as u32;
            strings.extend_from_slice(text.as_bytes());
            strings.push(0);
            at
        };
        let mut types = Vec::new();
        for (struct_name, members) in structs {
            let words = [name(struct_name), KIND_STRUCT << 24 | members.len() as u32, 16];
            types.extend(words.iter().flat_map(|w| w.to_le_bytes()));
            for (member, bits) in members.iter() {
                types.extend([name(member), 0, *bits].iter().flat_map(|w| w.to_le_bytes()));
            }
        }
        // Header: magic, version 1, flags, its length, then the type and string sections.
        let mut data = vec![0x9f, 0xeb, 1, 0];
        let header = [24, 0, types.len() as u32, types.len() as u32, strings.len() as u32];
        data.extend(header.iter().flat_map(|w| w.to_le_bytes()));
        data.extend(types);
        data.extend(strings);
        data
    }

    /// The kernel side reads a `struct path` as (mnt, dentry) at (0, 8): a kernel laying it
    /// out otherwise is refused by name, not misread.
    #[test]
    fn refuses_a_struct_path_laid_out_otherwise() {
        let swapped = Btf::parse(&blob(&[("path", &[("mnt", 64), ("dentry", 0)])])).unwrap();
        let refused = swapped.kernel_offsets().unwrap_err();
        assert!(matches!(&refused, BtfError::Layout(why) if why.contains("mnt at 8 and dentry at 0")), "{refused}");
        // The control: the usual layout passes that check and stops at the next missing struct.
        let usual = Btf::parse(&blob(&[("path", &[("mnt", 0), ("dentry", 64)])])).unwrap();
        assert!(matches!(usual.kernel_offsets(), Err(BtfError::NoMember(member)) if member == "task_struct.fs"));
    }

    /// Reads this machine's BTF when it has one: the offsets must be distinct and plausible.
    #[test]
    fn finds_the_path_walk_offsets_on_this_kernel() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            eprintln!("skipped: this kernel has no BTF");
            return;
        }
        let btf = Btf::from_file(path).unwrap();
        let off = btf.kernel_offsets().unwrap();
        assert_eq!(off.path_mnt, 0);
        assert_eq!(off.path_dentry, 8);
        assert!(off.dentry_name > off.dentry_parent, "{off:?}");
        assert!(off.task_fs > 0 && off.task_files > 0 && off.task_fs != off.task_files);
        assert!(btf.offset("task_struct", "no_such_member").is_err());
        assert!(off.thread_status > 0, "x86's thread_info.status: {off:?}");
        let tp = btf.tracepoint_offsets().unwrap();
        // `struct kernel_siginfo` opens with si_signo, si_errno, si_code (all int).
        assert_eq!(tp.siginfo_code, 8, "{tp:?}");
        assert!(tp.task_pid > 0 && tp.binprm_filename > 0, "{tp:?}");
    }
}
