//! Each known runtime escape performed against the runtime, and shown to fail; and seccomp
//! profiles that hold.

use integration::features::{self, Feature};
use integration::{run_bundle, run_script, Bundle, Container, Runtime, TempDir};
use serde_json::json;

/// runc 1.1.5 predates some fixes; those attacks are run against hull only, saying so.
fn hull_only(rt: &Runtime, cve: &str) -> bool {
    if rt.is_hull() {
        return true;
    }
    println!("reference runtime: {cve} is fixed after runc 1.1.5; not run");
    false
}

#[test]
fn cve_2019_5736_and_2016_9962_runtime_process_is_untouchable() {
    // While the container is created, its pid 1 is still the runtime's own process. A process
    // in the container must not open its exe (to overwrite the runtime binary) nor ptrace-read it.
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let out = rt.ok(&[
        "exec", &c.id, "sh", "-c",
        "cat /proc/1/exe > /dev/null 2>&1 && echo exe-read; echo x >> /proc/1/exe 2>/dev/null && echo exe-write; \
         cat /proc/1/environ > /dev/null 2>&1 && echo environ-read; readlink /proc/1/exe >/dev/null 2>&1 && echo exe-link; \
         readlink /proc/1/fd/0 > /dev/null 2>&1 && echo fd-link; echo end",
    ]);
    assert!(
        !out.contains("exe-write"),
        "the runtime binary was writable: {out}"
    );
    if rt.is_hull() {
        // hull's init is non-dumpable until exec; runc 1.1 instead runs from a sealed memfd
        // copy, so reading is harmless there.
        assert_eq!(out, "end\n", "the runtime process was reachable: {out}");
    }
}

#[test]
fn cve_2024_21626_leaked_fd_as_cwd_is_refused() {
    let rt = Runtime::new();
    if !hull_only(&rt, "CVE-2024-21626") {
        return;
    }
    for fd in 3..12 {
        let mut b = Bundle::new(&[]);
        b.script("pwd; ls ../../.. | head -3");
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        let (code, out, err) = run_bundle(&rt, &b);
        assert!(
            code != 0 || !out.contains("unreachable"),
            "fd {fd}: ran with a cwd outside the root: {out} {err}"
        );
    }
}

#[test]
fn cve_2021_30465_and_2024_45310_symlinked_destinations_stay_inside() {
    let rt = Runtime::new();
    let host = TempDir::new("target");
    for (name, link) in [
        ("abs", host.path.display().to_string()),
        (
            "rel",
            format!("../../../../../../..{}", host.path.display()),
        ),
    ] {
        let mut b = Bundle::new(&["true"]);
        std::os::unix::fs::symlink(&link, b.rootfs().join(name)).unwrap();
        b.config["mounts"].as_array_mut().unwrap().push(json!(
            {"destination": format!("/{name}/sub/dir"), "type": "tmpfs", "source": "tmpfs"}));
        let _ = run_bundle(&rt, &b);
        assert!(
            integration::mounts_below(&host.path).is_empty(),
            "{name}: mount escaped"
        );
        assert!(
            std::fs::read_dir(&host.path).unwrap().next().is_none(),
            "{name}: directories were created on the host"
        );
    }
}

#[test]
fn cve_2019_16884_and_2023_27561_proc_cannot_be_redirected() {
    let rt = Runtime::new();
    // /proc as a symlink to another directory of the rootfs.
    let b = Bundle::new(&["true"]);
    std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
    std::fs::create_dir(b.rootfs().join("fakeproc")).unwrap();
    std::os::unix::fs::symlink("/fakeproc", b.rootfs().join("proc")).unwrap();
    let (code, _, err) = run_bundle(&rt, &b);
    assert_ne!(code, 0, "proc was mounted through a symlink");
    if rt.is_hull() {
        assert!(err.contains("symlink"), "{err}");
    }
    // Something mounted over a part of /proc that masks rely on (runc 1.1 allows /proc/sys).
    if !rt.is_hull() {
        return;
    }
    let mut b = Bundle::new(&["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}));
    let (code, _, _) = run_bundle(&rt, &b);
    assert_ne!(code, 0, "a mount over /proc/sys was accepted");
}

#[test]
fn cve_2025_31133_masking_checks_dev_null() {
    let rt = Runtime::new();
    if !hull_only(&rt, "CVE-2025-31133") {
        return;
    }
    // No /dev tmpfs: the image's own /dev/null, a symlink to a procfs file, stays in place.
    let mut b = Bundle::new(&["true"]);
    std::fs::create_dir_all(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", b.rootfs().join("dev/null"))
        .unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    let (code, _, err) = run_bundle(&rt, &b);
    assert_ne!(
        code, 0,
        "masking used a /dev/null that is not the null device"
    );
    assert!(err.contains("null device"), "{err}");
}

#[test]
fn cve_2025_52565_console_is_never_mounted_through_a_symlink() {
    let rt = Runtime::new();
    if !hull_only(&rt, "CVE-2025-52565") {
        return;
    }
    let mut b = Bundle::new(&[]);
    b.script("test -L /dev/console && echo symlink; stat -c '%t' /dev/console; cat /proc/sys/kernel/core_pattern | head -c 1 >/dev/null && echo proc-ok");
    std::fs::create_dir_all(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink(
        "/proc/sys/kernel/core_pattern",
        b.rootfs().join("dev/console"),
    )
    .unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev");
    b.config["process"]["terminal"] = json!(true);
    b.save();
    // A foreground run owns the pty; stdin is not a terminal, output still flows.
    let c = Container::new(&rt);
    let out = rt.run(&["run", "--bundle", b.path_str(), &c.id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("symlink"), "{text}");
    assert!(
        text.contains("88"),
        "/dev/console is not the pty (major 136 = 0x88): {text}"
    );
    assert!(text.contains("proc-ok"), "{text}");
}

#[test]
fn cve_2022_29162_no_inheritable_capabilities_by_default() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    rt.ok(&["spec", "--bundle", b.path_str()]);
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["grep", "-E", "^Cap(Inh|Amb)", "/proc/self/status"]);
    std::fs::write(b.path().join("config.json"), config.to_string()).unwrap();
    let c = Container::new(&rt);
    let out = rt.ok(&["run", "--bundle", b.path_str(), &c.id]);
    assert_eq!(out.lines().count(), 2, "{out}");
    for line in out.lines() {
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
}

#[test]
fn rootfs_whose_dev_is_a_symlink_stays_contained() {
    let rt = Runtime::new();
    if !hull_only(&rt, "creating devices through a symlinked /dev") {
        return;
    }
    let host = TempDir::new("hostdev");
    let b = Bundle::new(&["true"]);
    std::fs::remove_dir(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink(&host.path, b.rootfs().join("dev")).unwrap();
    let _ = run_bundle(&rt, &b);
    assert!(
        integration::mounts_below(&host.path).is_empty(),
        "a mount landed on the host"
    );
    assert!(
        std::fs::read_dir(&host.path).unwrap().next().is_none(),
        "devices were created on the host"
    );
}

#[test]
fn seccomp_errno_kill_and_argument_rules() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "mkdir /x 2>&1 | grep -o 'Permission denied'; chdir() { :; }; uname -m >/dev/null && echo uname-ok",
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
                ]
            });
        },
    );
    assert_eq!(out, "Permission denied\nuname-ok\n");

    let mut b = Bundle::new(&[]);
    // busybox forks for mkdir: the child dies of SIGSYS, the shell reports it.
    b.script("mkdir /y; echo status=$?");
    b.config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("status={}\n", 128 + 31), "SIGSYS expected");
}

#[test]
fn seccomp_allowlist_default_errno() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script("echo hi");
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "write", "exit_group", "execve", "brk", "mmap", "arch_prctl",
                   "set_tid_address", "rt_sigaction", "rt_sigprocmask", "getpid", "getppid", "getuid",
                   "geteuid", "getgid", "getegid", "ioctl", "fcntl", "close", "openat", "newfstatat",
                   "fstat", "stat", "lstat", "uname", "prctl", "capget", "capset", "setgroups",
                   "setresuid", "setresgid", "munmap", "mprotect", "access", "readlink", "getcwd",
                   "exit", "rseq", "set_robust_list", "prlimit64", "getrandom", "futex", "poll",
                   "wait4", "clone", "vfork", "dup2", "dup3", "pipe", "pipe2", "chdir", "umask",
                   "sigaltstack", "rt_sigreturn", "kill", "setpgid", "getpgrp", "getpgid", "setsid",
                   "nanosleep", "clock_nanosleep", "mkdir", "sched_getaffinity", "lseek", "writev",
                   "statfs", "fstatfs", "getdents64", "close_range", "fchdir", "gettid", "tgkill",
                   "madvise", "sched_yield", "epoll_pwait", "epoll_ctl", "epoll_create1", "fchown",
                   "fchmod", "getppid", "exit", "mincore", "setns", "openat2", "faccessat2"],
         "action": "SCMP_ACT_ALLOW"}]});
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hi\n");
    // cd is a shell builtin: chdir, left out of the list, must fail inside the same process.
    b.script("echo hi; cd /proc 2>/dev/null || echo blocked");
    b.config["linux"]["seccomp"]["syscalls"][0]["names"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n != "chdir");
    let (_, out, _) = run_bundle(&rt, &b);
    assert_eq!(out, "hi\nblocked\n", "chdir is not in the allowlist");
}

#[test]
fn docker_default_seccomp_blocks_what_docker_blocks() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    // The profile hull defines as docker's default (wharf's default): under REFERENCE this
    // shows that it means the same to runc.
    let spec = std::process::Command::new(integration::hull_bin())
        .args(["spec", "--bundle", b.path_str()])
        .status()
        .unwrap();
    assert!(spec.success());
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    config["linux"]["seccomp"] = hull::spec::docker_default_seccomp();
    config["process"]["terminal"] = json!(false);
    config["root"]["readonly"] = json!(false);
    // With CAP_SYS_ADMIN only seccomp stands between the process and these calls.
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    config["process"]["args"] = json!(["sh", "-c",
        "mount -t tmpfs t /mnt 2>/dev/null && echo mount-ok; unshare -n true 2>/dev/null && echo unshare-ok; \
         echo x > /tmp/f && cat /tmp/f && ls / >/dev/null && echo works"]);
    std::fs::write(b.path().join("config.json"), config.to_string()).unwrap();
    let c = Container::new(&rt);
    let out = rt.ok(&["run", "--bundle", b.path_str(), &c.id]);
    assert_eq!(out, "x\nworks\n");
}

/// A seccomp agent like the ones engines run: it takes each listener handed over on its socket
/// and answers every notified syscall with "success" without performing it.
struct FakeAgent {
    socket: std::path::PathBuf,
    received: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl FakeAgent {
    fn start(dir: &std::path::Path) -> FakeAgent {
        let socket = dir.join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let (tx, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (state, fd) = recv_with_fd(&conn);
                if tx.send(state).is_err() {
                    return;
                }
                std::thread::spawn(move || answer_notifications(fd));
            }
        });
        FakeAgent { socket, received }
    }

    fn next(&self) -> serde_json::Value {
        self.received
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the runtime connects to the agent")
    }
}

fn recv_with_fd(
    conn: &std::os::unix::net::UnixStream,
) -> (serde_json::Value, std::os::fd::OwnedFd) {
    let (data, fd) = integration::recv_fd(conn);
    (
        serde_json::from_slice(&data).expect("the message is JSON"),
        fd,
    )
}

/// A running fake agent in a directory of its own, where this kernel has seccomp notify.
fn notify_agent() -> Option<(TempDir, FakeAgent)> {
    if !features::require(Feature::SeccompNotify, "SCMP_ACT_NOTIFY") {
        return None;
    }
    let dir = TempDir::new("hull-agent");
    let agent = FakeAgent::start(&dir.path);
    Some((dir, agent))
}

/// Answers notifications until the last process using the filter is gone: mkdir and mkdirat
/// "succeed" without being performed, every other call goes on as if not notified.
fn answer_notifications(fd: std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 30_000) } <= 0 || pfd.revents & libc::POLLIN == 0 {
            return;
        }
        // SAFETY: the kernel requires a zeroed seccomp_notif and fills it in.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: ioctl on our listener with a live struct of the right type.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
            continue;
        }
        let faked = [libc::SYS_mkdir, libc::SYS_mkdirat].contains(&i64::from(req.data.nr));
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: 0,
            flags: if faked {
                0
            } else {
                libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
            },
        };
        // SAFETY: as above; the target may have died meanwhile, which only fails the ioctl.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    }
}

#[test]
fn seccomp_notify_hands_the_listener_to_the_agent() {
    let Some((_agent_dir, agent)) = notify_agent() else {
        return;
    };
    let rt = Runtime::new();
    for nnp in [false, true] {
        let mut b = Bundle::new(&[]);
        b.script(
            "mkdir /made-by-agent && echo mkdir-ok; [ -d /made-by-agent ] || echo absent; sleep 30",
        );
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": agent.socket,
            "listenerMetadata": "hull-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
        b.save();
        let c = Container::new(&rt);
        let out_path = b.path().join("out");
        let status = rt
            .cmd()
            .args(["run", "-d", "--bundle", b.path_str(), &c.id])
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "run -d with a seccomp agent (nnp {nnp})");
        let got = agent.next();
        let init = rt.state(&c.id)["pid"].as_i64().unwrap();
        assert_eq!(got["fds"], json!(["seccompFd"]), "{got}");
        assert_eq!(got["metadata"], "hull-test", "{got}");
        assert_eq!(got["pid"].as_i64(), Some(init), "{got}");
        assert_eq!(got["state"]["id"], c.id.as_str(), "{got}");
        assert_eq!(got["state"]["bundle"].as_str(), b.path().to_str(), "{got}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let out = loop {
            let out = std::fs::read_to_string(&out_path).unwrap();
            if out.contains("absent") || std::time::Instant::now() > deadline {
                break out;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(
            out, "mkdir-ok\nabsent\n",
            "the agent answered mkdir (nnp {nnp})"
        );
        if !nnp {
            continue;
        }
        let out = rt.ok(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            "mkdir /by-exec && echo ok; ls -d /by-exec 2>&1; true",
        ]);
        let got = agent.next();
        assert!(
            out.starts_with("ok\n") && out.contains("No such file"),
            "{out}"
        );
        assert_eq!(got["state"]["id"], c.id.as_str(), "{got}");
        assert_ne!(got["pid"].as_i64(), Some(init), "exec's own pid: {got}");
    }
}

#[test]
fn seccomp_notify_without_an_agent_leaves_nothing() {
    if !features::require(Feature::SeccompNotify, "SCMP_ACT_NOTIFY") {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": b.path().join("nobody-listens"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.save();
    let c = Container::new(&rt);
    let out = rt.run(&["run", "--bundle", b.path_str(), &c.id]);
    assert!(!out.status.success(), "no agent listening");
    let err = String::from_utf8_lossy(&out.stderr);
    if rt.is_hull() {
        assert!(err.contains("nobody-listens"), "{err}");
        assert_eq!(rt.ok(&["list", "-q"]), "", "no container left");
        assert!(
            integration::cgroup_dirs(&format!("/{}", c.id))
                .iter()
                .all(|d| !d.exists()),
            "no cgroup left"
        );
    }
}

#[test]
fn session_keyring_per_container_unless_no_new_keyring() {
    if !features::require(Feature::Keyrings, "session keyrings") {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "30"]);
    b.save();
    let keyring = |id: &str| {
        std::fs::read_to_string("/proc/keys")
            .unwrap()
            .lines()
            .any(|l| l.contains(&format!("keyring   _ses.{id}:")))
    };
    let c = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    assert!(
        keyring(&c.id),
        "a new session keyring named after the container"
    );
    let plain = Container::new(&rt);
    rt.ok(&[
        "run",
        "-d",
        "--no-new-keyring",
        "--bundle",
        b.path_str(),
        &plain.id,
    ]);
    assert!(!keyring(&plain.id), "--no-new-keyring makes none");
}

#[test]
fn apparmor_profile_is_applied_or_refused() {
    let rt = Runtime::new();
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let mut b = Bundle::new(&["cat", "/proc/self/attr/current"]);
    b.config["process"]["apparmorProfile"] = json!("unconfined");
    b.save();
    let (code, out, err) = run_bundle(&rt, &b);
    if enabled {
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("unconfined"), "{out}");
        return;
    }
    integration::skip("AppArmor is not enabled on this host: only the refusal is tested");
    assert_ne!(code, 0, "a profile the host cannot apply is an error");
    if rt.is_hull() {
        assert!(
            err.contains("AppArmor") && err.contains("apparmorProfile"),
            "{err}"
        );
        assert_eq!(rt.ok(&["list", "-q"]), "", "nothing left behind");
    }
}

/// A profile that notifies the calls a runtime makes itself between installing the filter and
/// exec (openat, read, close, fcntl, execve): the listener must reach the agent before any of
/// them, with or without no_new_privs, or the container hangs for good.
#[test]
fn seccomp_notify_on_the_runtimes_own_syscalls_does_not_hang() {
    let Some((_agent_dir, agent)) = notify_agent() else {
        return;
    };
    let rt = Runtime::new();
    for nnp in [false, true] {
        let mut b = Bundle::new(&["/bin/true"]);
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": agent.socket,
            "syscalls": [{"names": ["execve", "openat", "open", "read", "close", "fcntl"],
                          "action": "SCMP_ACT_NOTIFY"}]
        });
        b.save();
        let c = Container::new(&rt);
        let mut child = rt
            .cmd()
            .args(["run", "--bundle", b.path_str(), &c.id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let Some(status) =
            integration::wait_with_deadline(&mut child, std::time::Duration::from_secs(20))
        else {
            panic!("run hung with the runtime's own syscalls notified (nnp {nnp})");
        };
        assert!(status.success(), "nnp {nnp}: {status}");
        agent.next();
    }
}

/// Without a flags list the filter gets SPEC_ALLOW, as runc gives it; an explicit list is kept
/// as it is. `--debug` says which flags went to seccomp(2), in runc's words.
#[test]
fn seccomp_flags_default_to_spec_allow() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        return integration::skip("runc 1.1.5 neither sets SPEC_ALLOW nor logs the flags");
    }
    for (flags, want) in [
        (None, 4),
        (Some(json!([])), 0),
        (Some(json!(["SECCOMP_FILTER_FLAG_LOG"])), 2),
    ] {
        let mut b = Bundle::new(&["true"]);
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        });
        if let Some(f) = flags {
            b.config["linux"]["seccomp"]["flags"] = f;
        }
        b.save();
        let c = Container::new(&rt);
        let out = rt.run(&["--debug", "run", "--bundle", b.path_str(), &c.id]);
        assert!(out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("\"seccomp filter flags: {want}\"")),
            "{err}"
        );
    }
}

/// A created container's init, waiting for `start`, holds nothing its caller or hull had open:
/// only its stdio, the channel to hull, exec.fifo and anonymous handles (runc's fd-leak check).
#[test]
fn a_created_init_holds_no_fd_of_its_caller_or_of_hull() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    b.save();
    let c = Container::new(&rt);
    let create = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 7</etc/hostname; exec {} --root {} create --bundle {} {}",
            rt.bin.display(),
            rt.root.path.display(),
            b.path_str(),
            c.id
        ))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(create.success());
    let init = rt.state(&c.id)["pid"].as_i64().unwrap();
    let mut leaks = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        let t = target.to_string_lossy();
        let allowed = [
            "/dev/null",
            "pipe:[",
            "socket:[",
            "anon_inode:",
            "/dev/pts/",
        ]
        .iter()
        .any(|p| t.starts_with(p))
            || t.ends_with("/exec.fifo");
        if !allowed {
            leaks.push(format!("{} -> {t}", e.file_name().to_string_lossy()));
        }
    }
    if !rt.is_hull() && !leaks.is_empty() {
        return integration::skip("runc 1.1.5 leaks fds into a created init (fixed in 1.2)");
    }
    assert!(
        leaks.is_empty(),
        "fds of the caller or of hull in init: {leaks:?}"
    );
}

/// A profile that refuses close_range (docker's before 20.10 did not list it) with the filter
/// installed before hull's last steps (no_new_privs off): hull still closes and marks its fds.
#[test]
fn a_profile_without_close_range_still_runs() {
    let rt = Runtime::new();
    for nnp in [false, true] {
        let mut b = Bundle::new(&["sh", "-c", "echo ran"]);
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        let (code, out, err) = run_bundle(&rt, &b);
        assert_eq!((code, out.as_str()), (0, "ran\n"), "nnp {nnp}: {err}");
    }
}
