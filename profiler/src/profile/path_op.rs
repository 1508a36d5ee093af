//! What was done to a path, as the profile names it (`create`, `write`, `bind-unix`, ...).

use serde::{Deserialize, Serialize};

/// An operation on a path. Variants are in the alphabetical order of their names, so sets of
/// them sort (and serialise) as the names did when they were strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathOp {
    BindUnix,
    Chmod,
    Chown,
    ConnectUnix,
    Create,
    Link,
    Mkdir,
    Mknod,
    Read,
    Rename,
    Rmdir,
    Stat,
    Symlink,
    Truncate,
    Unlink,
    Utimes,
    Write,
    Xattr,
}

impl PathOp {
    pub const ALL: [PathOp; 18] = [
        Self::BindUnix,
        Self::Chmod,
        Self::Chown,
        Self::ConnectUnix,
        Self::Create,
        Self::Link,
        Self::Mkdir,
        Self::Mknod,
        Self::Read,
        Self::Rename,
        Self::Rmdir,
        Self::Stat,
        Self::Symlink,
        Self::Truncate,
        Self::Unlink,
        Self::Utimes,
        Self::Write,
        Self::Xattr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::BindUnix => "bind-unix",
            Self::Chmod => "chmod",
            Self::Chown => "chown",
            Self::ConnectUnix => "connect-unix",
            Self::Create => "create",
            Self::Link => "link",
            Self::Mkdir => "mkdir",
            Self::Mknod => "mknod",
            Self::Read => "read",
            Self::Rename => "rename",
            Self::Rmdir => "rmdir",
            Self::Stat => "stat",
            Self::Symlink => "symlink",
            Self::Truncate => "truncate",
            Self::Unlink => "unlink",
            Self::Utimes => "utimes",
            Self::Write => "write",
            Self::Xattr => "xattr",
        }
    }

    /// Ops that make or remove a name: the directory holding it must be writable.
    pub fn changes_directory(self) -> bool {
        matches!(
            self,
            Self::Create
                | Self::Mkdir
                | Self::Mknod
                | Self::Unlink
                | Self::Rmdir
                | Self::Rename
                | Self::Link
                | Self::Symlink
                | Self::BindUnix
        )
    }

    /// Anything but a read, a stat or a connect to a socket needs the path writable (a
    /// socket is reached on a read-only mount too).
    pub fn is_write(self) -> bool {
        !matches!(self, Self::Read | Self::Stat | Self::ConnectUnix)
    }
}

impl std::fmt::Display for PathOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_sort_and_serialise_as_their_names() {
        let names: Vec<&str> = PathOp::ALL.iter().map(|o| o.name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for op in PathOp::ALL {
            assert_eq!(serde_json::to_string(&op).unwrap(), format!("\"{}\"", op.name()));
        }
    }
}
