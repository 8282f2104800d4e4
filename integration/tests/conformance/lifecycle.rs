//! The runc lifecycle as a black box: create/start/state/kill/delete/run/list/spec, exit codes,
//! pid files, preserved fds, logging and error texts.

use std::os::fd::AsRawFd;
use std::process::Stdio;

use integration::{run_bundle, Bundle, Container, Runtime, TempDir};
use serde_json::{json, Value};

pub fn create_start_state_delete() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script("echo started > /tmp/marker; sleep 30");
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let s = rt.state(&c.id);
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], c.id.as_str());
    assert!(s["pid"].as_i64().unwrap() > 0);
    assert_eq!(s["bundle"], b.path_str());
    assert!(s["ociVersion"].is_string() && s["created"].is_string());
    assert!(
        !b.rootfs().join("tmp/marker").exists(),
        "process ran before start"
    );

    rt.ok(&["start", &c.id]);
    assert_eq!(rt.wait_status(&c.id, "running")["status"], "running");
    let out = rt.run(&["start", &c.id]);
    assert!(!out.status.success(), "second start must fail");

    let out = rt.run(&["delete", &c.id]);
    assert!(
        !out.status.success(),
        "delete of a running container needs --force"
    );
    rt.ok(&["kill", &c.id, "KILL"]);
    let s = rt.wait_status(&c.id, "stopped");
    assert_eq!(s["status"], "stopped");
    assert_eq!(s["pid"], 0);
    rt.ok(&["delete", &c.id]);
    let out = rt.run(&["state", &c.id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

pub fn delete_of_created_container_kills_it() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let pid = rt.state(&c.id)["pid"].as_i64().unwrap();
    rt.ok(&["delete", &c.id]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "init {pid} still alive: {stat}"
    );
    assert!(!rt.root.path.join(&c.id).exists());
}

pub fn delete_force_of_missing_container_succeeds() {
    let rt = Runtime::new();
    rt.ok(&["delete", "--force", "no-such-container"]);
    let out = rt.run(&["delete", "no-such-container"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

pub fn run_returns_the_exit_status() {
    let rt = Runtime::new();
    for (script, want) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -9 $$", 137),
        ("kill -TERM $$", 143),
    ] {
        let mut b = Bundle::new(&[]);
        b.script(script);
        // Without a pid namespace the shell is not pid 1, so it can die of its own signal.
        b.config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
        let (code, _, err) = run_bundle(&rt, &b);
        assert_eq!(code, want, "{script}: {err}");
    }
}

pub fn run_removes_the_container_and_its_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    let cg = format!("/{}", integration::unique("hulltest"));
    b.script("cat /proc/self/cgroup");
    b.config["linux"]["cgroupsPath"] = json!(cg);
    b.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]);
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.contains(":memory:") && l.ends_with(&cg)),
        "{out}"
    );
    assert!(
        std::fs::read_dir(&rt.root.path)
            .unwrap()
            .all(|e| hull::is_spare_state_dir(&e.unwrap().path())),
        "state left behind"
    );
    for d in integration::cgroup_dirs(&cg) {
        assert!(!d.exists(), "cgroup {d:?} left behind");
    }
}

pub fn run_detached_then_kill_by_name_and_number() {
    let rt = Runtime::new();
    for sig in ["TERM", "SIGKILL", "9"] {
        let b = Bundle::new(&["sleep", "30"]);
        b.save();
        let c = Container::new(&rt);
        rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
        assert_eq!(rt.state(&c.id)["status"], "running");
        rt.ok(&["kill", &c.id, sig]);
        // sleep as pid 1 ignores SIGTERM without a handler, as in every runtime.
        if sig == "TERM" {
            rt.ok(&["kill", &c.id, "KILL"]);
        }
        assert_eq!(rt.wait_status(&c.id, "stopped")["status"], "stopped");
        let out = rt.run(&["kill", &c.id, "KILL"]);
        assert!(
            !out.status.success(),
            "kill of a stopped container must fail"
        );
        rt.ok(&["delete", &c.id]);
    }
    let out = rt.run(&["kill", "nope", "BOGUS"]);
    assert!(!out.status.success());
}

pub fn list_formats() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "30"]);
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let table = rt.ok(&["list"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    assert!(table.lines().nth(1).unwrap().starts_with(&c.id));
    assert!(table.contains("created"));
    assert_eq!(rt.ok(&["list", "-q"]).trim(), c.id);
    let json: Value = serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], c.id.as_str());
    assert_eq!(json[0]["status"], "created");
    assert!(json[0]["pid"].is_i64());
}

pub fn pid_file_holds_the_init_pid() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    b.save();
    let c = Container::new(&rt);
    let pid_file = b.path().join("init.pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.path_str(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
    ]);
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rt.state(&c.id)["pid"], pid);
    let leftovers: Vec<_> = std::fs::read_dir(b.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("init.pid."))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary pid files left: {leftovers:?}"
    );
}

pub fn preserve_fds_passes_exactly_those() {
    let rt = Runtime::new();
    let dir = TempDir::new("fds");
    let f3 = std::fs::File::create(dir.path.join("three")).unwrap();
    let f4 = std::fs::File::create(dir.path.join("four")).unwrap();
    let mut b = Bundle::new(&[]);
    b.script("echo via3 >&3; for f in /proc/self/fd/*; do readlink $f; done; true");
    b.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]);
    b.save();
    let c = Container::new(&rt);
    let mut cmd = rt.cmd();
    cmd.args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path_str(),
        &c.id,
    ]);
    let (a, bfd) = (f3.as_raw_fd(), f4.as_raw_fd());
    // SAFETY: dup2 between fds owned by this test, in the child before exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // Through high numbers first: dup2 onto itself would keep close-on-exec.
            let (ha, hb) = (
                libc::fcntl(a, libc::F_DUPFD, 100),
                libc::fcntl(bfd, libc::F_DUPFD, 101),
            );
            libc::dup2(ha, 3);
            libc::dup2(hb, 4);
            Ok(())
        });
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fds = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        std::fs::read_to_string(dir.path.join("three")).unwrap(),
        "via3\n"
    );
    assert!(fds.lines().any(|f| f.ends_with("/three")), "{fds}");
    assert!(
        !fds.lines().any(|f| f.ends_with("/four")),
        "fd 4 leaked: {fds}"
    );
}

pub fn spec_writes_a_runnable_config_once() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    rt.ok(&["spec", "--bundle", b.path_str()]);
    let config: Value =
        serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["root"]["path"], "rootfs");
    assert!(config["process"]["capabilities"]["inheritable"].is_null());
    let out = rt.run(&["spec", "--bundle", b.path_str()]);
    assert!(!out.status.success(), "spec must not overwrite config.json");
    // The default config runs `sh` with a terminal; make it a plain `true` and run it.
    let mut config = config;
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["true"]);
    std::fs::write(b.path().join("config.json"), config.to_string()).unwrap();
    let c = Container::new(&rt);
    rt.ok(&["run", "--bundle", b.path_str(), &c.id]);
}

pub fn json_log_gets_exactly_one_line_per_failure() {
    let rt = Runtime::new();
    let log = rt.root.path.join("log.json");
    let out = rt
        .cmd()
        .args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "missing",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"));
    assert!(v["time"].is_string());
}

pub fn id_rules_and_duplicates() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    b.save();
    let out = rt.run(&["create", "--bundle", b.path_str(), "bad/id"]);
    assert!(!out.status.success());
    if rt.is_hull() {
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid container ID format"));
    }
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let out = rt.run(&["create", "--bundle", b.path_str(), &c.id]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        rt.state(&c.id)["status"],
        "created",
        "the first container must survive"
    );
}

pub fn version_names_the_runtime_and_spec() {
    let rt = Runtime::new();
    let v = rt.ok(&["--version"]);
    assert!(v.lines().next().unwrap().contains(" version "), "{v}");
    assert!(v.lines().any(|l| l.starts_with("spec: 1.")), "{v}");
}

pub fn config_changes_after_create_have_no_effect() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    let log = b.path().join("poststop.log");
    b.config["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo original >> {}", log.display())]}]});
    b.script("true");
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    b.config["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo edited >> {}", log.display())]}]});
    b.save();
    rt.ok(&["delete", &c.id]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "original\n");
}

pub fn kill_all_signals_every_process() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script("sleep 30 & sleep 30 & wait");
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    rt.ok(&["kill", "--all", &c.id, "KILL"]);
    assert_eq!(rt.wait_status(&c.id, "stopped")["status"], "stopped");
}
