//! `exec` as engines and people use it: namespaces, cgroup, user, cwd, capabilities, exit
//! statuses, detached with a pid file, process.json, and terminals over a console socket.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;

use integration::{Bundle, Container, Runtime};
use serde_json::json;

/// A running `sleep` container for exec tests.
fn running(rt: &Runtime) -> (Bundle, Container<'_>, i64) {
    let b = Bundle::new(&["sleep", "60"]);
    b.save();
    let c = Container::new(rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    let pid = rt.state(&c.id)["pid"].as_i64().unwrap();
    (b, c, pid)
}

#[test]
fn exec_joins_namespaces_and_cgroup() {
    let rt = Runtime::new();
    let (_b, c, pid) = running(&rt);
    let out = rt.ok(&[
        "exec", &c.id, "sh", "-c",
        "for n in mnt pid net ipc uts cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup",
    ]);
    let mut lines = out.lines();
    for n in ["mnt", "pid", "net", "ipc", "uts", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(
            lines.next().unwrap(),
            host.to_str().unwrap(),
            "{n} namespace"
        );
    }
    let init_cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let inside: Vec<&str> = lines.collect();
    // With a cgroup namespace both show "/" relative to the container's cgroup.
    assert!(inside.iter().any(|l| l.contains(":memory:/")), "{inside:?}");
    assert!(
        init_cgroups
            .lines()
            .any(|l| l.contains(":memory:/") && l.ends_with(&c.id)),
        "{init_cgroups}"
    );
}

#[test]
fn exec_user_cwd_env_and_flags_stop_at_the_command() {
    let rt = Runtime::new();
    let (_b, c, _) = running(&rt);
    let out = rt.ok(&[
        "exec",
        "-u",
        "1000:1000",
        "-g",
        "10",
        "--cwd",
        "/tmp",
        "-e",
        "X=y",
        &c.id,
        "sh",
        "-c",
        "id -u; id -G; pwd; echo $X; echo -u",
    ]);
    assert_eq!(out, "1000\n1000 10\n/tmp\ny\n-u\n");
}

#[test]
fn exec_cap_adds_no_inheritable() {
    let rt = Runtime::new();
    let (_b, c, _) = running(&rt);
    let out = rt.ok(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &c.id,
        "grep",
        "^Cap",
        "/proc/self/status",
    ]);
    let get = |name: &str| {
        let l = out.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let sys_admin = 1u64 << 21;
    assert_eq!(get("CapInh:"), 0, "{out}");
    assert_ne!(get("CapEff:") & sys_admin, 0, "{out}");
    assert_ne!(get("CapPrm:") & sys_admin, 0, "{out}");
    assert_ne!(get("CapBnd:") & sys_admin, 0, "{out}");
    assert_eq!(get("CapAmb:") & sys_admin, 0, "{out}");
}

/// With an inheritable set in the config, `exec --cap` also asks for the ambient capability,
/// which the kernel grants only where the capability is inheritable (runc 1.2+).
#[test]
fn exec_cap_is_ambient_where_the_config_makes_it_inheritable() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SYSLOG"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_CHOWN", "CAP_SYSLOG"],
        "ambient": ["CAP_CHOWN"]
    });
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    let out = rt.ok(&[
        "exec",
        "--cap",
        "CAP_SYSLOG",
        &c.id,
        "grep",
        "^Cap",
        "/proc/self/status",
    ]);
    if !rt.is_hull() && out.contains("CapAmb:\t0000000000000001") {
        return integration::skip("runc 1.1.5 predates ambient capabilities from exec --cap");
    }
    for want in [
        "CapInh:\t0000000400000001",
        "CapPrm:\t0000000400000021",
        "CapAmb:\t0000000400000001",
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }
}

/// An ambient capability that is not inheritable is left out with runc's warning.
#[test]
fn ambient_without_inheritable_warns_in_runcs_words() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "grep ^CapAmb /proc/self/status"]);
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL", "CAP_CHOWN"]
    });
    let (code, out, err) = integration::run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "CapAmb:\t0000000000000020\n");
    if rt.is_hull() {
        assert!(
            err.contains("can't raise ambient capability CAP_CHOWN: "),
            "{err}"
        );
    }
}

#[test]
fn exec_exit_statuses() {
    let rt = Runtime::new();
    let (_b, c, _) = running(&rt);
    for (script, want) in [("exit 0", 0), ("exit 3", 3), ("kill -9 $$", 137)] {
        let out = rt.run(&["exec", &c.id, "sh", "-c", script]);
        assert_eq!(out.status.code(), Some(want), "{script}");
    }
    let out = rt.run(&["exec", &c.id, "no-such-program"]);
    assert_eq!(out.status.code(), Some(255), "a runtime failure is 255");
    if rt.is_hull() {
        assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-program"));
    }
}

#[test]
fn exec_into_stopped_container_fails() {
    let rt = Runtime::new();
    let (_b, c, _) = running(&rt);
    rt.ok(&["kill", &c.id, "KILL"]);
    rt.wait_status(&c.id, "stopped");
    let out = rt.run(&["exec", &c.id, "true"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
}

#[test]
fn exec_detached_with_pid_file_and_process_json() {
    let rt = Runtime::new();
    let (b, c, init) = running(&rt);
    let process = json!({"args": ["sh", "-c", "echo from-json > /tmp/out; sleep 30"], "cwd": "/",
                         "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]});
    let pjson = b.path().join("process.json");
    std::fs::write(&pjson, process.to_string()).unwrap();
    let pid_file = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "-p",
        pjson.to_str().unwrap(),
        &c.id,
    ]);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // busybox sh execs its last command, so the pid is the shell turned sleep.
    let ns = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(
        ns(pid as i64),
        ns(init),
        "the exec'd process is in the container"
    );
    let out = rt.ok(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "while [ ! -s /tmp/out ]; do sleep 0.05; done; cat /tmp/out",
    ]);
    assert_eq!(out, "from-json\n");
}

/// Receives the pty master over a console socket, like runc's recvtty.
fn recv_master(listener: &UnixListener) -> OwnedFd {
    let (stream, _) = listener.accept().unwrap();
    let (name, fd) = integration::recv_fd(&stream);
    // hull sends the pty's name, runc 1.1 the master's ("/dev/ptmx"): callers ignore it.
    assert!(String::from_utf8_lossy(&name).starts_with("/dev/"));
    fd
}

#[test]
fn terminal_over_console_socket_for_create_and_exec() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script("tty; stty size; read line; echo got:$line; sleep 30");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 40, "width": 120});
    b.save();
    let sock = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let c = Container::new(&rt);
    let sock_s = sock.to_str().unwrap().to_string();
    let handle = std::thread::spawn(move || recv_master(&listener));
    rt.ok(&[
        "create",
        "--console-socket",
        &sock_s,
        "--bundle",
        b.path_str(),
        &c.id,
    ]);
    let master = handle.join().unwrap();
    rt.ok(&["start", &c.id]);
    let mut pty = std::fs::File::from(master);
    std::io::Write::write_all(&mut pty, b"hello\n").unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("got:hello") {
        let n = pty.read(&mut buf).unwrap();
        assert!(n > 0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("/dev/pts/0"), "{seen:?}");
    assert!(seen.contains("40 120"), "window size: {seen:?}");

    // exec -t with its own console socket: isatty inside.
    let sock2 = b.path().join("exec.sock");
    let listener2 = UnixListener::bind(&sock2).unwrap();
    let handle2 = std::thread::spawn(move || recv_master(&listener2));
    rt.ok(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock2.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        "test -t 0 && echo isatty; sleep 5",
    ]);
    let mut pty2 = std::fs::File::from(handle2.join().unwrap());
    let mut seen = String::new();
    while !seen.contains("isatty") {
        let n = pty2.read(&mut buf).unwrap();
        assert!(n > 0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// Polls `done` for up to 20 s; then kills `child` (ours) and fails, naming what never came.
fn within_20s<T>(
    child: &mut std::process::Child,
    what: &str,
    mut done: impl FnMut(&mut std::process::Child) -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = done(child) {
            return v;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("not within 20 s: {what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn foreground_run_forwards_signals() {
    let rt = Runtime::new();
    let shared = integration::TempDir::new("signals");
    let mut b = Bundle::new(&[]);
    b.script("trap 'echo term > /data/sig; exit 42' TERM; echo > /data/ready; while true; do sleep 0.05; done");
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/data", "type": "bind", "source": shared.path, "options": ["bind"]}),
    );
    b.save();
    let c = Container::new(&rt);
    let mut child = rt
        .cmd()
        .args(["run", "--bundle", b.path_str(), &c.id])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    within_20s(&mut child, "/data/ready written", |_| {
        shared.path.join("ready").exists().then_some(())
    });
    // SAFETY: kill with integer arguments, to the runtime process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = within_20s(&mut child, "run ended after SIGTERM", |c| {
        c.try_wait().unwrap()
    });
    assert_eq!(
        status.code(),
        Some(42),
        "the container's exit status after its TERM handler"
    );
    assert_eq!(
        std::fs::read_to_string(shared.path.join("sig")).unwrap(),
        "term\n"
    );
}

/// Whether script(1) is here to give the runtime a controlling terminal; prints the skip if not.
fn has_script() -> bool {
    let here = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok();
    if !here {
        integration::skip("script(1) from util-linux is not installed");
    }
    here
}

/// `command` run by script(1) under a new terminal, its input and output piped.
fn script(command: &str) -> std::process::Child {
    std::process::Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn run_with_terminal_proxies_a_real_pty() {
    let rt = Runtime::new();
    if !has_script() {
        return;
    }
    let mut b = Bundle::new(&[]);
    b.script("tty; stty size; read line; echo got:$line");
    b.config["process"]["terminal"] = json!(true);
    b.save();
    let c = Container::new(&rt);
    let inner = format!(
        "stty rows 33 cols 111; {} --root {} run --bundle {} {}",
        rt.bin.display(),
        rt.root.path.display(),
        b.path_str(),
        c.id
    );
    let mut child = script(&inner);
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"typed\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
    if rt.is_hull() {
        assert!(text.contains("33 111"), "window size: {text}");
    } else if !text.contains("33 111") {
        // Seen repeatedly under load: runc 1.1's container gets no answer from the first
        // terminal ioctls. Reported, not counted against the test.
        println!("reference runtime: window size not applied this time: {text:?}");
    }
    assert!(text.contains("got:typed"), "stdin round trip: {text}");
}

/// The container's cgroup directory in each v1 hierarchy (or the v2 one), from init's
/// /proc/PID/cgroup, so the test works whatever default path the runtime picks.
fn init_cgroup_dirs(pid: i64) -> Vec<(String, std::path::PathBuf)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            let mount = if ctrls.is_empty() {
                "unified".to_string()
            } else {
                ctrls.trim_start_matches("name=").to_string()
            };
            let dir = std::path::Path::new("/sys/fs/cgroup")
                .join(&mount)
                .join(path.trim_start_matches('/'));
            (dir.is_dir() && path != "/").then(|| (ctrls.to_string(), dir))
        })
        .collect()
}

/// Removes the sub-cgroups a test made, even when it fails (before the container's own).
struct SubCgroups(Vec<std::path::PathBuf>);

impl Drop for SubCgroups {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn exec_into_sub_cgroups() {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return integration::skip("per-controller sub-cgroups are a cgroup v1 feature");
    }
    let rt = Runtime::new();
    let (_b, c, pid) = running(&rt);
    let dirs = init_cgroup_dirs(pid);
    let memory = dirs
        .iter()
        .find(|(ctrls, _)| ctrls.split(',').any(|c| c == "memory"))
        .expect("a memory hierarchy")
        .1
        .clone();
    let mut made = SubCgroups(Vec::new());
    for (ctrls, d) in &dirs {
        std::fs::create_dir(d.join("all")).unwrap();
        made.0.push(d.join("all"));
        // A new v1 cpuset starts empty and takes no task until it has cpus and mems.
        if ctrls.split(',').any(|c| c == "cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                std::fs::write(d.join("all").join(f), std::fs::read(d.join(f)).unwrap()).unwrap();
            }
        }
    }
    std::fs::create_dir(memory.join("mem")).unwrap();
    made.0.push(memory.join("mem"));
    let own = |out: &str, ctrl: &str| -> String {
        out.lines()
            .find(|l| l.split(':').nth(1).unwrap().split(',').any(|c| c == ctrl))
            .unwrap_or_else(|| panic!("no {ctrl} line in {out}"))
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    };
    let out = rt.ok(&["exec", "--cgroup", "all", &c.id, "cat", "/proc/self/cgroup"]);
    assert_eq!(own(&out, "memory"), "/all", "{out}");
    assert_eq!(own(&out, "pids"), "/all", "{out}");
    let out = rt.ok(&[
        "exec",
        "--cgroup",
        "memory:mem",
        &c.id,
        "cat",
        "/proc/self/cgroup",
    ]);
    assert_eq!(own(&out, "memory"), "/mem", "{out}");
    assert_eq!(own(&out, "pids"), "/", "{out}");
    let missing = rt.run(&["exec", "--cgroup", "nosuch", &c.id, "true"]);
    assert!(
        !missing.status.success(),
        "a missing sub-cgroup is an error"
    );
    let escape = rt.run(&["exec", "--cgroup", "../..", &c.id, "true"]);
    assert_eq!(escape.status.code(), Some(255));
    let unknown = rt.run(&["exec", "--cgroup", "whaaat:/", &c.id, "true"]);
    assert!(!unknown.status.success());
    let top = rt.ok(&["exec", "--cgroup", "/", &c.id, "cat", "/proc/self/cgroup"]);
    assert_eq!(own(&top, "memory"), "/", "{top}");
    if !rt.is_hull() {
        return integration::skip("runc 1.1.5 words these errors otherwise (runc 1.5 as hull)");
    }
    // runc 1.5's words, which callers and runc's suite match.
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let e = err(&missing);
    assert!(
        e.contains("nosuch") && e.contains(" adding pid ") && e.contains("o such file"),
        "{e}"
    );
    assert!(
        err(&escape).contains("bad sub cgroup path"),
        "{}",
        err(&escape)
    );
    assert!(
        err(&unknown).contains("unknown controller "),
        "{}",
        err(&unknown)
    );
}

#[test]
fn exec_preserve_fds_passes_exactly_those() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new();
    let (b, c, _) = running(&rt);
    let three = b.path().join("three");
    let four = b.path().join("four");
    std::fs::write(&three, "fd three\n").unwrap();
    std::fs::write(&four, "fd four\n").unwrap();
    let (f3, f4) = (
        std::fs::File::open(&three).unwrap(),
        std::fs::File::open(&four).unwrap(),
    );
    let (r3, r4) = (f3.as_raw_fd(), f4.as_raw_fd());
    let out_path = b.path().join("out");
    let mut cmd = rt.cmd();
    cmd.args([
        "exec",
        "--preserve-fds",
        "1",
        &c.id,
        "sh",
        "-c",
        "cat <&3; cat <&4 2>/dev/null || echo no fd four",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::fs::File::create(&out_path).unwrap());
    // SAFETY: only async-signal-safe dup2 calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for (from, to) in [(r3, 3), (r4, 4)] {
                // dup2 onto itself would keep close-on-exec.
                let r = if from == to {
                    libc::fcntl(to, libc::F_SETFD, 0)
                } else {
                    libc::dup2(from, to)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "fd three\nno fd four\n"
    );
}

#[test]
fn exec_ignore_paused_waits_for_resume() {
    let rt = Runtime::new();
    let (b, c, _) = running(&rt);
    rt.ok(&["pause", &c.id]);
    let refused = rt.run(&["exec", &c.id, "true"]);
    assert!(!refused.status.success(), "exec into a paused container");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("paused"));
    let out_path = b.path().join("out");
    let mut exec = rt
        .cmd()
        .args(["exec", "--ignore-paused", &c.id, "echo", "ran"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    // The process joined the frozen cgroup, so it cannot have run yet.
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "");
    rt.ok(&["resume", &c.id]);
    let status = exec.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "ran\n");
}

#[test]
fn exec_apparmor_and_label_need_the_host_to_support_them() {
    let rt = Runtime::new();
    let (_b, c, _) = running(&rt);
    let host_has = |p: &str| std::fs::read_to_string(p).is_ok_and(|s| s.trim() == "Y");
    for (flag, value, lsm, present) in [
        (
            "--apparmor",
            "hull-test",
            "AppArmor",
            host_has("/sys/module/apparmor/parameters/enabled"),
        ),
        (
            "--process-label",
            "system_u:system_r:container_t:s0",
            "SELinux",
            std::path::Path::new("/sys/fs/selinux/enforce").exists(),
        ),
    ] {
        if present {
            integration::skip(&format!(
                "{lsm} is enabled here; the refusal is not testable"
            ));
            continue;
        }
        let out = rt.run(&["exec", flag, value, &c.id, "true"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{flag}: {err}");
        if rt.is_hull() {
            assert!(err.contains(lsm) && err.contains(value), "{flag}: {err}");
        }
    }
}

#[test]
fn exec_with_terminal_starts_at_the_callers_window_size() {
    if !has_script() {
        return;
    }
    let rt = Runtime::new();
    let (_b, c, _) = running(&rt);
    let inner = format!(
        "stty rows 21 cols 77; {} --root {} exec -t {} sh -c 'tty; stty size'",
        rt.bin.display(),
        rt.root.path.display(),
        c.id
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    if rt.is_hull() {
        assert!(text.contains("21 77"), "window size: {text}");
    } else if !text.contains("21 77") {
        println!("reference runtime: window size not applied this time: {text:?}");
    }
}

/// A terminal the runtime proxies passes the container's newlines as they are (ONLCR off, as
/// runc sets it), and belongs to the process's user, with devpts' tty group. Run under script(1)
/// with ONLCR off on the outer terminal, since runc wants a controlling terminal.
#[test]
fn proxied_terminal_keeps_newlines_and_belongs_to_the_user() {
    if !has_script() {
        return;
    }
    let rt = Runtime::new();
    let in_script = |command: &str| {
        let inner = format!(
            "stty -onlcr; {} --root {} {command}",
            rt.bin.display(),
            rt.root.path.display()
        );
        // An idle pipe: at end of input script would type VEOF into the terminal.
        let mut child = script(&inner);
        let idle = child.stdin.take();
        let out = child.wait_with_output().unwrap();
        drop(idle);
        assert!(out.status.success(), "{command}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut b = Bundle::new(&[]);
    b.script("printf 'x\\ny\\n'; stat -c %u:%g $(tty)");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 100});
    b.save();
    let c = Container::new(&rt);
    let out = in_script(&format!("run --bundle {} {}", b.path_str(), c.id));
    assert_eq!(out, "x\ny\n1000:5\n");
    let (_b, c, _) = running(&rt);
    let out = in_script(&format!("exec -t {} sh -c 'printf \"a\\nb\\n\"'", c.id));
    // runc 1.1.5 once gave "a\r\nb\r\n" here in CI (ONLCR still on for an exec's pty, in a
    // run where its `run` above had it off): the reference is racy there, hull must not be.
    if rt.is_hull() || out != "a\r\nb\r\n" {
        assert_eq!(out, "a\nb\n");
    } else {
        println!("reference runtime: exec's output came before ONLCR was off: {out:?}");
    }
}

/// `--pidfd-socket` on create and exec hands over a pidfd of the process, named as runc names
/// it, through which the caller can signal the process without a pid race.
#[test]
fn pidfd_socket_hands_over_the_process() {
    let rt = Runtime::new();
    let dir = integration::TempDir::new("hull-pidfd");
    let socket = dir.path.join("pidfd.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let b = Bundle::new(&["sleep", "60"]);
    b.save();
    let c = Container::new(&rt);
    let created = rt.run(&[
        "create",
        "--pidfd-socket",
        socket.to_str().unwrap(),
        "--bundle",
        b.path_str(),
        &c.id,
    ]);
    if !rt.is_hull() && !created.status.success() {
        return integration::skip("runc 1.1.5 has no --pidfd-socket (runc 1.2)");
    }
    assert!(created.status.success(), "{created:?}");
    let (stream, _) = listener.accept().unwrap();
    let (kind, init_fd) = integration::recv_fd(&stream);
    assert_eq!(kind, b"standard");
    rt.ok(&["start", &c.id]);
    let exec = std::process::Command::new(&rt.bin)
        .args(["--root", rt.root.path.to_str().unwrap(), "exec", "-d"])
        .args([
            "--pidfd-socket",
            socket.to_str().unwrap(),
            &c.id,
            "sleep",
            "60",
        ])
        .status()
        .unwrap();
    assert!(exec.success());
    let (stream, _) = listener.accept().unwrap();
    let (kind, exec_fd) = integration::recv_fd(&stream);
    assert_eq!(kind, b"setns");
    for fd in [exec_fd, init_fd] {
        // SAFETY: pidfd_send_signal on a pidfd we own.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    }
    assert_eq!(rt.wait_status(&c.id, "stopped")["status"], "stopped");
}

/// Whatever CPUs the caller runs on (taskset), the container's processes get every CPU their
/// cpuset allows, unless an exec'd process names its final CPUs; a process.json without a user
/// runs as root.
#[test]
fn cpu_affinity_resets_to_the_cpuset_and_exec_takes_its_final_cpus() {
    let rt = Runtime::new();
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        return integration::skip("one CPU: affinity cannot differ");
    }
    let b = Bundle::new(&["sleep", "60"]);
    b.save();
    let c = Container::new(&rt);
    let run = std::process::Command::new("taskset")
        .args(["-c", "0"])
        .arg(&rt.bin)
        .args([
            "--root",
            rt.root.path.to_str().unwrap(),
            "run",
            "-d",
            "--bundle",
            b.path_str(),
            &c.id,
        ])
        .status()
        .unwrap();
    assert!(run.success());
    let allowed = |out: String| {
        out.lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let host = allowed(std::fs::read_to_string("/proc/1/status").unwrap());
    let init = allowed(rt.ok(&["exec", &c.id, "cat", "/proc/1/status"]));
    let own = allowed(rt.ok(&["exec", &c.id, "cat", "/proc/self/status"]));
    if !rt.is_hull() && init == "0" {
        return integration::skip("runc 1.1.5 keeps the caller's affinity (runc 1.2 resets it)");
    }
    assert_eq!(
        (init.as_str(), own.as_str()),
        (host.as_str(), host.as_str())
    );
    let pjson = b.path().join("p.json");
    std::fs::write(
        &pjson,
        json!({"args": ["cat", "/proc/self/status"], "cwd": "/",
               "execCPUAffinity": {"initial": "0", "final": "1"}})
        .to_string(),
    )
    .unwrap();
    let out = rt.ok(&["exec", "--process", pjson.to_str().unwrap(), &c.id]);
    assert_eq!(allowed(out.clone()), "1", "{out}");
    assert!(out.contains("Uid:\t0\t"), "{out}");
}
