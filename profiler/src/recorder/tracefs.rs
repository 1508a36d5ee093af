//! The tracing and BPF filesystems: mounted when absent, and tracepoint record layouts read
//! from the running kernel, so field offsets never come from the build machine.

use std::{
    fs,
    path::{Path, PathBuf},
};

use std::ffi::CStr;

const TRACEFS: &str = "/sys/kernel/tracing";
const TRACEFS_MAGIC: i64 = 0x7472_6163;
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error("cannot mount {fstype} at {path}: {source}")]
    Mount { fstype: &'static str, path: &'static str, source: std::io::Error },
    #[error("cannot read tracepoint format {path}: {source} (is the tracepoint in this kernel?)")]
    Format { path: PathBuf, source: std::io::Error },
    #[error("tracepoint {tracepoint} has no field {field:?} in {path}")]
    NoField { tracepoint: String, field: String, path: PathBuf },
}

/// Mounts tracefs and bpffs where this host has not (DESIGN §1: they may be absent).
pub fn ensure_mounted() -> Result<(), TracefsError> {
    mount_if_absent(c"tracefs", c"/sys/kernel/tracing", TRACEFS_MAGIC)?;
    mount_if_absent(c"bpf", c"/sys/fs/bpf", BPF_FS_MAGIC)
}

fn mount_if_absent(fstype: &'static CStr, path: &'static CStr, magic: i64) -> Result<(), TracefsError> {
    if fs_magic(path) == Some(magic) {
        return Ok(());
    }
    // SAFETY: valid NUL-terminated strings; no mount data.
    let rc = unsafe { libc::mount(fstype.as_ptr(), path.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    let (fstype, path) = (fstype.to_str().unwrap_or("?"), path.to_str().unwrap_or("?"));
    if rc != 0 {
        return Err(TracefsError::Mount { fstype, path, source: std::io::Error::last_os_error() });
    }
    Ok(())
}

fn fs_magic(path: &CStr) -> Option<i64> {
    // SAFETY: statfs fills the zeroed struct or fails.
    unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        (libc::statfs(path.as_ptr(), &mut buf) == 0).then_some(buf.f_type as i64)
    }
}

/// The byte offset of `field` in the record of tracepoint `category/name`.
pub fn field_offset(category: &str, name: &str, field: &str) -> Result<u32, TracefsError> {
    let path = Path::new(TRACEFS).join("events").join(category).join(name).join("format");
    let text = fs::read_to_string(&path).map_err(|source| TracefsError::Format { path: path.clone(), source })?;
    parse_field_offset(&text, field).ok_or_else(|| TracefsError::NoField {
        tracepoint: format!("{category}:{name}"),
        field: field.into(),
        path,
    })
}

/// Finds `offset:N` on the line declaring `field` in a tracepoint format description, e.g.
/// `field:int cap;` `offset:32;` `size:4;` `signed:1;`, tab-separated.
fn parse_field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        // The declaration's last word is the field name, possibly with an array suffix.
        let declared = decl.split_whitespace().last()?;
        let declared = declared.split('[').next()?;
        if declared != field {
            return None;
        }
        rest.split(';').find_map(|part| part.trim().strip_prefix("offset:")?.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORK: &str = "name: sched_process_fork\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\
        \tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n\
        \tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;\n\
        \tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n";

    #[test]
    fn finds_fields_by_exact_name() {
        assert_eq!(parse_field_offset(FORK, "child_pid"), Some(20));
        assert_eq!(parse_field_offset(FORK, "parent_pid"), Some(12));
        assert_eq!(parse_field_offset(FORK, "child_comm"), Some(16));
        assert_eq!(parse_field_offset(FORK, "pid"), None);
    }

    #[test]
    fn reads_array_fields() {
        let exit = "\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n";
        assert_eq!(parse_field_offset(exit, "comm"), Some(8));
    }
}
