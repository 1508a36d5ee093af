//! What a process may become or do to itself: namespaces, W^X memory, new privileges,
//! set-user-ID files, personality, realtime scheduling, IPC objects and mounts.

use super::{
    quoting::some_of,
    target::Target,
    verdict::{Evidence, Verdict, absent_or, open, set, settings},
};

pub fn namespaces(ev: &Evidence, target: &Target) -> Verdict {
    let unit = target.unit_security();
    let all: Vec<&str> = ev.profile.namespaces.keys().map(String::as_str).collect();
    if all.contains(&"setns-any") {
        return open("RestrictNamespaces", "setns(2) was called without naming a namespace type");
    }
    let (kinds, outside): (Vec<&str>, Vec<&str>) = all.iter().partition(|k| unit.as_ref().is_none_or(|u| u.allows_namespace(k)));
    let mut why = vec![if kinds.is_empty() {
        "no namespace was created or joined".to_string()
    } else {
        format!("namespaces created or joined: {}", kinds.join(", "))
    }];
    why.extend(ev.refusal_notes("namespace", "RestrictNamespaces", &outside));
    // A list merges with the unit's own list: reset first. "yes" replaces on its own.
    let lines = if kinds.is_empty() {
        settings(&[("RestrictNamespaces", "yes")])
    } else {
        settings(&[("RestrictNamespaces", ""), ("RestrictNamespaces", &kinds.join(" "))])
    };
    Verdict::Set { lines, why }
}

pub fn memory_deny_write_execute(ev: &Evidence) -> Verdict {
    let acts: Vec<&str> = ev.acts("mmap-write-exec").into_iter().chain(ev.acts("mprotect-exec")).collect();
    absent_or(("MemoryDenyWriteExecute", "yes"), &acts, "no writable-and-executable mapping was made")
}

pub fn no_new_privileges(ev: &Evidence) -> Verdict {
    match ev.profile.acts.get("setuid-exec") {
        None if ev.profile.recording.set_id_execs_unseen() => open(
            "NoNewPrivileges",
            "the recorder could not read the files executed (this kernel's BTF lacked a member on the way to them), so a set-user-ID program would have gone unseen",
        ),
        None => set(&[("NoNewPrivileges", "yes")], "no set-user-ID or set-group-ID program was executed"),
        Some(u) => open(
            "NoNewPrivileges",
            format!(
                "set-user-ID/set-group-ID programs ran ({}); note that SystemCallFilter= and the other seccomp-based lines imply it anyway once CAP_SYS_ADMIN is not kept",
                some_of(u.executables.iter().map(String::as_str), 3)
            ),
        ),
    }
}

pub fn restrict_suid_sgid(ev: &Evidence) -> Verdict {
    absent_or(("RestrictSUIDSGID", "yes"), &ev.acts("setuid-mode"), "no file was given a set-user-ID or set-group-ID mode")
}

pub fn lock_personality(ev: &Evidence) -> Verdict {
    let changed: Vec<&str> = ev.acts("personality").into_iter().filter(|p| *p != "personality 0x0").collect();
    absent_or(("LockPersonality", "yes"), &changed, "the execution domain was never changed")
}

pub fn restrict_realtime(ev: &Evidence) -> Verdict {
    absent_or(("RestrictRealtime", "yes"), &ev.acts("realtime"), "no realtime scheduling policy was requested")
}

/// PrivateIPC= and RemoveIPC=.
pub fn ipc(ev: &Evidence) -> [Verdict; 2] {
    // i386 reaches System V IPC through ipc(2).
    let ipc = ev.used(&["shmget", "shmat", "semget", "msgget", "mq_open", "ipc"]);
    let why = "no System V or POSIX message-queue IPC object was used";
    [absent_or(("PrivateIPC", "yes"), &ipc, why), absent_or(("RemoveIPC", "yes"), &ipc, why)]
}

pub fn private_mounts(ev: &Evidence) -> Verdict {
    absent_or(
        ("PrivateMounts", "yes"),
        &ev.used(&["mount", "umount", "umount2", "move_mount", "fsmount", "pivot_root"]),
        "nothing was mounted",
    )
}

/// Directives the target offers whose evidence the recorder does not collect: left open with
/// what is missing, unless the unit already sets them.
pub fn unobserved(target: &Target) -> Vec<Verdict> {
    let missing = [
        (
            "PrivatePIDs",
            "the main process would become PID 1 of its own namespace, where a signal it has no handler for is ignored, \
             and the recorder does not see which handlers the service installs",
        ),
        ("PrivateUsers", "files owned by other users would show as nobody's, and the recorder does not record file ownership"),
    ];
    missing
        .into_iter()
        .filter(|(directive, _)| target.offers(directive))
        .filter(|(directive, _)| target.unit.get(*directive).is_none_or(|v| matches!(v.as_str(), "" | "no")))
        .map(|(directive, why)| open(directive, why))
        .collect()
}
