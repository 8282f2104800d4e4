//! Rootless containers: a user without root, made by the test, runs a `spec --rootless`
//! bundle through the whole lifecycle, with runc's rules: state under `$XDG_RUNTIME_DIR`,
//! no cgroup of its own unless it may make one, limits it could not keep refused, and
//! `--rootless false` making a cgroup it may not create an error.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use integration::{busybox_tar, make_rootfs, skip, unique, Runtime, TempDir};
use serde_json::Value;

/// A system user made for one test and deleted with it.
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

impl User {
    /// None (after printing why) where the test cannot make one or the kernel gives users no
    /// user namespaces.
    fn new() -> Option<User> {
        Self::make(true)
    }

    /// A regular user, whom useradd gives subordinate uid and gid ranges (for podman).
    fn with_subids() -> Option<User> {
        Self::make(false)
    }

    fn make(system: bool) -> Option<User> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            skip("making a user needs root");
            return None;
        }
        let allowed =
            |f: &str, bad: &str| std::fs::read_to_string(f).map_or(true, |v| v.trim() != bad);
        if !allowed("/proc/sys/kernel/unprivileged_userns_clone", "0")
            || !allowed("/proc/sys/user/max_user_namespaces", "0")
        {
            skip("this kernel gives unprivileged users no user namespaces");
            return None;
        }
        let name = format!("hrl{}", &unique("")[..].replace(['-', '_'], ""));
        let name: String = name.chars().take(30).collect();
        let mut useradd = Command::new("useradd");
        if system {
            useradd.arg("--system");
        }
        let ok = useradd
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin"])
            .arg(&name)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            skip("useradd failed");
            return None;
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg(&name).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        Some(User {
            uid: id("-u"),
            gid: id("-g"),
            name,
        })
    }

    fn own(&self, path: &Path) {
        let ok = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {path:?}");
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// What a rootless user has: the user, a runtime directory, a bundle made by the runtime's
/// own `spec --rootless`, and the containers to delete at the end.
struct Rootless {
    rt: Runtime,
    user: User,
    dir: TempDir,
    ids: Vec<String>,
}

impl Rootless {
    fn new() -> Option<Rootless> {
        let user = User::new()?;
        let dir = TempDir::new("rootless");
        std::fs::create_dir_all(dir.path.join("xdg")).unwrap();
        make_rootfs(&dir.path.join("bundle/rootfs"));
        user.own(&dir.path);
        let r = Rootless {
            rt: Runtime::new(),
            user,
            dir,
            ids: Vec::new(),
        };
        let mut spec = r.command(&["spec", "--rootless"]);
        spec.current_dir(r.bundle());
        let out = r.output(spec);
        assert!(out.status.success(), "spec --rootless: {out:?}");
        r.edit(|c| c["process"]["terminal"] = Value::Bool(false));
        Some(r)
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path.join("bundle")
    }

    /// The runtime as the user, with the user's runtime directory and no --root.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.rt.bin);
        c.args(args)
            .env("XDG_RUNTIME_DIR", self.dir.path.join("xdg"))
            .env("USER", &self.user.name)
            .uid(self.user.uid)
            .gid(self.user.gid);
        c
    }

    /// Runs with stdio in files the user owns (runc fchowns its stdio to the container's
    /// root; a pipe of ours would belong to host root).
    fn output(&self, mut c: Command) -> Output {
        let name = unique("io");
        let (out, err) = (
            self.dir.path.join(format!("{name}.out")),
            self.dir.path.join(format!("{name}.err")),
        );
        for f in [&out, &err] {
            std::fs::File::create(f).unwrap();
            std::os::unix::fs::chown(f, Some(self.user.uid), Some(self.user.gid)).unwrap();
        }
        let status = c
            .stdin(Stdio::null())
            .stdout(std::fs::File::options().append(true).open(&out).unwrap())
            .stderr(std::fs::File::options().append(true).open(&err).unwrap())
            .status()
            .expect("run the runtime");
        Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command(args);
        c.current_dir(self.bundle());
        self.output(c)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Rewrites the bundle's config (as root; the user keeps owning it).
    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.bundle().join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut config);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }

    fn id(&mut self) -> String {
        let id = unique("rl");
        self.ids.push(id.clone());
        id
    }

    /// The runtime's default state root for this user.
    fn state_root(&self) -> PathBuf {
        let name = self
            .rt
            .bin
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        self.dir.path.join("xdg").join(name)
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.run(&["delete", "--force", id]);
        }
    }
}

#[test]
fn a_user_without_root_runs_the_whole_lifecycle() {
    let Some(mut r) = Rootless::new() else { return };
    r.edit(|c| {
        c["process"]["args"] = serde_json::json!(["sh", "-c", "id -u; cat /proc/self/uid_map"])
    });
    let id = r.id();
    let out = r.ok(&["run", &id]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let uid = r.user.uid.to_string();
    assert_eq!(lines, [vec!["0"], vec!["0", uid.as_str(), "1"]], "{out}");

    r.edit(|c| c["process"]["args"] = serde_json::json!(["sleep", "100"]));
    let id = r.id();
    r.ok(&["create", &id]);
    assert!(
        r.state_root().join(&id).is_dir(),
        "state under $XDG_RUNTIME_DIR: {:?}",
        r.state_root()
    );
    r.ok(&["start", &id]);
    let state: Value = serde_json::from_str(&r.ok(&["state", &id])).unwrap();
    assert_eq!(state["status"], "running");
    assert_eq!(r.ok(&["exec", &id, "id", "-u"]), "0\n");
    r.ok(&["kill", &id, "KILL"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !r.ok(&["state", &id]).contains("\"stopped\"") {
        assert!(std::time::Instant::now() < deadline, "never stopped");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    r.ok(&["delete", &id]);
    assert!(!r.state_root().join(&id).exists());
}

#[test]
fn rootless_refuses_a_limit_it_could_not_keep_and_leaves_nothing() {
    let Some(mut r) = Rootless::new() else { return };
    // A user may not make cgroups here (no delegation): a pids limit could not be kept.
    let delegated = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"].iter().any(|d| {
        std::fs::metadata(d).is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == r.user.uid)
    });
    if delegated {
        return skip("the test user owns a cgroup tree here");
    }
    r.edit(|c| {
        c["process"]["args"] = serde_json::json!(["true"]);
        c["linux"]["resources"] = serde_json::json!({"pids": {"limit": 10}});
    });
    let id = r.id();
    let out = r.run(&["run", &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot set pids limit: container could not join or create cgroup"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(r.state_root())
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(!left.iter().any(|n| n.to_string_lossy() == id), "{left:?}");

    // --rootless false: the cgroup the user may not make is an error, as for root.
    r.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("resources");
    });
    let id = r.id();
    let mut c = r.command(&["--rootless", "false", "run", &id]);
    c.current_dir(r.bundle());
    let out = r.output(c);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("permission denied"), "{err}");
}

/// Rootless podman, as a user with subordinate ids, drives the runtime from inside its own
/// user namespace with a config that has none: devices are bind mounts there too.
#[test]
fn rootless_podman_runs_containers_through_the_runtime() {
    if Command::new("podman").arg("--version").output().is_err() {
        return skip("podman is not installed (apt-get install podman)");
    }
    if !Path::new("/usr/bin/newuidmap").exists() {
        return skip("newuidmap is not installed (apt-get install uidmap)");
    }
    let rt = Runtime::new();
    let Some(user) = User::with_subids() else {
        return;
    };
    let subids = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    if !subids
        .lines()
        .any(|l| l.starts_with(&format!("{}:", user.name)))
    {
        return skip("useradd gave the user no subordinate ids");
    }
    let dir = TempDir::new("rootless-podman");
    let xdg = dir.path.join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    let tar = busybox_tar(&dir.path);
    user.own(&dir.path);
    std::fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let podman = |args: &[&str]| -> Output {
        Command::new("podman")
            .arg("--root")
            .arg(dir.path.join("storage"))
            .arg("--runroot")
            .arg(xdg.join("run"))
            .args([
                "--storage-driver=vfs",
                "--cgroup-manager=cgroupfs",
                "--events-backend=file",
            ])
            .arg("--runtime")
            .arg(&rt.bin)
            .args(args)
            .env("XDG_RUNTIME_DIR", &xdg)
            .env("HOME", &dir.path)
            .env("USER", &user.name)
            .current_dir(&dir.path)
            .uid(user.uid)
            .gid(user.gid)
            .stdin(Stdio::null())
            .output()
            .expect("podman")
    };
    let ok = |args: &[&str]| -> String {
        let o = podman(args);
        assert!(
            o.status.success(),
            "podman {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // Whatever happens, the containers go, then podman's pause process (it holds the user
    // namespace), by the pid podman recorded.
    struct Cleanup<'a>(&'a dyn Fn(&[&str]) -> Output, PathBuf);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["rm", "-f", "-a", "-t", "0"]);
            if let Some(pid) = std::fs::read_to_string(self.1.join("libpod/tmp/pause.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                // SAFETY: kill with integer arguments, on the pause process podman started for us.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    let _cleanup = Cleanup(&podman, xdg.clone());
    ok(&["import", tar.to_str().unwrap(), "localhost/rl:1"]);
    let out = ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/rl:1",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; ls -l /dev/null",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let uid = user.uid.to_string();
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", uid.as_str(), "1"],
        "{out}"
    );
    assert!(lines.iter().any(|l| l.starts_with("crw")), "{out}");
    ok(&[
        "run",
        "-d",
        "--name",
        "rl",
        "--network",
        "none",
        "localhost/rl:1",
        "sleep",
        "100",
    ]);
    assert_eq!(ok(&["exec", "rl", "id", "-u"]), "0\n");
    ok(&["stop", "-t", "0", "rl"]);
    ok(&["rm", "rl"]);
}
