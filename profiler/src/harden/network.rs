//! Networking: RestrictAddressFamilies=, PrivateNetwork=, IPAddressDeny=/Allow= and
//! SocketBindAllow=/Deny=.

use std::collections::BTreeSet;

use super::{
    dropin::Setting,
    quoting::some_of,
    target::Target,
    verdict::{Evidence, Verdict, open, set, settings},
};
use crate::output::thousands;

pub fn network(ev: &Evidence, target: &Target, pin_peers: bool) -> Vec<Verdict> {
    let unit = target.unit_security();
    let unit_allows = |family: &str| unit.as_ref().is_none_or(|u| u.allows_family(family));
    let families = ev.families();
    let mut verdicts = Vec::new();
    let mut listed: Vec<&str> = families.iter().copied().filter(|f| *f != "AF_UNSPEC" && unit_allows(f)).collect();
    let outside: Vec<&str> = families.iter().copied().filter(|f| !unit_allows(f)).collect();
    let mut why = vec![if listed.is_empty() {
        "no socket was created".to_string()
    } else {
        let by = |f: &str| some_of(ev.profile.families[f].executables.iter().map(String::as_str), 2);
        format!("socket() families: {}", listed.iter().map(|f| format!("{f} ({})", by(f))).collect::<Vec<_>>().join(", "))
    }];
    let notify = target.unit.get("Type").is_some_and(|t| t == "notify" || t == "notify-reload");
    if notify && !listed.contains(&"AF_UNIX") && unit_allows("AF_UNIX") {
        listed.push("AF_UNIX");
        listed.sort_unstable();
        why.push("AF_UNIX added: the unit is Type=notify and sd_notify needs it".into());
    }
    why.extend(ev.refusal_notes("family", "RestrictAddressFamilies", &outside));
    let value = if listed.is_empty() { "none".to_string() } else { listed.join(" ") };
    why.push("the empty assignment first resets the list; only families the unit allowed follow".into());
    verdicts.push(Verdict::Set {
        lines: vec![Setting::new("RestrictAddressFamilies", ""), Setting::new("RestrictAddressFamilies", value)],
        why,
    });

    let outward: Vec<&str> = ev.profile.sockets.iter().filter(|(_, s)| s.scope != "loopback").map(|(k, _)| k.as_str()).collect();
    let abstract_unix = ev.acts("abstract-unix");
    // Any family but AF_UNIX reaches something only the host's network namespace has.
    let host_network = families.iter().any(|f| !["AF_UNIX", "AF_UNSPEC"].contains(f));
    // A socket-activated unit is handed sockets systemd made: they were never seen here.
    let activated = target.unit.get("TriggeredBy").filter(|t| t.contains(".socket"));
    if let Some(sockets) = activated {
        let why = format!("the unit is socket-activated ({sockets}): the sockets it is handed were made by systemd, unseen");
        verdicts.push(open("PrivateNetwork", why.clone()));
        verdicts.push(open("IPAddressDeny", why));
    } else if !host_network && abstract_unix.is_empty() {
        verdicts.push(set(&[("PrivateNetwork", "yes")], "no inet, netlink or packet socket was created"));
        verdicts.push(set(&[("IPAddressDeny", "any")], "no inet socket was created"));
    } else if !host_network {
        // Abstract AF_UNIX names live in the network namespace: a private one cuts them off.
        verdicts.push(open("PrivateNetwork", format!("abstract AF_UNIX sockets were used ({})", abstract_unix.join(", "))));
        verdicts.push(set(&[("IPAddressDeny", "any")], "no inet socket was created"));
    } else {
        let host_families = families.iter().copied().filter(|f| !["AF_UNIX", "AF_UNSPEC"].contains(f));
        verdicts.push(open("PrivateNetwork", format!("the service uses the host network ({})", some_of(host_families, 4))));
        if unit.as_ref().is_some_and(|u| !u.ip_address_deny.is_empty()) {
            verdicts.push(open("IPAddressDeny", "the unit has its own IP address policy: kept as it is"));
        } else if outward.is_empty() {
            verdicts.push(Verdict::Set {
                lines: settings(&[("IPAddressDeny", "any"), ("IPAddressAllow", "localhost")]),
                why: vec!["every bind and connect was on a loopback address".into()],
            });
        } else {
            verdicts.push(pinned_peers(ev, pin_peers, &outward));
        }
    }
    verdicts.push(socket_bind(ev, target));
    verdicts
}

/// IPAddressAllow= for a service that reaches beyond loopback: only on request, and only when
/// every peer is known. Inbound clients are not observed, so a service listening beyond loopback
/// is never pinned: it would lock its own clients out.
fn pinned_peers(ev: &Evidence, pin_peers: bool, outward: &[&str]) -> Verdict {
    let listening: Vec<&str> = ev
        .profile
        .sockets
        .iter()
        .filter(|(_, s)| s.op == "bind" && s.scope != "loopback" && s.port != 0)
        .map(|(k, _)| k.as_str())
        .collect();
    if !pin_peers {
        let hint = if listening.is_empty() { " (--pin-peers pins the peers connected to)" } else { "" };
        return open("IPAddressDeny", format!("binds or connects beyond loopback: {}{hint}", some_of(outward.iter().copied(), 3)));
    }
    if !listening.is_empty() {
        let why = format!(
            "not pinned: it listens beyond loopback ({}) and its clients' addresses are not observed",
            some_of(listening.iter().copied(), 3)
        );
        return open("IPAddressDeny", why);
    }
    if let Some(lost) = ev.profile.losses.get("peers_table_full") {
        return open("IPAddressDeny", format!("not pinned: {lost} connects to new peers were lost (table full)"));
    }
    let mut lines = settings(&[("IPAddressDeny", "any"), ("IPAddressAllow", "localhost")]);
    lines.extend(ev.profile.peers.keys().map(|peer| Setting::new("IPAddressAllow", peer.as_str())));
    let why = ev
        .profile
        .peers
        .iter()
        .map(|(peer, u)| format!("{peer}: {} connects ({})", thousands(u.count), some_of(u.executables.iter().map(String::as_str), 2)))
        .collect();
    Verdict::Set { lines, why }
}

fn socket_bind(ev: &Evidence, target: &Target) -> Verdict {
    let binds: Vec<_> = ev.profile.sockets.values().filter(|s| s.op == "bind").collect();
    if ["SocketBindAllow", "SocketBindDeny"].iter().any(|d| target.unit.get(*d).is_some_and(|v| !v.trim().is_empty())) {
        return open("SocketBindAllow", "the unit has its own socket bind policy: kept as it is");
    }
    if !target.bpf_framework {
        return open("SocketBindAllow", "the target systemd lacks +BPF_FRAMEWORK: it would accept the directive without enforcing it");
    }
    if let Some(said) = &target.socket_bind_failure {
        return open("SocketBindAllow", format!("systemd could not load its socket-bind program here ({said})"));
    }
    if binds.iter().any(|s| s.port == 0) {
        return open("SocketBindAllow", "a socket was bound to port 0 (an ephemeral port)");
    }
    let allows: BTreeSet<String> = binds.iter().map(|b| format!("{}:{}:{}", b.family, b.protocol, b.port)).collect();
    let mut lines = vec![Setting::new("SocketBindDeny", "any")];
    lines.extend(allows.into_iter().map(|a| Setting::new("SocketBindAllow", a)));
    let why = if binds.is_empty() {
        "no inet socket was bound".to_string()
    } else {
        format!("ports bound: {}", binds.iter().map(|b| format!("{}/{} {}", b.protocol, b.port, b.family)).collect::<Vec<_>>().join(", "))
    };
    Verdict::Set { lines, why: vec![why] }
}
