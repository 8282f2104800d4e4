//! runc's command-line contract beyond the lifecycle: signal 0, negative and newer `update`
//! flags, `run --keep`, help and version in runc's layout, and `--debug` log lines. Each was a
//! failure of runc's own suite against hull.

use integration::features::{self, Feature};
use integration::{cgroup_file, Bundle, Container, Runtime, TempDir};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn kill_with_signal_0_checks_that_the_container_runs() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "60"]);
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    rt.ok(&["kill", &c.id, "0"]);
    assert_eq!(rt.state(&c.id)["status"], "running");
    rt.ok(&["kill", &c.id, "KILL"]);
    rt.wait_status(&c.id, "stopped");
    let out = rt.run(&["kill", &c.id, "0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("container not running"), "{out:?}");
    // --all of a stopped container is no error.
    rt.ok(&["kill", "--all", &c.id, "0"]);
}

#[test]
fn update_takes_minus_one_as_unlimited_and_the_newer_cpu_flags() {
    if !features::require(Feature::CgroupV1, "v1 cgroup files") {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["linux"]["resources"] = serde_json::json!({"memory": {"limit": 64 << 20}, "cpu": {"quota": 20000, "period": 100000}});
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    let pid = rt.state(&c.id)["pid"].as_i64().unwrap();
    rt.ok(&["update", "--memory", "-1", "--cpu-quota", "-1", &c.id]);
    assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_quota_us"), "-1");
    let unlimited: u64 = cgroup_file(pid, "memory", "memory.limit_in_bytes")
        .parse()
        .unwrap();
    assert!(unlimited > 1 << 50, "memory limit {unlimited}");
    let burst = std::path::Path::new("/sys/fs/cgroup/cpu/cpu.cfs_burst_us").exists();
    if !rt.is_hull() {
        integration::skip("--cpu-burst and --cpu-idle are newer than runc 1.1.5");
    } else if burst {
        rt.ok(&[
            "update",
            "--cpu-quota",
            "50000",
            "--cpu-burst",
            "10000",
            &c.id,
        ]);
        assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_burst_us"), "10000");
    } else {
        integration::skip("this kernel has no cpu.cfs_burst_us: --cpu-burst not tested");
    }
    if rt.is_hull() && features::require(Feature::CpuIdle, "--cpu-idle") {
        rt.ok(&["update", "--cpu-idle", "1", &c.id]);
        assert_eq!(cgroup_file(pid, "cpu", "cpu.idle"), "1");
    }
}

#[test]
fn run_keep_leaves_the_stopped_container_until_delete() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    let cgroup = format!("/{}", integration::unique("hull-keep"));
    b.config["linux"]["cgroupsPath"] = serde_json::json!(cgroup);
    b.save();
    let c = Container::new(&rt);
    let out = rt.run(&["run", "--keep", "--bundle", b.path_str(), &c.id]);
    if !rt.is_hull() && !out.status.success() {
        return integration::skip("the reference runtime has no run --keep (runc 1.2+)");
    }
    assert!(out.status.success(), "{out:?}");
    assert_eq!(rt.state(&c.id)["status"], "stopped");
    assert!(
        integration::cgroup_dirs(&cgroup).iter().any(|d| d.is_dir()),
        "the cgroup went with the process"
    );
    rt.ok(&["delete", &c.id]);
    assert!(!rt.run(&["state", &c.id]).status.success());
    assert!(integration::cgroup_dirs(&cgroup)
        .iter()
        .all(|d| !d.exists()));
}

#[test]
fn help_and_version_in_runcs_layout() {
    let rt = Runtime::new();
    let name = rt.bin.file_name().unwrap().to_string_lossy().to_string();
    for args in [&["-h"][..], &["--help"]] {
        let out = rt.run(args);
        assert!(out.status.success());
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME:", "{text}");
        assert!(lines[1].starts_with(&format!("   {name} - ")), "{text}");
    }
    for cmd in [
        "checkpoint",
        "create",
        "delete",
        "events",
        "exec",
        "kill",
        "list",
        "pause",
        "ps",
        "restore",
        "resume",
        "run",
        "spec",
        "start",
        "state",
        "update",
        "features",
    ] {
        let out = rt.run(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd}: {out:?}");
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME:", "{cmd}: {text}");
        assert!(
            lines[1].starts_with(&format!("   {name} {cmd}")),
            "{cmd}: {text}"
        );
    }
    // Named as it was run: a drop-in installed under another name says that name.
    if rt.is_hull() {
        let dir = integration::TempDir::new("renamed");
        let renamed = dir.path.join("my-runtime");
        std::os::unix::fs::symlink(&rt.bin, &renamed).unwrap();
        let out = std::process::Command::new(&renamed)
            .args(["exec", "-h"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.lines()
                .nth(1)
                .unwrap_or("")
                .starts_with("   my-runtime exec"),
            "{text}"
        );
    }
    let out = rt.run(&["foo", "-h"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("No help topic for 'foo'")
            || stderr(&out).contains("No help topic for 'foo'"),
        "{out:?}"
    );
    let out = rt.run(&["-v"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with(&format!("{name} version ")), "{text}");
    assert!(lines[1].starts_with("commit: "), "{text}");
    assert!(lines[2].starts_with("spec: 1."), "{text}");
}

/// runc's global flags come before the command (urfave/cli): after it they are unknown.
#[test]
fn global_flags_after_the_command_are_refused() {
    let rt = Runtime::new();
    let root = rt.root.path.to_str().unwrap();
    let out = rt.run(&["list", "--root", root]);
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr(&out).contains("root"), "{out:?}");
    rt.ok(&["list"]);
}

/// A usage error on a command line holding a word that is not UTF-8 (a path) is reported as
/// one, naming the flag, and the runtime exits; it does not crash.
#[test]
fn a_usage_error_beside_a_non_utf8_path_names_the_flag() {
    use std::os::unix::ffi::OsStrExt;
    let rt = Runtime::new();
    let out = rt
        .cmd()
        .args(["create", "--nosuch", "-b"])
        .arg(std::ffi::OsStr::from_bytes(b"/tmp/\xff"))
        .arg("c1")
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c != 0), "{out:?}");
    assert!(stderr(&out).contains("nosuch"), "{out:?}");
}

/// A caller that leaves stdin, stdout and stderr closed: the container's process gets them
/// on /dev/null, not a pipe or file that hull opened into their numbers (runc hands it pipes
/// of its own; crun refuses to run).
#[test]
fn closed_standard_fds_reach_the_container_as_dev_null() {
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new();
    if !rt.is_hull() {
        integration::skip("the reference runtime gives the container pipes of its own");
        return;
    }
    let mut b = Bundle::new(&[]);
    // Read in command substitutions, whose shell is the one with the container's stdio.
    b.script(r#"echo "$(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2)" > /stdio.txt"#);
    b.save();
    let c = Container::new(&rt);
    let mut cmd = rt.cmd();
    cmd.args(["run", "--bundle", b.path_str(), &c.id]);
    // SAFETY: only close, which is async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 0..3 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let status = cmd.status().expect("run the runtime");
    assert!(status.success(), "{status:?}");
    let seen = std::fs::read_to_string(b.rootfs().join("stdio.txt")).expect("the script ran");
    assert_eq!(seen, "/dev/null /dev/null /dev/null\n");
}

/// The hull that `cargo build` makes is linked statically (`.cargo/rustc-wrapper`): no hull
/// process maps a shared library, so none pays the dynamic loader's work at its start. A
/// created container's init still runs hull's image, so its maps are hull's.
#[test]
fn hull_processes_map_no_shared_library() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        integration::skip("a property of hull's binary");
        return;
    }
    let b = Bundle::new(&["true"]);
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let pid = rt.state(&c.id)["pid"].as_i64().unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(maps.contains("/hull"), "{maps}");
    assert!(!maps.contains(".so"), "{maps}");
}

#[test]
fn debug_writes_log_lines_to_stderr_or_the_log_file() {
    let rt = Runtime::new();
    let b = Bundle::new(&["echo", "hello"]);
    b.save();
    let c = Container::new(&rt);
    let out = rt.run(&["--debug", "run", "--bundle", b.path_str(), &c.id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "hello\n");
    assert!(stderr(&out).contains("level=debug"), "{out:?}");
    let dir = TempDir::new("hull-debug-log");
    for (format, marker) in [("text", "level=debug"), ("json", r#""level":"debug""#)] {
        let log = dir.path.join(format!("{format}.log"));
        let c = Container::new(&rt);
        let out = rt.run(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            format,
            "--debug",
            "run",
            "--bundle",
            b.path_str(),
            &c.id,
        ]);
        assert!(out.status.success(), "{out:?}");
        assert!(!stderr(&out).contains("level=debug"), "{out:?}");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains(marker), "{format}: {logged}");
    }
}

#[test]
fn list_with_a_missing_root_fails_and_ps_of_a_stopped_container_does_not() {
    let rt = Runtime::new();
    let missing = rt.root.path.join("missing");
    let out = std::process::Command::new(&rt.bin)
        .arg("--root")
        .arg(&missing)
        .arg("list")
        .output()
        .unwrap();
    if rt.is_hull() {
        assert!(
            !out.status.success(),
            "list with a missing --root succeeded"
        );
    } else if out.status.success() {
        integration::skip("runc 1.1.5 lists nothing for a missing --root (runc 1.2 fails)");
    }
    let b = Bundle::new(&["sleep", "60"]);
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    rt.ok(&["kill", &c.id, "KILL"]);
    rt.wait_status(&c.id, "stopped");
    let ps = rt.run(&["ps", "--format", "json", &c.id]);
    if !rt.is_hull() && !ps.status.success() {
        return integration::skip(
            "runc 1.1.5 refuses ps of a stopped container (runc 1.2 lists none)",
        );
    }
    // runc prints Go's nil slice as null; hull an empty array, as for list.
    let none = String::from_utf8_lossy(&ps.stdout).trim().to_string();
    assert!(none == "[]" || none == "null", "{none}");
}

/// A process that cannot be executed once the container started: runc's one line on the
/// process's stderr, and a failed run.
#[test]
fn an_execve_failure_after_start_is_one_line_on_stderr() {
    let rt = Runtime::new();
    let b = Bundle::new(&["/run.sh"]);
    std::fs::write(b.rootfs().join("run.sh"), "#!/mmnnttbb foo bar\nsh\n").unwrap();
    std::fs::set_permissions(
        b.rootfs().join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (code, _, err) = integration::run_bundle(&rt, &b);
    assert_ne!(code, 0);
    if !rt.is_hull() && err.lines().count() != 1 {
        return integration::skip("runc 1.1.5 reports the failed execve twice (runc#4171)");
    }
    assert_eq!(err, "exec /run.sh: no such file or directory\n");
}

/// A detached `sleep` container in the host's pid namespace; its init's pid.
fn in_host_pidns<'a>(rt: &'a Runtime, b: &mut Bundle) -> (Container<'a>, i32) {
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    b.save();
    let c = Container::new(rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    let init = rt.state(&c.id)["pid"].as_i64().unwrap() as i32;
    (c, init)
}

/// Without its own pid namespace a container's other processes outlive its init, so SIGKILL
/// goes to every process of its cgroup, even once init is gone (runc 1.2+).
#[test]
fn kill_of_a_host_pidns_container_reaches_every_process() {
    let rt = Runtime::new();
    for kill_init_first in [false, true] {
        let mut b = Bundle::new(&["sleep", "600"]);
        let (c, init) = in_host_pidns(&rt, &mut b);
        for _ in 0..3 {
            rt.ok(&["exec", "-d", &c.id, "sleep", "600"]);
        }
        let procs = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
        let pids_cg = procs
            .lines()
            .find_map(|l| l.split(':').nth(2).filter(|_| l.contains(":pids:")))
            .unwrap()
            .to_string();
        let members = || {
            std::fs::read_to_string(format!("/sys/fs/cgroup/pids{pids_cg}/cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .count()
        };
        assert_eq!(members(), 4);
        if kill_init_first {
            // SAFETY: kill(2) of the container's init, which this test started.
            unsafe { libc::kill(init, libc::SIGKILL) };
            rt.wait_status(&c.id, "stopped");
        }
        let out = rt.run(&["kill", &c.id, "KILL"]);
        if !rt.is_hull() {
            integration::skip("runc 1.1.5 signals only init (runc 1.2 the whole cgroup)");
            continue;
        }
        assert!(out.status.success(), "{out:?}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while members() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(members(), 0, "processes left after kill KILL");
    }
}

/// delete of a container without its own pid namespace whose init is gone takes its other
/// processes down too (runc 1.2+).
#[test]
fn delete_of_a_host_pidns_container_leaves_no_process() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "600"]);
    let (c, init) = in_host_pidns(&rt, &mut b);
    rt.ok(&[
        "exec",
        "-d",
        "--pid-file",
        b.path().join("exec.pid").to_str().unwrap(),
        &c.id,
        "sleep",
        "600",
    ]);
    let other: i32 = std::fs::read_to_string(b.path().join("exec.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) of the container's init, which this test started.
    unsafe { libc::kill(init, libc::SIGKILL) };
    rt.wait_status(&c.id, "stopped");
    let out = rt.run(&["delete", &c.id]);
    if !rt.is_hull() {
        // SAFETY: as above, the test's own process.
        unsafe { libc::kill(other, libc::SIGKILL) };
        return integration::skip("runc 1.1.5 leaves the other processes (runc 1.2 kills them)");
    }
    assert!(out.status.success(), "{out:?}");
    let stat = std::fs::read_to_string(format!("/proc/{other}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "process {other} outlived delete: {stat}"
    );
}

/// An empty HOME is replaced by the user's home from /etc/passwd, as an unset one is.
#[test]
fn an_empty_home_comes_from_passwd() {
    let rt = Runtime::new();
    let out = integration::run_script(&rt, "echo $HOME", |c| {
        c["process"]["env"] = serde_json::json!(["PATH=/bin", "HOME="]);
    });
    if !rt.is_hull() && out == "\n" {
        return integration::skip("runc 1.1.5 keeps an empty HOME");
    }
    assert_eq!(out, "/root\n");
}

/// SIGTERM sent straight to a created container's init (as a caller holding its pidfd sends it)
/// ends it, as it ends runc's: pid 1 of a namespace would ignore a signal it has no handler for.
#[test]
fn sigterm_ends_a_created_container() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "60"]);
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let init = rt.state(&c.id)["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) of the container's init, which this test made.
    unsafe { libc::kill(init, libc::SIGTERM) };
    assert_eq!(rt.wait_status(&c.id, "stopped")["status"], "stopped");
}

/// A container that joins a namespace by path gets its pid namespace through an intermediate
/// process, which reports init's pid and exits. However late that report comes (hull's debug
/// build holds it back for HULL_TEST_SLOW_INTERMEDIATE_MS; other runtimes ignore the
/// variable), the state names init - pid 1 of its namespace - and start runs it. hull once
/// recorded the intermediate when init's Ready overtook the report.
#[test]
fn a_late_intermediate_still_leaves_the_real_init_in_the_state() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    let namespaces = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|n| n["type"] != "network");
    namespaces.push(serde_json::json!({"type": "network", "path": "/proc/self/ns/net"}));
    b.save();
    let c = Container::new(&rt);
    // stderr through a file: the created container keeps the runtime's stdio open.
    let dir = integration::TempDir::new("late-intermediate");
    let err = dir.path.join("stderr");
    let status = rt
        .cmd()
        .env("HULL_TEST_SLOW_INTERMEDIATE_MS", "300")
        .args(["create", "--bundle", b.path_str(), &c.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    let pid = rt.state(&c.id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(
        nspid.split_whitespace().skip(1).collect::<Vec<_>>().len(),
        2,
        "the state's pid is not init (pid 1 of its own namespace): {status}"
    );
    rt.ok(&["start", &c.id]);
    rt.wait_status(&c.id, "stopped");
}

/// A bundle whose rootfs is a symlink (to a shared image directory, say) runs where the link
/// leads, as with crun; hull used to fail inside init with "open root handle failed".
#[test]
fn run_takes_a_symlinked_rootfs_where_it_leads() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        integration::skip(
            "runc refuses a symlinked rootfs (\"not an absolute path, or a symlink\")",
        );
        return;
    }
    let mut b = Bundle::new(&["cat", "/etc/hostname-probe"]);
    let image = TempDir::new("hull-image");
    let real = image.path.join("rootfs");
    std::fs::rename(b.rootfs(), &real).unwrap();
    std::fs::write(real.join("etc/hostname-probe"), "through the link\n").unwrap();
    std::os::unix::fs::symlink(&real, b.rootfs()).unwrap();
    b.config["root"]["readonly"] = serde_json::json!(true);
    b.save();
    let c = Container::new(&rt);
    let out = rt.run(&["run", "--bundle", b.path_str(), &c.id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "through the link\n");
    assert!(!rt.root.path.join(&c.id).exists());
}
