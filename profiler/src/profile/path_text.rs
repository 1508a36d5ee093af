//! Paths as the profile stores them: raw kernel bytes made into a JSON-safe string that keeps
//! every byte recoverable, and lexical normalisation of what the kernel sent.
//!
//! A watched service chooses its file names, so nothing here may assume they are UTF-8 or free
//! of control characters. The encoding is printable UTF-8 as is, `\\` for a backslash and
//! `\xNN` for every other byte (control characters, invalid UTF-8).

/// Encodes raw path bytes.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Whether an encoded path holds only plain printable characters (no `\xNN` escapes).
pub fn is_plain(encoded: &str) -> bool {
    !encoded.replace("\\\\", "").contains('\\') && !encoded.chars().any(char::is_control)
}

/// Normalises `/a/./b/../c` to `/a/c`, lexically: `..` is taken to mean the parent even where a
/// symlink would make it mean something else (a limitation the README names).
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for part in &parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The parent of an encoded absolute path (`/` for `/x` and for `/`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Whether `path` is a process's own /proc directory (`/proc/1234`), as reads are kept: it
/// names another process in each run, so comparisons across runs treat them all as one.
pub fn is_proc_pid(path: &str) -> bool {
    path.strip_prefix("/proc/").is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `path` is `dir` or lies below it.
pub fn is_under(path: &str, dir: &str) -> bool {
    dir == "/" || path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// Whether a profile's path key is absolute and normalised: no `.` or `..` component and no
/// empty one (a folded `dir/*` is allowed).
pub fn is_normal_absolute(path: &str) -> bool {
    path == "/" || (path.starts_with('/') && path[1..].split('/').all(|c| !c.is_empty() && c != "." && c != ".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_hostile_names_reversibly_and_visibly() {
        assert_eq!(encode(b"/var/lib/app"), "/var/lib/app");
        assert_eq!(encode(b"/tmp/a\nb"), "/tmp/a\\x0ab");
        assert_eq!(encode(b"/tmp/back\\slash"), "/tmp/back\\\\slash");
        assert_eq!(encode(b"/tmp/\xff\xfe"), "/tmp/\\xff\\xfe");
        assert_eq!(encode("/tmp/caf\u{e9} %n \"q\"".as_bytes()), "/tmp/caf\u{e9} %n \"q\"");
        assert!(is_plain("/tmp/back\\\\slash"));
        assert!(!is_plain("/tmp/a\\x0ab"));
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(b"/a/./b/../c//d/"), b"/a/c/d");
        assert_eq!(normalize(b"/../.."), b"/");
        assert_eq!(parent("/var/log/x"), "/var/log");
        assert_eq!(parent("/run"), "/");
        assert!(is_under("/var/log/x", "/var/log"));
        assert!(!is_under("/var/logs", "/var/log"));
        assert!(is_under("/x", "/"));
    }
}
