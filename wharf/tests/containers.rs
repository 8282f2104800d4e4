//! Containers end to end, as root, through a real runtime: `WHARF_TEST_RUNTIME` picks it
//! (runc by default, which has every command; `hull` means the workspace's debug build).
//! Every test cleans up in a Drop guard: containers removed with `rm -f` (which stops
//! their monitors), anything still mounted under the temp dir unmounted deepest first,
//! and the temp dir removed without crossing filesystems.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::Env;

fn runtime() -> String {
    match std::env::var("WHARF_TEST_RUNTIME").as_deref() {
        Ok("hull") => hull().display().to_string(),
        Ok(other) => other.to_string(),
        Err(_) => "runc".to_string(),
    }
}

/// The workspace's debug hull, beside this crate (built with `cargo build -p hull`).
fn hull() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/hull")
}

struct Guard {
    env: Env,
    runtime: String,
}

impl Guard {
    /// None (after printing why) when we are not root or the runtime is missing.
    fn new(runtime: &str) -> Option<Self> {
        if !nix_is_root() {
            eprintln!("SKIPPED: containers need root");
            return None;
        }
        let found = if runtime.contains('/') {
            std::path::Path::new(runtime).is_file()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(runtime).is_file()))
        };
        if !found {
            eprintln!("SKIPPED: runtime {runtime} not found");
            return None;
        }
        let g = Self {
            env: Env::new(),
            runtime: runtime.to_string(),
        };
        g.import();
        Some(g)
    }

    fn import(&self) {
        let t = self.env.path("busybox.tar");
        write_rootfs(&t);
        self.env.ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            t.to_str().unwrap(),
            "busybox",
        ]);
    }

    fn run(&self, args: &[&str]) -> Output {
        self.env
            .wharf()
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args)
            .output()
            .expect("run wharf")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wharf {args:?} failed ({:?}): {}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `f` until it returns Some or `secs` pass.
    fn until<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn inspect(&self, name: &str, template: &str) -> String {
        self.ok(&["inspect", "-f", template, name])
            .trim()
            .to_string()
    }

    /// Nothing of any container is left: no record, directory, mount or runtime state.
    fn assert_clean(&self) {
        assert_eq!(self.ok(&["ps", "-a", "-q"]), "");
        let cdir = self.env.root().join("containers");
        let left: Vec<_> = std::fs::read_dir(&cdir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert!(mounts_under(&self.env.root()).is_empty());
        let rt_root = self.env.root().join("runtime");
        if rt_root.exists() {
            for r in std::fs::read_dir(&rt_root).unwrap().filter_map(Result::ok) {
                let states: Vec<_> = std::fs::read_dir(r.path())
                    .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                    .unwrap_or_default();
                assert!(states.is_empty(), "runtime state left: {states:?}");
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        // Containers' cgroups sit under /wharf/ in each hierarchy; the runtime removes each
        // container's own, the shared parent is left to whoever empties it.
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                let _ = std::fs::remove_dir(h.path().join("wharf"));
            }
        }
        let mut mounts = mounts_under(self.env.dir.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&m)
                .status();
        }
        let _ = std::process::Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(self.env.dir.path())
            .status();
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// A busybox rootfs with the applets the tests use and a passwd/group with a user.
fn write_rootfs(out: &std::path::Path) {
    let f = std::fs::File::create(out).unwrap();
    let mut b = tar::Builder::new(f);
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for d in ["bin/", "etc/", "tmp/", "root/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, d, std::io::empty()).unwrap();
    }
    b.append_path_with_name(common::busybox(), "bin/busybox")
        .unwrap();
    for applet in [
        "sh", "echo", "sleep", "ps", "cat", "id", "ls", "true", "false", "dd", "touch", "rm",
        "hostname", "env", "trap", "mkdir",
    ] {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    for (name, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:100::/tmp:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\nusers:x:100:\nwheel:x:10:bob\n"),
    ] {
        let mut h = header(tar::EntryType::Regular, 0o644, text.len() as u64);
        b.append_data(&mut h, name, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap();
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn foreground_runs_exit_like_docker() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let out = g.run(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(text(&out).0, "hello\n");
    assert_eq!(out.status.code(), Some(0));
    let out = g.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out), ("out\n".into(), "err\n".into()));
    // Image config and options: env, workdir, user, hostname, /.dockerenv, hosts.
    let out = g.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "bob",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u):$(id -g):$(id -G) $(hostname); ls /.dockerenv; cat /etc/hostname",
    ]);
    assert_eq!(out, "1 /tmp 1000:100:100 10 box\n/.dockerenv\nbox\n");
    g.assert_clean();
}

#[test]
fn bad_input_leaves_nothing_behind() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let out = g.run(&["run", "--rm", "busybox", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{:?}", text(&out));
    assert!(text(&out).1.contains("nosuchcmd"), "{:?}", text(&out));
    let out = g.run(&["run", "--memory", "12qb", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out).1.contains("invalid size: '12qb'"),
        "{:?}",
        text(&out)
    );
    let out = g.run(&["run", "-u", "alice", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out).1.contains("unable to find user alice"));
    let missing = g.env.path("no-such-dir");
    let spec = format!("type=bind,source={},target=/x", missing.display());
    let out = g.run(&["run", "--mount", &spec, "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out).1.contains("bind source path does not exist"));
    // A missing image is pulled first; a loopback port nobody serves makes that fail.
    let out = g.run(&["run", "127.0.0.1:1/nope", "true"]);
    assert!(
        text(&out)
            .1
            .contains("Unable to find image '127.0.0.1:1/nope:latest' locally"),
        "{:?}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(125));
    g.assert_clean();
    g.ok(&["create", "--name", "web", "busybox"]);
    let out = g.run(&["create", "--name", "web", "busybox"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out)
        .1
        .contains("The container name \"/web\" is already in use"));
    let out = g.run(&["rmi", "busybox"]);
    assert!(text(&out)
        .1
        .contains("image is being used by stopped container"));
    g.ok(&["rm", "web"]);
    g.assert_clean();
}

#[test]
fn detached_container_lifecycle() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let id = g.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "--label",
        "app=t",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do echo tick; sleep 0.2; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    g.until(10, "logs", || {
        g.ok(&["logs", "ticker"]).contains("tick").then_some(())
    });
    let ps = g.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{ps}");
    let row = ps.lines().nth(1).unwrap();
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("Up "), "{row}");
    assert!(row.ends_with("ticker"), "{row}");
    // Prefix, name and full id all find it; templates see docker's shape.
    assert_eq!(g.inspect(&id[..5], "{{.Name}}"), "/ticker");
    assert_eq!(
        g.inspect("ticker", "{{.State.Status}} {{.State.Running}} {{index .Config.Labels \"app\"}} {{.HostConfig.NetworkMode}}"),
        "running true t none"
    );
    assert_eq!(
        g.inspect("ticker", "{{json .Config.Cmd}}")
            .matches("trap")
            .count(),
        1
    );
    assert_eq!(g.inspect("ticker", "{{.NetworkSettings.IPAddress}}"), "");
    // rm of a running container is refused with docker's message.
    let out = g.run(&["rm", "ticker"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out)
        .1
        .contains("You cannot remove a running container"));
    g.ok(&["rename", "ticker", "tocker"]);
    let logs = g.ok(&["logs", "-t", "-n", "1", "tocker"]);
    assert_eq!(logs.lines().count(), 1);
    assert!(logs.ends_with(" tick\n") && logs.contains('T'), "{logs}");
    // The process ignores SIGTERM: stop waits -t seconds, then kills.
    let start = Instant::now();
    g.ok(&["stop", "-t", "1", "tocker"]);
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(g.inspect("tocker", "{{.State.ExitCode}}"), "137");
    let ps = g.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("tocker Exited (137) "), "{ps}");
    assert_eq!(g.ok(&["wait", "tocker"]), "137\n");
    g.ok(&["rm", "tocker"]);
    g.assert_clean();
}

#[test]
fn exec_sees_pid_one_and_pause_freezes() {
    let rt = runtime();
    let Some(g) = Guard::new(&rt) else { return };
    g.ok(&["run", "-d", "--name", "sl", "busybox", "sleep", "300"]);
    let ps = g.ok(&["exec", "sl", "ps", "aux"]);
    let pid1 = ps
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or("");
    assert!(pid1.contains("sleep 300"), "{ps}");
    assert_eq!(
        g.ok(&[
            "exec",
            "-u",
            "bob",
            "-w",
            "/tmp",
            "-e",
            "X=y",
            "sl",
            "sh",
            "-c",
            "echo $X $(id -u) $(pwd)"
        ]),
        "y 1000 /tmp\n"
    );
    let out = g.run(&["exec", "sl", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{:?}", text(&out));
    assert_eq!(
        g.run(&["exec", "sl", "sh", "-c", "exit 4"]).status.code(),
        Some(4)
    );
    g.ok(&["pause", "sl"]);
    assert_eq!(
        g.inspect("sl", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    assert!(g
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(Paused)"));
    g.ok(&["unpause", "sl"]);
    assert_eq!(g.inspect("sl", "{{.State.Status}}"), "running");
    g.ok(&["rm", "-f", "sl"]);
    g.assert_clean();
}

#[test]
fn diff_and_top() {
    let rt = runtime();
    let Some(g) = Guard::new(&rt) else { return };
    g.ok(&[
        "run",
        "--name",
        "ch",
        "busybox",
        "sh",
        "-c",
        "touch /etc/new; rm /etc/group; mkdir /data",
    ]);
    assert_eq!(
        g.ok(&["diff", "ch"]),
        "A /data\nC /etc\nD /etc/group\nA /etc/new\n"
    );
    g.ok(&["run", "-d", "--name", "tp", "busybox", "sleep", "300"]);
    let top = g.ok(&["top", "tp"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 300"), "{top}");
    g.ok(&["rm", "-f", "tp", "ch"]);
    g.assert_clean();
}

#[test]
fn restart_policy_counts_and_rm_cleans_up() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 5",
    ]);
    g.until(20, "two restarts", || {
        (g.inspect("flaky", "{{.State.Status}} {{.RestartCount}}") == "exited 2").then_some(())
    });
    assert_eq!(g.inspect("flaky", "{{.State.ExitCode}}"), "5");
    assert_eq!(g.ok(&["logs", "flaky"]), "try\ntry\ntry\n");
    g.ok(&["rm", "flaky"]);
    g.ok(&["run", "-d", "--rm", "busybox", "sh", "-c", "sleep 0.3"]);
    g.until(10, "--rm removal", || {
        (g.ok(&["ps", "-a", "-q"]).is_empty()).then_some(())
    });
    g.assert_clean();
}

#[test]
fn memory_limit_kills_with_oom() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let out = g.run(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "8m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(out.status.code(), Some(137), "{:?}", text(&out));
    assert_eq!(
        g.inspect("hog", "{{.State.OOMKilled}} {{.HostConfig.Memory}}"),
        "true 8388608"
    );
    g.ok(&["rm", "hog"]);
    g.assert_clean();
}

#[test]
fn killed_monitor_is_reported_and_rm_f_cleans() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&["run", "-d", "--name", "orphan", "busybox", "sleep", "300"]);
    let root = g.env.root();
    let db_state = || g.inspect("orphan", "{{.State.Status}}");
    assert_eq!(db_state(), "running");
    // The monitor's pid is in the record; kill it the way a crash would.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ps -eo pid,args | grep '[_]_monitor' | grep {} | awk '{{print $1}}'",
            root.display()
        ))
        .output()
        .unwrap();
    let pid: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("monitor pid");
    // SAFETY: plain kill(2) of the monitor this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    g.until(10, "dead status", || (db_state() == "dead").then_some(()));
    g.ok(&["rm", "-f", "orphan"]);
    g.assert_clean();
}

#[test]
fn hull_runs_a_container() {
    if !hull().is_file() {
        eprintln!(
            "SKIPPED: {} not built (cargo build -p hull)",
            hull().display()
        );
        return;
    }
    let Some(g) = Guard::new(&hull().display().to_string()) else {
        return;
    };
    let out = g.run(&["run", "--rm", "busybox", "echo", "via hull"]);
    assert_eq!(text(&out).0, "via hull\n", "{:?}", text(&out));
    assert_eq!(
        g.run(&["run", "--rm", "busybox", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    g.assert_clean();
}
