//! The file system view: ProtectSystem=strict with the fewest ReadWritePaths=, PrivateTmp=,
//! ProtectHome= and UMask=.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    dropin::Setting,
    quoting::{comment_safe, some_of, unit_path},
    target::Target,
    verdict::{Evidence, Verdict, open, set},
};
use crate::{
    output::thousands,
    profile::{
        PathOp,
        path_text::{self, is_under},
    },
};

/// Pseudo file systems: ProtectSystem= does not govern writes there.
const KERNEL_TREES: [&str; 3] = ["/dev", "/proc", "/sys"];
const TEMPORARY: [&str; 2] = ["/tmp", "/var/tmp"];

/// PrivateTmp=yes unless something outside the service must meet it in /tmp (a socket bound
/// there); also whether it was set.
pub fn private_tmp(ev: &Evidence, target: &Target) -> (Verdict, bool) {
    let shared: Vec<&str> =
        TEMPORARY.iter().flat_map(|d| ev.paths_under(d, |op| matches!(op, PathOp::BindUnix | PathOp::ConnectUnix))).collect();
    if !shared.is_empty() {
        let why = format!("a socket in a temporary directory was bound or connected to: {}", some_of(shared.iter().copied(), 3));
        return (open("PrivateTmp", why), false);
    }
    // A private /tmp hides the host's: a program or working directory there would be gone.
    let running: Vec<&str> = ev.executables_and_directory().into_iter().filter(|p| TEMPORARY.iter().any(|d| is_under(p, d))).collect();
    if !running.is_empty() {
        return (open("PrivateTmp", format!("the service runs from a temporary directory: {}", some_of(running, 3))), false);
    }
    // A private /tmp starts empty: a write into a directory there that the service did not
    // make itself expects something put there by others.
    let made: BTreeSet<&str> = ev.paths_under("/", |op| op == PathOp::Mkdir).into_iter().collect();
    let foreign: Vec<&str> = TEMPORARY
        .iter()
        .flat_map(|d| ev.written(d))
        .filter(|p| {
            let dir = path_text::parent(p.trim_end_matches("/*"));
            dir != "/tmp" && dir != "/var/tmp" && !made.contains(dir)
        })
        .collect();
    if !foreign.is_empty() {
        let why = format!("written in temporary directories the service did not create: {}", some_of(foreign.iter().copied(), 3));
        return (open("PrivateTmp", why), false);
    }
    let used: Vec<&str> = ev.touched("/tmp").into_iter().chain(ev.touched("/var/tmp")).collect();
    if used.is_empty() && target.offers("PrivateTmp=disconnected") {
        // systemd 257: an empty tmpfs of its own, with no tie to the host's /tmp at all.
        return (set(&[("PrivateTmp", "disconnected")], "/tmp and /var/tmp were not used"), true);
    }
    let why = if used.is_empty() {
        "/tmp and /var/tmp were not used".to_string()
    } else {
        format!("/tmp and /var/tmp become the service's own ({} path(s) used, e.g. {})", used.len(), some_of(used.iter().copied(), 2))
    };
    (set(&[("PrivateTmp", "yes")], why), true)
}

/// ProtectSystem=strict with the fewest ReadWritePaths= that cover every write; left at the
/// unit's own setting when a write's full path is unknown (allowing its directory, or `/`,
/// would be deciding on what was not seen).
pub fn protect_system(ev: &Evidence, target: &Target, private_tmp: bool) -> Verdict {
    let mut needed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut partial = Vec::new();
    for (path, use_) in &ev.profile.paths {
        let writes: Vec<PathOp> = use_.ops.iter().copied().filter(|o| o.is_write()).collect();
        if writes.is_empty() || KERNEL_TREES.iter().any(|d| is_under(path, d)) {
            continue;
        }
        if private_tmp && TEMPORARY.iter().any(|d| is_under(path, d)) {
            continue;
        }
        if use_.incomplete {
            partial.push(path.as_str());
            continue;
        }
        let mut dir = match path.strip_suffix("/*") {
            Some(dir) => dir.to_string(),
            None if writes.iter().any(|o| o.changes_directory()) => path_text::parent(path).to_string(),
            None => path.clone(),
        };
        if !path_text::is_plain(&dir) {
            let unsafe_dir = dir.clone();
            while !path_text::is_plain(&dir) {
                dir = path_text::parent(&dir).to_string();
            }
            notes.push(format!(
                "WARNING: {} has characters a unit file cannot carry safely; its nearest plain ancestor {} is allowed instead",
                comment_safe(&unsafe_dir),
                dir
            ));
            log::warn!("a written path with control or non-UTF-8 bytes ({unsafe_dir}) is covered by {dir} in ReadWritePaths=");
        }
        let ops: Vec<&str> = writes.iter().map(|o| o.name()).collect();
        needed.entry(dir).or_default().push(format!("{} {}", ops.join(","), comment_safe(path)));
    }
    if !partial.is_empty() {
        return open(
            "ProtectSystem",
            format!("written where the kernel gave only part of the path, so what to allow is unknown: {}", some_of(partial, 3)),
        );
    }
    // A ReadWritePaths= line adds to the unit's: only a place the unit already lets the
    // service write may be named, or the drop-in would open what the unit had closed.
    if !target.unit.is_empty() {
        let closed: Vec<&str> = needed.keys().map(String::as_str).filter(|d| !unit_lets_write(target, d)).collect();
        if !closed.is_empty() {
            let why = format!("written where the unit's own settings do not allow it, so not recorded under them: {}", some_of(closed, 3));
            return open("ProtectSystem", why);
        }
    }
    // Keep only the outermost of nested paths.
    let all: Vec<String> = needed.keys().cloned().collect();
    let mut lines = vec![Setting::new("ProtectSystem", "strict")];
    let mut why = vec!["the whole file system is read-only for the service, except what it was seen writing".to_string()];
    why.push("(each path with `-`: one missing at the next start is skipped, not a failure to start):".to_string());
    for dir in &all {
        if all.iter().any(|other| other != dir && is_under(dir, other)) {
            continue;
        }
        let covered: Vec<String> = needed.iter().filter(|(d, _)| is_under(d, dir)).flat_map(|(_, e)| e.clone()).collect();
        why.push(format!(
            "  {}: {} ({})",
            comment_safe(dir),
            some_of(covered.iter().map(String::as_str), 3),
            thousands(covered.len() as u64)
        ));
        if let Some(hint) = directory_hint(dir) {
            why.push(format!("    {hint}"));
        }
        lines.push(Setting::new("ReadWritePaths", unit_path(&format!("-{dir}"))));
    }
    if all.is_empty() {
        why.push("  nothing outside /dev, /proc, /sys and the private /tmp was written".to_string());
    }
    why.extend(notes);
    Verdict::Set { lines, why }
}

/// Whether the unit's own settings (`systemctl show` names) let the service write at `path`:
/// ProtectSystem=, ProtectHome=, ReadOnlyPaths=/InaccessiblePaths= and what ReadWritePaths=
/// and the StateDirectory= family open again, the most specific entry winning.
fn unit_lets_write(target: &Target, path: &str) -> bool {
    let get = |key: &str| target.unit.get(key).map_or("", |v| v.trim());
    let entries = |key: &str| -> Vec<String> {
        get(key)
            .split_whitespace()
            .map(|w| w.trim_start_matches(['-', '+']).trim_matches('"').to_string())
            .filter(|w| w.starts_with('/'))
            .collect()
    };
    let mut writable = entries("ReadWritePaths");
    for (key, base) in
        [("StateDirectory", "/var/lib"), ("LogsDirectory", "/var/log"), ("CacheDirectory", "/var/cache"), ("RuntimeDirectory", "/run")]
    {
        writable.extend(get(key).split_whitespace().map(|name| format!("{base}/{}", name.split(':').next().unwrap_or(name))));
    }
    let mut closed: Vec<String> = [entries("ReadOnlyPaths"), entries("InaccessiblePaths")].concat();
    closed.extend(
        match get("ProtectSystem") {
            "strict" => &["/"][..],
            "full" => &["/usr", "/boot", "/efi", "/etc"][..],
            "yes" | "true" => &["/usr", "/boot", "/efi"][..],
            _ => &[][..],
        }
        .iter()
        .map(|d| d.to_string()),
    );
    if matches!(get("ProtectHome"), "yes" | "true" | "read-only" | "tmpfs") {
        closed.extend(["/home", "/root", "/run/user"].map(String::from));
    }
    let depth = |entries: &[String]| entries.iter().filter(|e| is_under(path, e)).map(|e| e.len()).max();
    match (depth(&closed), depth(&writable)) {
        (None, _) => true,
        (Some(closed), Some(open)) => open >= closed,
        (Some(_), None) => false,
    }
}

/// StateDirectory= and friends, where a path is a service's own directory: systemd then creates
/// and owns it, and the drop-in needs no ReadWritePaths= for it.
fn directory_hint(dir: &str) -> Option<String> {
    for (base, directive) in
        [("/var/lib", "StateDirectory"), ("/var/log", "LogsDirectory"), ("/run", "RuntimeDirectory"), ("/var/cache", "CacheDirectory")]
    {
        if let Some(rest) = dir.strip_prefix(base).and_then(|r| r.strip_prefix('/')) {
            return Some(format!("could be {directive}={} instead (systemd creates it and makes it writable)", comment_safe(rest)));
        }
    }
    None
}

pub fn protect_home(ev: &Evidence) -> Verdict {
    let homes = ["/home", "/root", "/run/user"];
    let written: Vec<&str> = homes.iter().flat_map(|d| ev.written(d)).collect();
    // What runs from a home directory, or works in one, reads it (read-only still allows that).
    let running = ev.executables_and_directory().into_iter().filter(|p| homes.iter().any(|d| is_under(p, d)));
    let touched: Vec<&str> = homes.iter().flat_map(|d| ev.touched(d)).chain(running).collect();
    if !written.is_empty() {
        open("ProtectHome", format!("home directories were written: {}", some_of(written.iter().copied(), 3)))
    } else if !touched.is_empty() {
        set(&[("ProtectHome", "read-only")], format!("home directories were only read: {}", some_of(touched.iter().copied(), 3)))
    } else {
        set(&[("ProtectHome", "yes")], "/home, /root and /run/user were never touched")
    }
}

pub fn umask(ev: &Evidence, target: &Target) -> Verdict {
    let created: Vec<&str> = ev
        .profile
        .paths
        .iter()
        .filter(|(p, u)| {
            u.ops.iter().any(|o| matches!(o, PathOp::Create | PathOp::Mkdir | PathOp::Mknod))
                && !KERNEL_TREES.iter().any(|d| is_under(p, d))
        })
        .map(|(p, _)| p.as_str())
        .collect();
    if created.is_empty() && !ev.syscalls.contains("umask") {
        // The unit's own mask keeps its bits: this one only adds to it.
        let unit = target.unit.get("UMask").and_then(|m| u32::from_str_radix(m.trim(), 8).ok()).unwrap_or(0);
        set(&[("UMask", &format!("{:04o}", 0o077 | unit))], "no file or directory was created")
    } else {
        open("UMask", format!("files were created ({}), and their modes for other users depend on it", some_of(created.iter().copied(), 2)))
    }
}
