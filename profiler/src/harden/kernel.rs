//! The kernel-protection switches: clock, host name, modules, kernel logs and tunables,
//! control groups, the /proc view and the keyring.

use super::{
    Target,
    quoting::some_of,
    verdict::{Evidence, Verdict, absent_or, open, set},
};
use crate::profile::path_text::is_under;

pub fn protect_clock(ev: &Evidence) -> Verdict {
    let setters = ev.used(&["adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime"]);
    absent_or(("ProtectClock", "yes"), &setters, "the clock was never set or adjusted")
}

/// ProtectHostname=yes where the host name was never set; where it was, systemd 258's
/// =private gives the service a host name of its own to set.
pub fn protect_hostname(ev: &Evidence, target: &Target) -> Verdict {
    let setters = ev.used(&["sethostname", "setdomainname"]);
    if !setters.is_empty() && target.offers("ProtectHostname=private") {
        let why = format!("the host name was set ({}): with a host name of its own, the host's stays as it is", setters.join(", "));
        return set(&[("ProtectHostname", "private")], why);
    }
    absent_or(("ProtectHostname", "yes"), &setters, "the host name was never set")
}

pub fn protect_kernel_modules(ev: &Evidence) -> Verdict {
    let modules: Vec<&str> = ev
        .used(&["init_module", "finit_module", "delete_module"])
        .into_iter()
        .chain(ev.touched("/usr/lib/modules"))
        .chain(ev.touched("/lib/modules"))
        .collect();
    absent_or(("ProtectKernelModules", "yes"), &modules, "no module was loaded and the module tree was not read")
}

pub fn protect_kernel_logs(ev: &Evidence) -> Verdict {
    let logs: Vec<&str> = ev.used(&["syslog"]).into_iter().chain(ev.touched("/dev/kmsg")).chain(ev.touched("/proc/kmsg")).collect();
    absent_or(("ProtectKernelLogs", "yes"), &logs, "neither syslog(2) nor /dev/kmsg was used")
}

pub fn protect_kernel_tunables(ev: &Evidence) -> Verdict {
    let tunables: Vec<&str> =
        ev.written("/proc/sys").into_iter().chain(ev.written("/sys")).filter(|p| !is_under(p, "/sys/fs/cgroup")).collect();
    absent_or(("ProtectKernelTunables", "yes"), &tunables, "nothing under /proc/sys or /sys was written")
}

/// ProtectControlGroups=yes where nothing under /sys/fs/cgroup was written; =strict (systemd
/// 257: a cgroup namespace of its own, read-only) where no cgroup was even read, since in a
/// namespace the service sees its own cgroup as the root.
pub fn protect_control_groups(ev: &Evidence, target: &Target) -> Verdict {
    let written = ev.written("/sys/fs/cgroup");
    let read: Vec<&str> = ev.touched("/sys/fs/cgroup").into_iter().chain(cgroup_files_read(ev)).collect();
    if written.is_empty() && read.is_empty() && target.offers("ProtectControlGroups=strict") {
        return set(&[("ProtectControlGroups", "strict")], "no control group was read or written (/sys/fs/cgroup, /proc/*/cgroup)");
    }
    let mut verdict = absent_or(("ProtectControlGroups", "yes"), &written, "nothing under /sys/fs/cgroup was written");
    if let Verdict::Set { why, .. } = &mut verdict
        && target.offers("ProtectControlGroups=strict")
    {
        why.push(format!("not =strict: control groups were read, and a namespace would change them: {}", some_of(read, 3)));
    }
    verdict
}

/// `/proc/PID/cgroup` and `/proc/self/cgroup` files the service read.
fn cgroup_files_read<'a>(ev: &Evidence<'a>) -> Vec<&'a str> {
    ev.touched("/proc").into_iter().filter(|p| p.ends_with("/cgroup")).collect()
}

/// ProtectProc= and ProcSubset=.
pub fn proc_view(ev: &Evidence) -> Vec<Verdict> {
    let pids: Vec<&str> = ev
        .profile
        .paths
        .keys()
        .filter(|p| p.strip_prefix("/proc/").and_then(|r| r.split('/').next()).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .map(String::as_str)
        .collect();
    let non_pid: Vec<&str> = ev
        .touched("/proc")
        .into_iter()
        .filter(|p| {
            let first = p.split('/').nth(2).unwrap_or("");
            !(first.is_empty() || first == "self" || first == "thread-self" || first.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    let mut out = vec![if pids.is_empty() {
        set(&[("ProtectProc", "invisible")], "no other process was looked up in /proc by number")
    } else {
        open("ProtectProc", format!("/proc entries of processes were read by number: {}", some_of(pids.iter().copied(), 3)))
    }];
    out.push(if non_pid.is_empty() {
        set(&[("ProcSubset", "pid")], "only per-process /proc entries were read")
    } else {
        open("ProcSubset", format!("system-wide /proc files were read: {}", some_of(non_pid.iter().copied(), 3)))
    });
    out
}

pub fn keyring_mode(ev: &Evidence) -> Verdict {
    absent_or(("KeyringMode", "private"), &ev.used(&["add_key", "keyctl", "request_key"]), "no kernel keyring was used")
}
