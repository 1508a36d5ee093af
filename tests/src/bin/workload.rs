//! Known workloads for the root integration tests and the demo: each mode makes a small,
//! distinctive set of syscalls and capability checks.

use std::{
    ffi::CString,
    io::{Read as _, Write as _},
    time::{Duration, Instant},
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| usage());
    match arg(1) {
        "chown" => chown(arg(2)),
        "raw-icmp" => raw_icmp(),
        "own-files" => own_files(arg(2)),
        "fstat-by-fd" => fstat_by_fd(arg(2), arg(3), arg(4), arg(5)),
        "outsider" => outsider(arg(2), arg(3).parse().unwrap_or_else(|_| usage())),
        "grandchild" => grandchild(),
        "thread-exec-elsewhere" => thread_exec_elsewhere(),
        "marker" => marker(),
        "demo" => demo(),
        "mkdir-relative" => mkdir_relative(arg(2)),
        "netlink" => socket_of(libc::AF_NETLINK, libc::SOCK_RAW),
        "dev-null" => device("/dev/null", true),
        "dev-zero" => device("/dev/zero", false),
        "unshare-mnt" => unshare_mnt(),
        "write-exec" => write_exec(),
        "setuid-mode" => setuid_mode(arg(2)),
        "bind-loopback" => bind_loopback(),
        "read-proc" => read_proc(),
        "personality" => personality(),
        "realtime" => realtime(),
        "setns-net" => setns_net(),
        "setuid-exec" => setuid_exec(arg(2)),
        "connect-peers" => connect_peers(),
        "errors" => errors(),
        "seccomp-kill" => seccomp_kill(),
        "churn" => churn(arg(2), arg(3).parse().unwrap_or_else(|_| usage())),
        "refused" => refused(),
        "int80-getpid" => int80_getpid(),
        "unix-sockets" => unix_sockets(arg(2)),
        "deep-write" => deep_write(arg(2)),
        "forks" => forks(arg(2).parse().unwrap_or_else(|_| usage())),
        "handoff" => handoff(arg(2), arg(3), arg(4).parse().unwrap_or_else(|_| usage())),
        "io-uring-write" => io_uring_write(arg(2)),
        "getppid" => getppid(arg(2).parse().unwrap_or_else(|_| usage())),
        "mmap" => map_anonymous(arg(2).parse().unwrap_or_else(|_| usage())),
        "signals" => signals(arg(2).parse().unwrap_or_else(|_| usage())),
        "serve-file" => serve_file(arg(2), arg(3).parse().unwrap_or_else(|_| usage())),
        "commoncap" => commoncap(),
        "wait-lock" => wait_lock(arg(2)),
        "zombie-leader" => zombie_leader(arg(2)),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: workload chown PATH | raw-icmp | own-files DIR | outsider PATH SECONDS | grandchild | thread-exec-elsewhere | marker | demo\n\
         \x20      | mkdir-relative DIR | netlink | dev-null | dev-zero | unshare-mnt | write-exec\n\
         \x20      | setuid-mode FILE | bind-loopback | read-proc | personality | realtime | setns-net\n\
         \x20      | setuid-exec DIR | connect-peers | errors | seccomp-kill | churn DIR SECONDS\n\
         \x20      | refused | forks N | handoff DIR give|take N | io-uring-write FILE | int80-getpid | unix-sockets DIR\n\
         \x20      | deep-write DIR | getppid N | mmap N | signals N | serve-file FILE N | commoncap | wait-lock FILE\n\
         \x20      | zombie-leader DIR"
    );
    std::process::exit(2)
}

fn check(rc: libc::c_int, what: &str) {
    if rc < 0 {
        eprintln!("workload: {what}: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in test paths")
}

/// chown(2) to nobody: needs CAP_CHOWN.
fn chown(path: &str) {
    // SAFETY: valid C string.
    check(unsafe { libc::chown(cstr(path).as_ptr(), 65534, 65534) }, "chown");
}

/// A raw ICMP socket: needs CAP_NET_RAW.
fn raw_icmp() {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    check(fd, "socket(AF_INET, SOCK_RAW)");
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
}

/// Reads and writes files it created itself, and maps memory: needs no capability.
fn own_files(dir: &str) {
    let path = format!("{dir}/own-file");
    std::fs::write(&path, vec![7u8; 1 << 16]).expect("write");
    let mut buf = Vec::new();
    std::fs::File::open(&path).and_then(|mut f| f.read_to_end(&mut buf)).expect("read");
    std::fs::rename(&path, format!("{path}.moved")).expect("rename");
    std::fs::remove_file(format!("{path}.moved")).expect("unlink");
    let big: Vec<u8> = vec![1; 32 << 20];
    assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 32 << 20);
}

/// Opens FILE for reading, then looks at the open descriptor the ways fstat(3) does:
/// newfstatat and statx with an empty name and AT_EMPTY_PATH (and with none), and fstat(2)
/// itself; then, the controls, stat(2)s OTHER by its name with newfstatat, AT_NEWFSTATAT with
/// newfstatat and AT_STATX with statx, each by its name under a descriptor of its directory
/// with AT_EMPTY_PATH.
fn fstat_by_fd(file: &str, other: &str, at_newfstatat: &str, at_statx: &str) {
    let file = std::fs::File::open(file).expect("open");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let empty = cstr("");
    // SAFETY: plain syscalls on an open descriptor, into buffers that outlive them.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        check(libc::syscall(libc::SYS_newfstatat, fd, empty.as_ptr(), &mut st, libc::AT_EMPTY_PATH) as libc::c_int, "newfstatat");
        let mut stx: libc::statx = std::mem::zeroed();
        check(
            libc::syscall(libc::SYS_statx, fd, empty.as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_BASIC_STATS, &mut stx) as libc::c_int,
            "statx",
        );
        check(libc::syscall(libc::SYS_fstat, fd, &mut st) as libc::c_int, "fstat");
        // No name at all: 6.11 and later take it for the descriptor, older kernels refuse it
        // with EFAULT; neither looks a name up.
        libc::syscall(libc::SYS_newfstatat, fd, std::ptr::null::<libc::c_char>(), &mut st, libc::AT_EMPTY_PATH);
        libc::syscall(libc::SYS_statx, fd, std::ptr::null::<libc::c_char>(), libc::AT_EMPTY_PATH, libc::STATX_BASIC_STATS, &mut stx);
        let other = cstr(other);
        check(libc::syscall(libc::SYS_newfstatat, libc::AT_FDCWD, other.as_ptr(), &mut st, 0) as libc::c_int, "newfstatat by name");
        // AT_EMPTY_PATH with a name and a directory descriptor: the name is looked up there.
        for (path, statx) in [(at_newfstatat, false), (at_statx, true)] {
            let path = std::path::Path::new(path);
            let dir = std::fs::File::open(path.parent().expect("a parent")).expect("open the directory");
            let dirfd = std::os::fd::AsRawFd::as_raw_fd(&dir);
            let name = cstr(path.file_name().and_then(|n| n.to_str()).expect("a name"));
            let ret = if statx {
                libc::syscall(libc::SYS_statx, dirfd, name.as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_BASIC_STATS, &mut stx)
            } else {
                libc::syscall(libc::SYS_newfstatat, dirfd, name.as_ptr(), &mut st, libc::AT_EMPTY_PATH)
            };
            check(ret as libc::c_int, "a stat by name under a directory descriptor");
        }
    }
}

/// Runs outside the watched cgroup at the same time: chown and sysinfo(2) in a loop.
fn outsider(path: &str, seconds: u64) {
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        chown(path);
        // SAFETY: sysinfo fills the zeroed struct.
        unsafe {
            let mut info: libc::sysinfo = std::mem::zeroed();
            libc::sysinfo(&mut info);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Moves itself to the cgroup2 root, out of the cgroup it was started in, then execs `marker`
/// from a thread other than the main one: the kernel ends the main thread first and gives the
/// exec'ing thread the process's id.
fn thread_exec_elsewhere() {
    use std::os::unix::process::CommandExt as _;
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
    let root = mounts
        .lines()
        .find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(2) == Some(&"cgroup2")).then(|| fields[1].to_string())
        })
        .expect("a cgroup2 mount");
    std::fs::write(format!("{root}/cgroup.procs"), std::process::id().to_string()).expect("moving to the cgroup2 root");
    let me = std::env::current_exe().expect("own path");
    std::thread::spawn(move || {
        let error = std::process::Command::new(me).arg("marker").exec();
        eprintln!("workload: exec from a thread: {error}");
        std::process::exit(1);
    });
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Forks a child that forks and execs a grandchild (`marker`).
fn grandchild() {
    let me = std::env::current_exe().expect("own path");
    // SAFETY: the child only execs or exits.
    let pid = unsafe { libc::fork() };
    check(pid, "fork");
    if pid == 0 {
        let status = std::process::Command::new(&me).arg("marker").status().expect("exec marker");
        std::process::exit(status.code().unwrap_or(1));
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    check(unsafe { libc::waitpid(pid, &mut status, 0) }, "waitpid");
}

/// Calls times(2), which nothing else in these workloads calls.
fn marker() {
    // SAFETY: times fills the zeroed struct.
    unsafe {
        let mut t: libc::tms = std::mem::zeroed();
        libc::times(&mut t);
    }
}

/// The README's demo: a little service that keeps state, hands a file to another user,
/// talks TCP on loopback and runs a helper.
fn demo() {
    let dir = tempfile_dir();
    let state = format!("{dir}/state");
    std::fs::write(&state, b"counter=1\n").expect("write state");
    chown(&state);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let mut client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    client.write_all(b"ping").expect("send");
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).expect("receive");
    grandchild();
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!("profiler-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.to_string_lossy().into_owned()
}

/// chdir(DIR), then mkdir("cwd-made") relative to the cwd and mkdirat(dirfd of DIR/sub, "rel").
fn mkdir_relative(dir: &str) {
    std::fs::create_dir_all(format!("{dir}/sub")).expect("make sub");
    // SAFETY: valid C strings; our own descriptor.
    unsafe {
        check(libc::chdir(cstr(dir).as_ptr()), "chdir");
        check(libc::mkdir(cstr("cwd-made").as_ptr(), 0o755), "mkdir");
        let sub = libc::open(cstr("sub").as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        check(sub, "open sub");
        check(libc::mkdirat(sub, cstr("rel").as_ptr(), 0o755), "mkdirat");
        libc::close(sub);
    }
}

fn socket_of(family: libc::c_int, kind: libc::c_int) {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::socket(family, kind, 0) };
    check(fd, "socket");
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
}

/// Opens a device node, for writing or reading.
fn device(path: &str, write: bool) {
    let file = if write { std::fs::OpenOptions::new().write(true).open(path) } else { std::fs::File::open(path) };
    file.unwrap_or_else(|e| panic!("open {path}: {e}"));
}

/// A writable and executable anonymous mapping (what a JIT does).
fn write_exec() {
    // SAFETY: an anonymous mapping we unmap at once.
    unsafe {
        let prot = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
        let p = libc::mmap(std::ptr::null_mut(), 4096, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        if p == libc::MAP_FAILED {
            check(-1, "mmap");
        }
        libc::munmap(p, 4096);
    }
}

/// Gives FILE the set-user-ID bit.
fn setuid_mode(path: &str) {
    std::fs::write(path, b"#!/bin/sh\n").expect("write");
    // SAFETY: valid C string.
    check(unsafe { libc::chmod(cstr(path).as_ptr(), 0o4755) }, "chmod");
}

/// The port `bind-loopback` uses: fixed, since a bind to port 0 is recorded as port 0.
pub const LOOPBACK_PORT: u16 = 47_311;

/// A TCP listener on 127.0.0.1 and a client connecting to it.
fn bind_loopback() {
    let listener = std::net::TcpListener::bind(("127.0.0.1", LOOPBACK_PORT)).expect("listen");
    std::net::TcpStream::connect(("127.0.0.1", LOOPBACK_PORT)).expect("connect");
    drop(listener);
}

fn unshare_mnt() {
    // SAFETY: plain syscall; the new namespace dies with this process.
    check(unsafe { libc::unshare(libc::CLONE_NEWNS) }, "unshare(CLONE_NEWNS)");
}

/// Reads another process's /proc entry and a kernel tunable: what ProtectProc= and
/// ProtectKernelTunables= depend on.
fn read_proc() {
    std::fs::read("/proc/1/status").expect("read /proc/1/status");
    std::fs::read("/proc/sys/kernel/ostype").expect("read /proc/sys/kernel/ostype");
}

/// Sets the current persona to PER_LINUX32 and back; a query alone changes nothing.
fn personality() {
    const PER_LINUX32: libc::c_ulong = 0x0008;
    // SAFETY: plain syscalls; the persona only affects uname(2) in this short-lived process.
    unsafe {
        libc::personality(0xffff_ffff);
        check(libc::personality(PER_LINUX32), "personality(PER_LINUX32)");
        check(libc::personality(0), "personality(PER_LINUX)");
    }
}

/// Asks for SCHED_FIFO at the lowest realtime priority, then returns to SCHED_OTHER.
fn realtime() {
    // SAFETY: sched_param is plain data; pid 0 is this thread.
    unsafe {
        let fifo = libc::sched_param { sched_priority: 1 };
        check(libc::sched_setscheduler(0, libc::SCHED_FIFO, &fifo), "sched_setscheduler(SCHED_FIFO)");
        let other = libc::sched_param { sched_priority: 0 };
        check(libc::sched_setscheduler(0, libc::SCHED_OTHER, &other), "sched_setscheduler(SCHED_OTHER)");
    }
}

/// Joins its own network namespace again, naming its kind.
fn setns_net() {
    let ns = std::fs::File::open("/proc/self/ns/net").expect("open /proc/self/ns/net");
    use std::os::fd::AsRawFd as _;
    // SAFETY: our own descriptor; rejoining the current namespace changes nothing.
    check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, "setns(CLONE_NEWNET)");
}

/// Copies /bin/true into DIR as a set-user-ID program and runs it.
fn setuid_exec(dir: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let helper = format!("{dir}/suid-true");
    std::fs::copy("/bin/true", &helper).expect("copy /bin/true");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o4755)).expect("chmod 04755");
    let status = std::process::Command::new(&helper).status().expect("run the set-user-ID copy");
    assert!(status.success());
}

/// UDP connects to documentation addresses (RFC 5737, RFC 3849): no packet is sent, and the
/// cgroup hook sees the peer even where no route leads there.
fn connect_peers() {
    for peer in ["192.0.2.7:53", "[2001:db8:1:2::9]:53"] {
        let bind = if peer.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
        let socket = std::net::UdpSocket::bind(bind).expect("bind udp");
        let _ = socket.connect(peer);
    }
}

/// Calls that fail with errnos a sandbox causes, a signal handler that returns (rt_sigreturn),
/// then a plain exit_group: the calls that sys_exit alone would not see.
fn errors() {
    /// Past the kernel's AF_MAX (46 in 6.x): socket(2) fails with EAFNOSUPPORT.
    const NO_SUCH_FAMILY: libc::c_int = 250;
    // SAFETY: plain syscalls with invalid arguments; they fail and change nothing.
    unsafe {
        let missing = cstr("/nonexistent-profiler-workload");
        if libc::open(missing.as_ptr(), libc::O_RDONLY) >= 0 || libc::socket(NO_SUCH_FAMILY, libc::SOCK_STREAM, 0) >= 0 {
            eprintln!("workload: a call meant to fail succeeded");
            std::process::exit(1);
        }
        static SIGNALS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        extern "C" fn on_signal(_: libc::c_int) {
            SIGNALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        libc::signal(libc::SIGUSR1, on_signal as *const () as libc::sighandler_t);
        libc::raise(libc::SIGUSR1);
        // A timer firing every millisecond while the loop fails open(2) with ENOENT: its
        // signals are delivered on those returns, so rt_sigreturn restores an ax of -ENOENT.
        // That is the interrupted call's result, not rt_sigreturn's. Until 20 timer signals
        // came, not for a count of calls: under emulation on a slow host a shorter period
        // (it was 50 µs) outran the handler, and the loop never ended.
        libc::signal(libc::SIGALRM, on_signal as *const () as libc::sighandler_t);
        let every = libc::timeval { tv_sec: 0, tv_usec: 1000 };
        let timer = libc::itimerval { it_interval: every, it_value: every };
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
        while SIGNALS.load(std::sync::atomic::Ordering::Relaxed) < 21 {
            libc::open(missing.as_ptr(), libc::O_RDONLY);
        }
        let off =
            libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: libc::timeval { tv_sec: 0, tv_usec: 0 } };
        libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut());
        libc::syscall(libc::SYS_exit_group, 0);
    }
}

/// A child installs a seccomp filter that kills the process on getppid(2), then calls it: the
/// call never returns, so only the SIGSYS tells of it. The parent checks the child died so.
fn seccomp_kill() {
    const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    // SAFETY: fork; the child only makes raw syscalls before it dies.
    let child = unsafe { libc::fork() };
    check(child, "fork");
    if child == 0 {
        // Load the syscall number; if getppid, kill; else allow.
        let filter = [
            libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: 0 },
            libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt: 0, jf: 1, k: libc::SYS_getppid as u32 },
            libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: SECCOMP_RET_KILL_PROCESS },
            libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: SECCOMP_RET_ALLOW },
        ];
        let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
        // SAFETY: a valid filter program that outlives the call.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program as *const libc::sock_fprog);
            libc::syscall(libc::SYS_getppid);
            libc::_exit(3);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    check(unsafe { libc::waitpid(child, &mut status, 0) }, "waitpid");
    if !(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS) {
        eprintln!("workload: the child was not killed by SIGSYS (status {status:#x})");
        std::process::exit(1);
    }
}

/// Distinct executables the churn runs: past `MAX_EXECUTABLES` (256).
const CHURN_EXECUTABLES: usize = 400;

/// New distinct items for SECONDS, round after round: files made and removed in a fresh
/// directory, short-lived processes of 400 distinct executables, UDP connects to ever new
/// peers (198.18.0.0/15, RFC 2544: no packet is sent) and UDP binds on ever new loopback
/// ports. Within a minute this passes the capacity of the executables, signals, peers and
/// path tables, so the recorder's memory and loss counters can be watched.
fn churn(dir: &str, seconds: u64) {
    let exes = format!("{dir}/exe");
    std::fs::create_dir_all(&exes).expect("mkdir DIR/exe");
    for k in 0..CHURN_EXECUTABLES {
        std::fs::copy("/bin/true", format!("{exes}/true-{k}")).expect("copy /bin/true");
    }
    let end = Instant::now() + Duration::from_secs(seconds);
    let (mut peer, mut port, mut round) = (0u32, 0u32, 0usize);
    while Instant::now() < end {
        let files = format!("{dir}/round-{round}");
        std::fs::create_dir(&files).expect("mkdir a round directory");
        for j in 0..200 {
            std::fs::write(format!("{files}/f{j}"), b"x").expect("write a churn file");
        }
        std::fs::remove_dir_all(&files).expect("remove a round directory");
        for k in 0..5 {
            let exe = format!("{exes}/true-{}", (round * 5 + k) % CHURN_EXECUTABLES);
            let _ = std::process::Command::new(exe).status();
        }
        for _ in 0..50 {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind udp");
            let addr = std::net::Ipv4Addr::new(198, 18 + (peer >> 16 & 1) as u8, (peer >> 8) as u8, peer as u8);
            let _ = socket.connect((addr, 9));
            peer = (peer + 1) % (1 << 17);
            let _ = std::net::UdpSocket::bind(("127.0.0.1", 20_000 + (port % 40_000) as u16));
            port += 1;
        }
        round += 1;
    }
    println!("churn: {round} rounds, {peer} peers, {port} ports");
}

/// What a sandboxed service keeps trying: under a seccomp filter that answers unshare and
/// clock_settime with EPERM (as systemd's RestrictNamespaces= and SystemCallFilter= do), it
/// tries a net namespace and the clock, and a socket of a family the kernel lacks (DECnet).
fn refused() {
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jeq = |nr: libc::c_long, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k: nr as u32,
    };
    let filter = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jeq(libc::SYS_unshare, 1, 0),
        jeq(libc::SYS_clock_settime, 0, 1),
        stmt(libc::BPF_RET | libc::BPF_K, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(libc::BPF_RET | libc::BPF_K, SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
    // SAFETY: plain prctl calls with a filter that outlives them.
    unsafe {
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS");
        check(libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program as *const libc::sock_fprog), "PR_SET_SECCOMP");
    }
    // SAFETY: plain syscalls, each expected to fail.
    unsafe {
        assert_eq!(libc::unshare(libc::CLONE_NEWNET), -1, "unshare was refused");
        let now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        assert_eq!(libc::clock_settime(libc::CLOCK_REALTIME, &now), -1, "clock_settime was refused");
        const AF_DECNET: libc::c_int = 12;
        assert_eq!(libc::socket(AF_DECNET, libc::SOCK_STREAM, 0), -1, "no DECnet here");
    }
}

/// `n` children by fork, each exiting at once: each fork is one call.
fn forks(n: u32) {
    for _ in 0..n {
        // SAFETY: the child only calls _exit.
        let child = unsafe { libc::fork() };
        check(child, "fork");
        if child == 0 {
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(child, &mut status, 0) };
    }
}

/// Hands a kernel stack over from one process's threads to another's, N times, through the
/// FIFOs `token` and `go` in DIR (made by the caller). The `give` process forks, on CPU 0, a
/// child that writes a byte to `token` (so CPU 0 last saw a syscall of it), moves to CPU 1 and
/// ends there, its stack going to that CPU's cache of free stacks; the `take` process, on CPU
/// 1, woken by that byte, gives the exit a millisecond to finish, forks a child of its own,
/// most often on that very stack, which moves to CPU 0 and calls getpgrp three times there;
/// then it writes to `go` for the next round. So what CPU 0 remembers of the giver's child
/// must be cleared by the end of one or the fork of the other, whichever of the two is
/// watched. On a machine with one CPU all of it happens on CPU 0.
fn handoff(dir: &str, role: &str, n: u32) {
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let (home, away) = if cpus > 1 { if role == "give" { (0, 1) } else { (1, 0) } } else { (0, 0) };
    pin_to(home);
    let open =
        |name: &str, write: bool| std::fs::OpenOptions::new().read(!write).write(write).open(format!("{dir}/{name}")).expect("open a FIFO");
    let mut byte = [0u8; 1];
    if role == "give" {
        // Children are reaped by the kernel, so no wait of ours runs between their end and
        // the inside's fork.
        // SAFETY: setting a signal's disposition to ignore.
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
        let mut token = open("token", true);
        let mut go = open("go", false);
        for _ in 0..n {
            // SAFETY: the child makes one write, moves, and leaves with _exit.
            let child = unsafe { libc::fork() };
            check(child, "fork");
            if child == 0 {
                let _ = token.write_all(b"t");
                pin_to(away);
                // SAFETY: as above.
                unsafe { libc::_exit(0) };
            }
            if go.read_exact(&mut byte).is_err() {
                return;
            }
        }
    } else {
        let mut token = open("token", false);
        let mut go = open("go", true);
        for _ in 0..n {
            token.read_exact(&mut byte).expect("the outside's token");
            std::thread::sleep(Duration::from_millis(1));
            // SAFETY: the child moves, makes three raw syscalls and leaves with _exit.
            let child = unsafe { libc::fork() };
            check(child, "fork");
            if child == 0 {
                pin_to(away);
                // SAFETY: as above.
                unsafe {
                    for _ in 0..3 {
                        libc::syscall(libc::SYS_getpgrp);
                    }
                    libc::_exit(0);
                }
            }
            let mut status = 0;
            // SAFETY: our child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            go.write_all(b"g").expect("telling the outside to go on");
        }
    }
}

/// Creates and writes `path` through io_uring only: no open or write syscall is made.
fn io_uring_write(path: &str) {
    use io_uring::{IoUring, opcode, types};
    let mut ring = IoUring::new(4).expect("io_uring_setup");
    let name = std::ffi::CString::new(path).unwrap();
    let open = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), name.as_ptr())
        .flags(libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC)
        .mode(0o644)
        .build();
    let fd = submit_one(&mut ring, open);
    assert!(fd >= 0, "openat through io_uring: {fd}");
    let text = b"written through io_uring\n";
    let write = opcode::Write::new(types::Fd(fd), text.as_ptr(), text.len() as u32).build();
    assert_eq!(submit_one(&mut ring, write), text.len() as i32, "write through io_uring");
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
}

fn submit_one(ring: &mut io_uring::IoUring, entry: io_uring::squeue::Entry) -> i32 {
    // SAFETY: the buffers the entry points at live until it completes, below.
    unsafe { ring.submission().push(&entry).expect("a free submission slot") };
    ring.submit_and_wait(1).expect("io_uring_enter");
    ring.completion().next().expect("a completion").result()
}

/// A 64-bit process making an i386 syscall through `int 0x80`: getpid, i386 number 20 (which
/// is writev in the x86_64 table).
fn int80_getpid() {
    let pid: i64;
    // SAFETY: i386 getpid takes no arguments and only returns in eax.
    unsafe { std::arch::asm!("int 0x80", inlateout("rax") 20i64 => pid, options(nostack)) };
    assert_eq!(pid, std::process::id() as i64, "int 0x80 getpid");
}

/// A socket bound to a path in `dir` and connected to, and an abstract one bound and
/// connected to: what PrivateTmp= and PrivateNetwork= would cut off.
fn unix_sockets(dir: &str) {
    use std::os::unix::net::{UnixListener, UnixStream};
    let path = format!("{dir}/sock");
    let _listener = UnixListener::bind(&path).expect("bind a path socket");
    UnixStream::connect(&path).expect("connect to the path socket");
    let name = std::os::unix::net::SocketAddr::from_abstract_name(b"pftb-abstract").expect("an abstract name");
    use std::os::linux::net::SocketAddrExt as _;
    let _abstract = UnixListener::bind_addr(&name).expect("bind an abstract socket");
    UnixStream::connect_addr(&name).expect("connect to the abstract socket");
}

/// Creates a file by a relative name in a directory 40 levels below `dir`: deeper than the
/// kernel side walks, so the path it records is incomplete.
fn deep_write(dir: &str) {
    let mut deep = std::path::PathBuf::from(dir);
    for level in 0..40 {
        deep.push(format!("d{level}"));
    }
    std::fs::create_dir_all(&deep).expect("the deep directories");
    std::env::set_current_dir(&deep).expect("chdir into the deepest");
    std::fs::write("f", b"deep").expect("create f relative to the deepest");
}

/// The benchmark's syscall loop: N getppid calls (a syscall with no work and nothing for
/// glibc to cache); prints the nanoseconds per call.
fn getppid(n: u64) {
    let started = Instant::now();
    for _ in 0..n {
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    println!("ns_per_call {:.1}", started.elapsed().as_nanos() as f64 / n as f64);
}

/// What an allocator does for each large block, N times: maps 256 KiB of private writable
/// memory and unmaps it. The kernel checks CAP_SYS_ADMIN on each map, only to size the
/// overcommit reserve (a probe). Prints nanoseconds per round, like `getppid`.
fn map_anonymous(n: u64) {
    const LEN: usize = 256 << 10;
    let started = Instant::now();
    for _ in 0..n {
        // SAFETY: a fresh anonymous mapping, unmapped before the next round, never touched.
        unsafe {
            let block =
                libc::mmap(std::ptr::null_mut(), LEN, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            check(if block == libc::MAP_FAILED { -1 } else { 0 }, "mmap");
            check(libc::munmap(block, LEN), "munmap");
        }
    }
    println!("ns_per_call {:.1}", started.elapsed().as_nanos() as f64 / n as f64);
}

/// One call that stays in the kernel until someone else lets it go: makes FILE.ready, then
/// waits in flock(2) for the lock on FILE that the caller holds, and returns once it has it.
/// FILE.ready holds the workload's pid.
fn wait_lock(path: &str) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| {
        eprintln!("workload: {path}: {e}");
        std::process::exit(1)
    });
    check(std::fs::write(format!("{path}.ready"), std::process::id().to_string()).map_or(-1, |()| 0), "making the ready mark");
    // SAFETY: a descriptor we own.
    check(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) }, "flock");
}

/// What a static web server does per request for one file, N times: open it by name, look at
/// the descriptor (fstat), read it, close it. Prints nanoseconds per round, like `getppid`.
fn serve_file(path: &str, n: u64) {
    let name = cstr(path);
    let mut buf = [0u8; 1024];
    let started = Instant::now();
    for _ in 0..n {
        // SAFETY: plain syscalls on our own descriptor and buffers that outlive them.
        unsafe {
            let fd = libc::open(name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            check(fd, "open");
            let mut st: libc::stat = std::mem::zeroed();
            check(libc::fstat(fd, &mut st), "fstat");
            check(libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) as libc::c_int, "read");
            libc::close(fd);
        }
    }
    println!("ns_per_call {:.1}", started.elapsed().as_nanos() as f64 / n as f64);
}

/// A process whose main thread has ended while another lives on (a zombie leader): the main
/// thread makes DIR/ready and ends alone, by exit(2); the other waits for DIR/go, calls
/// getpgrp and ends the process (with status 1 if DIR/go is not there within a minute).
fn zombie_leader(dir: &str) {
    let go = std::path::PathBuf::from(format!("{dir}/go"));
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !go.exists() {
            if Instant::now() > deadline {
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: getpgrp has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getpgrp) };
        std::process::exit(0)
    });
    std::fs::write(format!("{dir}/ready"), b"").unwrap_or_else(|e| {
        eprintln!("workload: {dir}/ready: {e}");
        std::process::exit(1)
    });
    // SAFETY: ends this thread only, as a C program's main thread calling pthread_exit would;
    // nothing of this thread is used after.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
}

/// Runs the calling thread on CPU `cpu` only, from the return of this call on.
fn pin_to(cpu: usize) {
    // SAFETY: a CPU set on our stack, filled by CPU_ZERO/CPU_SET, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        check(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), "sched_setaffinity");
    }
}

/// N signals sent to itself (SIGUSR1, blocked) and taken with sigwaitinfo: two syscalls and
/// one `signal_generate` each. Prints nanoseconds per signal, like `getppid`.
fn signals(n: u64) {
    // SAFETY: a signal set on our stack, filled by sigemptyset/sigaddset, and plain syscalls
    // on it; SIGUSR1 stays blocked, so it is only ever taken by sigwaitinfo.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        check(libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()), "pthread_sigmask");
        let started = Instant::now();
        for _ in 0..n {
            check(libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), libc::SIGUSR1) as libc::c_int, "tgkill");
            check(libc::sigwaitinfo(&set, std::ptr::null_mut()), "sigwaitinfo");
        }
        println!("ns_per_call {:.1}", started.elapsed().as_nanos() as f64 / n as f64);
    }
}

/// Capability checks the kernel makes inside security/commoncap.c by calling cap_capable
/// directly: mmap below mmap_min_addr (CAP_SYS_RAWIO, cap_mmap_addr) and capset (CAP_SETPCAP,
/// cap_inh_is_capped). As root both are granted.
fn commoncap() {
    // SAFETY: an anonymous mapping at address 0 (below mmap_min_addr), unmapped below.
    let low = unsafe {
        libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE, -1, 0)
    };
    check(if low == libc::MAP_FAILED { -1 } else { 0 }, "mmap at 0");
    // SAFETY: unmapping our own mapping.
    unsafe { libc::munmap(low, 4096) };
    // struct __user_cap_header_struct { u32 version; int pid; } with version 3 (0x20080522),
    // then two struct __user_cap_data_struct { u32 effective, permitted, inheritable; }.
    let mut header: [u32; 2] = [0x2008_0522, 0];
    let mut data = [0u32; 6];
    // SAFETY: capget and capset with a v3 header and two data words, as the ABI wants.
    check(unsafe { libc::syscall(libc::SYS_capget, header.as_mut_ptr(), data.as_mut_ptr()) } as libc::c_int, "capget");
    check(unsafe { libc::syscall(libc::SYS_capset, header.as_mut_ptr(), data.as_ptr()) } as libc::c_int, "capset");
}
