//! Devices: PrivateDevices= where only pseudo devices were opened, else DevicePolicy=closed
//! with a DeviceAllow= line per device seen.

use super::{
    dropin::Setting,
    quoting::some_of,
    target::Target,
    verdict::{Evidence, Verdict, open, set},
};

/// Devices PrivateDevices= keeps (drivers/char/mem.c and tty numbers): null, zero, full, random,
/// urandom, tty, ptmx, and the pts range.
fn private_devices_keeps(kind: &str, major: u32, minor: u32) -> bool {
    kind == "char"
        && ((major == 1 && [3, 5, 7, 8, 9].contains(&minor)) || (major == 5 && [0, 2].contains(&minor)) || (136..=143).contains(&major))
}

pub fn devices(ev: &Evidence, target: &Target) -> Vec<Verdict> {
    let devices = &ev.profile.devices;
    // A unit with a device policy of its own has decided what it may open; a device the
    // cgroup programs saw may be one that policy refused. Its policy stays as it is.
    let policy = target.unit.get("DevicePolicy").map_or("auto", |p| p.trim());
    let private = target.unit.get("PrivateDevices").is_some_and(|p| p.trim() == "yes");
    if policy != "auto" || private {
        let why = format!(
            "the unit has its own device policy (DevicePolicy={policy}{}): kept as it is",
            if private { ", PrivateDevices=yes" } else { "" }
        );
        return vec![open("DevicePolicy", why)];
    }
    let others: Vec<&str> =
        devices.iter().filter(|(_, d)| !private_devices_keeps(&d.kind, d.major, d.minor)).map(|(k, _)| k.as_str()).collect();
    let caps: Vec<&str> =
        ["CAP_MKNOD", "CAP_SYS_RAWIO"].into_iter().filter(|c| ev.profile.capabilities.get(*c).is_some_and(|u| u.needed())).collect();
    if others.is_empty() && caps.is_empty() {
        let seen = if devices.is_empty() {
            "no device node was opened".to_string()
        } else {
            format!("only pseudo devices were opened ({})", some_of(devices.keys().map(String::as_str), 4))
        };
        // PrivateDevices= also takes CAP_SYS_RAWIO and CAP_MKNOD away: only where every check
        // of them could be seen. Otherwise the closed policy keeps the pseudo devices alone.
        if ev.profile.recording.capabilities_unseen().is_some() {
            let why = "it also takes CAP_SYS_RAWIO and CAP_MKNOD away, and the capability hooks used while recording could not see every check of them";
            return vec![
                open("PrivateDevices", why),
                set(&[("DevicePolicy", "closed")], format!("{seen}; the closed policy keeps only those")),
            ];
        }
        return vec![set(&[("PrivateDevices", "yes")], format!("{seen}; implies DevicePolicy=closed"))];
    }
    let mut lines = vec![Setting::new("DevicePolicy", "closed")];
    let mut why = vec![format!("devices beyond the pseudo ones were opened: {}", some_of(others.iter().copied(), 4))];
    for (name, d) in devices {
        lines.push(Setting::new("DeviceAllow", format!("/dev/{}/{}:{} {}", d.kind, d.major, d.minor, d.access)));
        why.push(format!("  {name} {} by {}", d.access, some_of(d.executables.iter().map(String::as_str), 2)));
    }
    vec![open("PrivateDevices", format!("{} opened", some_of(others.iter().copied().chain(caps), 4))), Verdict::Set { lines, why }]
}
