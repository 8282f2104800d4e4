//! Real engines driving the runtime: podman (through conmon) with `--runtime`, containerd + ctr
//! with `--runc-binary`, and dockerd with `--add-runtime`. Each engine gets private storage and
//! state directories under a temporary directory that is unmounted and removed afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use integration::{busybox_tar, Runtime, TempDir};

struct Podman<'a> {
    rt: &'a Runtime,
    dir: TempDir,
    /// podman's cgroupfs parent is one for all instances, and each instance's clean-up removes
    /// what is empty in it, which could be another test's cgroup between mkdir and join: one
    /// podman test at a time.
    _turn: std::sync::MutexGuard<'static, ()>,
}

static PODMAN_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl<'a> Podman<'a> {
    /// None (after printing why) when podman is not installed.
    fn new(rt: &'a Runtime) -> Option<Podman<'a>> {
        if Command::new("podman").arg("--version").output().is_err() {
            integration::skip("podman is not installed (apt-get install podman)");
            return None;
        }
        let turn = PODMAN_TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = TempDir::new("podman");
        for d in ["root", "runroot", "tmp"] {
            std::fs::create_dir_all(dir.path.join(d)).unwrap();
        }
        // This machine's shell lacks CAP_SYS_RESOURCE: podman's default ulimits cannot be set.
        std::fs::write(
            dir.path.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n",
        )
        .unwrap();
        let p = Podman {
            rt,
            dir,
            _turn: turn,
        };
        let tar = busybox_tar(&p.dir.path);
        let out = p.run(&["import", tar.to_str().unwrap(), "localhost/hulltest:1"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(p)
    }

    /// podman's global flags: private storage, cgroupfs, file events, the runtime under test.
    fn globals(&self) -> Vec<String> {
        let d = |s: &str| -> String { self.dir.path.join(s).display().to_string() };
        vec![
            "--root".into(),
            d("root"),
            "--runroot".into(),
            d("runroot"),
            "--tmpdir".into(),
            d("tmp"),
            "--cgroup-manager=cgroupfs".into(),
            "--events-backend=file".into(),
            "--runtime".into(),
            self.rt.bin.display().to_string(),
        ]
    }

    fn conf(&self) -> PathBuf {
        self.dir.path.join("containers.conf")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.conf()).args(self.globals());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman")
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--force", "--all", "--time", "0"]);
        let _ = self.run(&["image", "rm", "--all", "--force"]);
        // podman's cgroupfs parent outlives its containers; removed only if now empty.
        integration::remove_empty_cgroups("libpod_parent");
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn podman_run_exec_stop_rm_and_memory_limit() {
    let rt = Runtime::new();
    let Some(p) = Podman::new(&rt) else { return };
    let o = p.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/hulltest:1",
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");

    let o = p.run(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "none",
        "localhost/hulltest:1",
        "sleep",
        "100",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = p.run(&["exec", "c1", "sh", "-c", "echo in-exec; ps | wc -l"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("in-exec\n"));
    let o = p.run(&["stop", "-t", "1", "c1"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = p.run(&["rm", "c1"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = p.run(&[
        "run", "--rm", "--network", "none", "--memory", "32m", "localhost/hulltest:1", "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
         head -c 268435456 /dev/zero | tail",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().next(),
        Some("33554432"),
        "{}",
        text(&o)
    );
    assert_eq!(
        o.status.code(),
        Some(137),
        "the hog must be OOM-killed: {}",
        text(&o)
    );
}

/// podman's `container checkpoint` and `container restore` through the runtime: the process
/// stops with the container and carries on counting after the restore, started once. The
/// container's stdio is conmon's /dev/null, which the runtime must have reopened inside the
/// container (runc does) or CRIU cannot dump it.
#[test]
fn podman_checkpoint_and_restore() {
    if !integration::features::require(integration::features::Feature::Criu, "podman checkpoint") {
        return;
    }
    let rt = Runtime::new();
    let Some(p) = Podman::new(&rt) else { return };
    let o = p.run(&[
        "run",
        "-d",
        "--name",
        "ck",
        "--network",
        "none",
        "localhost/hulltest:1",
        "sh",
        "-c",
        "echo start >> /tmp/starts; i=0; while true; do i=$((i+1)); echo $i > /tmp/n; \
         mv /tmp/n /tmp/count; sleep 0.05; done",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let count = |p: &Podman| -> u64 {
        let o = p.run(&["exec", "ck", "cat", "/tmp/count"]);
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&p) < 3 {
        assert!(Instant::now() < deadline, "the counter did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = p.run(&["container", "checkpoint", "ck"]);
    assert!(o.status.success(), "checkpoint: {}", text(&o));
    let o = p.run(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(text(&o).starts_with("Exited"), "{}", text(&o));
    let o = p.run(&["container", "restore", "ck"]);
    assert!(o.status.success(), "restore: {}", text(&o));
    let after = count(&p);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&p) < after + 3 {
        assert!(
            Instant::now() < deadline,
            "the restored counter does not count"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = p.run(&["exec", "ck", "cat", "/tmp/starts"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "start\n",
        "started again"
    );
}

#[test]
fn podman_run_it_through_conmons_console_socket() {
    let rt = Runtime::new();
    let Some(p) = Podman::new(&rt) else { return };
    if Command::new("script").arg("--version").output().is_err() {
        integration::skip("script(1) from util-linux is not installed");
        return;
    }
    let podman = format!(
        "CONTAINERS_CONF={} podman {}",
        p.conf().display(),
        p.globals().join(" ")
    );
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{podman} run -it --rm --network none localhost/hulltest:1 sh"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        b"echo typed-$((6*7)); tty; exit 5\n",
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains("typed-42"), "{t}");
    assert!(t.contains("/dev/pts/"), "{t}");
}

/// A private containerd (own root, state, socket; the CRI plugin off), stopped on drop.
struct Containerd {
    dir: TempDir,
    daemon: std::process::Child,
    namespace: String,
}

impl Containerd {
    fn start() -> Option<Containerd> {
        if Command::new("containerd")
            .arg("--version")
            .output()
            .is_err()
        {
            integration::skip("containerd is not installed (apt-get install containerd)");
            return None;
        }
        let dir = TempDir::new("containerd");
        let config = format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{0}/sock\"\n",
            dir.path.display()
        );
        std::fs::write(dir.path.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path.join("log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.path.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd {
            namespace: integration::unique("hull"),
            dir,
            daemon,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while c.ctr(&["version"]).status.code() != Some(0) {
            assert!(
                std::time::Instant::now() < deadline,
                "containerd did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(c)
    }

    /// podman's busybox image, as an OCI archive podman makes and ctr imports.
    fn import_busybox(&self, p: &Podman) {
        let archive = self.dir.path.join("image.tar");
        let o = p.run(&[
            "save",
            "--format",
            "oci-archive",
            "-o",
            archive.to_str().unwrap(),
            "localhost/hulltest:1",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let o = self.ctr(&[
            "image",
            "import",
            "--base-name",
            "localhost/hulltest",
            archive.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.path.join("sock"))
            .args(["--namespace", &self.namespace])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ctr")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let tasks = self.ctr(&["task", "ls", "-q"]);
        for id in String::from_utf8_lossy(&tasks.stdout).lines() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
            let _ = self.ctr(&["task", "delete", "--force", id]);
        }
        let containers = self.ctr(&["container", "ls", "-q"]);
        for id in String::from_utf8_lossy(&containers.stdout).lines() {
            let _ = self.ctr(&["container", "delete", id]);
        }
        let _ = self.ctr(&["image", "rm", "localhost/hulltest:1"]);
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // The shim gives the runtime this state root per namespace, and containerd puts the
        // containers' cgroups under /<namespace>/ in every hierarchy.
        let _ = std::fs::remove_dir(format!("/run/containerd/runc/{}", self.namespace));
        integration::remove_empty_cgroups(&self.namespace);
    }
}

/// containerd's `ctr container checkpoint --task --rw` and `ctr container restore --live
/// --rw` through the runtime (the shim passes `restore ... -no-subreaper`, Go's single-dash
/// spelling): the restored task carries on counting from where the checkpoint left it.
#[test]
fn containerd_checkpoint_and_restore_a_task() {
    if !integration::features::require(
        integration::features::Feature::Criu,
        "containerd checkpoint",
    ) {
        return;
    }
    let rt = Runtime::new();
    let Some(p) = Podman::new(&rt) else { return };
    let Some(ctd) = Containerd::start() else {
        return;
    };
    ctd.import_busybox(&p);
    let bin = rt.bin.display().to_string();
    let o = ctd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        &bin,
        "localhost/hulltest:1",
        "counter",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /n; mv /n /count; sleep 0.05; done",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let count = |exec: &str| -> u64 {
        let o = ctd.ctr(&[
            "task",
            "exec",
            "--exec-id",
            exec,
            "counter",
            "cat",
            "/count",
        ]);
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    // Far enough that a counter started afresh could not be mistaken for the restored one.
    while count("before") < 20 {
        assert!(Instant::now() < deadline, "the counter did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = ctd.ctr(&[
        "container",
        "checkpoint",
        "--task",
        "--rw",
        "counter",
        "hullckpt:1",
    ]);
    assert!(o.status.success(), "checkpoint: {}", text(&o));
    let at_checkpoint = count("at");
    for args in [
        &["task", "delete", "--force", "counter"][..],
        &["container", "delete", "counter"],
    ] {
        let o = ctd.ctr(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
    let o = ctd.ctr(&[
        "container",
        "restore",
        "--live",
        "--rw",
        "counter",
        "hullckpt:1",
    ]);
    assert!(o.status.success(), "restore: {}", text(&o));
    let restored = count("after");
    assert!(
        (20..=at_checkpoint + 40).contains(&restored),
        "restored at {restored}, checkpointed at {at_checkpoint}: not from the checkpoint"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while count("later") <= restored {
        assert!(
            Instant::now() < deadline,
            "the restored counter does not count"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = ctd.ctr(&["image", "rm", "hullckpt:1"]);
}

#[test]
fn containerd_runs_execs_pauses_and_reads_metrics() {
    if integration::skip_if_a_hierarchy_lingers("containerd's metrics") {
        return;
    }
    let rt = Runtime::new();
    let Some(p) = Podman::new(&rt) else { return };
    let Some(ctd) = Containerd::start() else {
        return;
    };
    ctd.import_busybox(&p);
    let bin = rt.bin.display().to_string();

    let o = ctd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        &bin,
        "localhost/hulltest:1",
        "once",
        "sh",
        "-c",
        "echo hello; exit 4",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello\n",
        "{}",
        text(&o)
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));

    let o = ctd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        &bin,
        "localhost/hulltest:1",
        "long",
        "sleep",
        "100",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "long",
        "sh",
        "-c",
        "echo exec-ok",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "exec-ok\n",
        "{}",
        text(&o)
    );
    let o = ctd.ctr(&["task", "pause", "long"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ctd.ctr(&["task", "ls"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("PAUSED"),
        "{}",
        text(&o)
    );
    let o = ctd.ctr(&["task", "resume", "long"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ctd.ctr(&["task", "metrics", "long"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("memory.usage_in_bytes"),
        "{}",
        text(&o)
    );
    let o = ctd.ctr(&["task", "kill", "-s", "SIGKILL", "long"]);
    assert!(o.status.success(), "{}", text(&o));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ls = ctd.ctr(&["task", "ls"]);
        if String::from_utf8_lossy(&ls.stdout).contains("STOPPED")
            || std::time::Instant::now() > deadline
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = ctd.ctr(&["task", "delete", "long"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ctd.ctr(&["container", "delete", "long"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Host paths dockerd creates outside its data and exec roots (its trust key, the plugin
/// discovery directory); teardown removes those that did not exist before it started.
const DOCKERD_HOST_PATHS: [&str; 3] =
    ["/etc/docker/key.json", "/run/docker/plugins", "/run/docker"];

const DOCKER_IMAGE: &str = "localhost/hulltest:1";

/// An absolute path for a runtime binary (`REFERENCE=runc` names a program on PATH).
fn absolute_bin(bin: &Path) -> PathBuf {
    if bin.is_absolute() {
        return bin.to_path_buf();
    }
    if bin.components().count() > 1 {
        return std::env::current_dir().unwrap().join(bin);
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(bin))
                .find(|c| c.is_file())
        })
        .unwrap_or_else(|| panic!("{bin:?} is not on PATH"))
}

/// Installs docker.io with apt-get when dockerd is missing; Err(why) when that fails.
fn install_docker() -> Result<(), String> {
    let present = || Command::new("dockerd").arg("--version").output().is_ok();
    if present() {
        return Ok(());
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("apt-get: {e}"))
    };
    let install = [
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "docker.io",
    ];
    let mut out = apt(&install)?;
    if !out.status.success() {
        apt(&["update", "-qq"])?;
        out = apt(&install)?;
    }
    if !out.status.success() {
        return Err(format!("apt-get install docker.io failed: {}", text(&out)));
    }
    if !present() {
        return Err("dockerd is still missing after apt-get install docker.io".into());
    }
    Ok(())
}

/// The cgroup file `file` (`cpu.shares`, `freezer.state`) of process `pid`: the file's
/// controller's line in /proc/PID/cgroup, in whichever host hierarchy has that file.
fn cgroup_file(pid: &str, file: &str) -> PathBuf {
    let controller = file.split('.').next().unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup");
    cgroups
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':').skip(1);
            let (controllers, path) = (f.next()?, f.next()?);
            controllers
                .split(',')
                .any(|c| c == controller)
                .then_some(path)
        })
        .flat_map(integration::cgroup_dirs)
        .map(|d| d.join(file))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {file} for pid {pid}: {cgroups}"))
}

/// Calls `f` until it returns Some, for at most `limit`.
fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private dockerd on a private containerd: its own data root, exec root, pidfile, socket and
/// cgroup parent, the runtime under test registered with `--add-runtime`, no bridge and no
/// firewall or forwarding changes. Drop removes its containers, stops it by pid, unmounts what it
/// left, stops containerd and removes the cgroup parent.
struct Docker {
    dir: TempDir,
    daemon: Option<std::process::Child>,
    containerd: Option<Containerd>,
    client: PathBuf,
    /// The name the runtime under test is registered as.
    runtime: String,
    cgroup_parent: String,
    created_host_paths: Vec<&'static str>,
}

impl Docker {
    fn start(rt: &Runtime) -> Option<Docker> {
        if let Err(why) = install_docker() {
            integration::skip(&format!("docker.io cannot be installed: {why}"));
            return None;
        }
        let containerd = Containerd::start()?;
        let dir = TempDir::new("docker");
        let created_host_paths = DOCKERD_HOST_PATHS
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        let runtime = if rt.is_hull() { "hull" } else { "reference" }.to_string();
        let cgroup_parent = integration::unique("hull-docker");
        let d = |s: &str| dir.path.join(s);
        std::fs::write(d("daemon.json"), "{}\n").unwrap();
        let log = std::fs::File::create(d("dockerd.log")).unwrap();
        let daemon = Command::new("dockerd")
            .arg("--config-file")
            .arg(d("daemon.json"))
            .arg("--data-root")
            .arg(d("data"))
            .arg("--exec-root")
            .arg(d("exec"))
            .arg("--pidfile")
            .arg(d("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d("docker.sock").display()))
            .arg("--containerd")
            .arg(containerd.dir.path.join("sock"))
            .arg("--containerd-namespace")
            .arg(&containerd.namespace)
            .arg("--containerd-plugins-namespace")
            .arg(format!("{}-plugins", containerd.namespace))
            .arg("--add-runtime")
            .arg(format!("{runtime}={}", absolute_bin(&rt.bin).display()))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            .args(["--ip-forward=false", "--ip-masq=false"])
            .args(["--default-ulimit", "nofile=1024:1024"])
            .arg("--cgroup-parent")
            .arg(format!("/{cgroup_parent}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        // docker.io's client matches its daemon; a newer `docker` may come first on PATH.
        let client = ["/usr/bin/docker"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("docker"));
        let mut docker = Docker {
            dir,
            daemon: Some(daemon),
            containerd: Some(containerd),
            client,
            runtime,
            cgroup_parent,
            created_host_paths,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !docker
            .run_for(&["version"], Duration::from_secs(10))
            .status
            .success()
        {
            if let Some(st) = docker.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockerd exited ({st}): {}", docker.diag());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                docker.diag()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(docker)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_for(args, Duration::from_secs(120))
    }

    /// Runs the client against this daemon, killing it after `limit`; output goes through
    /// files so that a detached container holding a pipe cannot block it.
    fn run_for(&self, args: &[&str], limit: Duration) -> Output {
        let name = integration::unique("io");
        let out_path = self.dir.path.join(format!("{name}.out"));
        let err_path = self.dir.path.join(format!("{name}.err"));
        let mut child = Command::new(&self.client)
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path.join("docker.sock").display()
            ))
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("docker client");
        let deadline = Instant::now() + limit;
        let mut timed_out = false;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                timed_out = true;
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = std::fs::read(&err_path).unwrap_or_default();
        if timed_out {
            stderr.extend(format!("\n(docker {args:?} killed after {limit:?})").bytes());
        }
        let out = Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr,
        };
        let _ = std::fs::remove_file(out_path);
        let _ = std::fs::remove_file(err_path);
        out
    }

    /// `docker run --runtime <under test> --network none OPTS IMAGE CMD...`
    fn docker_run(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["run", "--runtime", &self.runtime, "--network", "none"];
        args.extend(opts);
        args.push(DOCKER_IMAGE);
        args.extend(cmd);
        self.run(&args)
    }

    /// `docker container inspect`: a bare `inspect` also matches networks and images by ID
    /// prefix, and a name such as `c1` is the prefix of a random ID now and then.
    fn inspect(&self, id: &str, format: &str) -> String {
        let o = self.run(&["container", "inspect", "--format", format, id]);
        assert!(o.status.success(), "inspect {id}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// dockerd's errors and warnings, containerd's errors and every runtime log.json the shims
    /// still have, for assertion messages.
    fn diag(&self) -> String {
        let mut s = String::from("\n--- dockerd errors/warnings:\n");
        let log = std::fs::read_to_string(self.dir.path.join("dockerd.log")).unwrap_or_default();
        for l in log
            .lines()
            .filter(|l| l.contains("level=error") || l.contains("level=warn"))
        {
            s += l;
            s.push('\n');
        }
        if let Some(ctd) = &self.containerd {
            s += "--- containerd errors:\n";
            let log = std::fs::read_to_string(ctd.dir.path.join("log")).unwrap_or_default();
            for l in log.lines().filter(|l| l.contains("level=error")) {
                s += l;
                s.push('\n');
            }
            let tasks = ctd
                .dir
                .path
                .join("state/io.containerd.runtime.v2.task")
                .join(&ctd.namespace);
            for e in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
                let log = std::fs::read_to_string(e.path().join("log.json")).unwrap_or_default();
                if !log.is_empty() {
                    s += &format!("--- {}:\n{log}", e.path().join("log.json").display());
                }
            }
        }
        s
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            if daemon.try_wait().ok().flatten().is_none() {
                let ps = self.run_for(&["ps", "-aq"], Duration::from_secs(30));
                for id in String::from_utf8_lossy(&ps.stdout).split_whitespace() {
                    let _ = self.run_for(&["rm", "-f", "-v", id], Duration::from_secs(60));
                }
                // SAFETY: kill(2) of our own child, not yet reaped, so the pid is still ours.
                unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(30);
                while daemon.try_wait().ok().flatten().is_none() {
                    if Instant::now() > deadline {
                        let _ = daemon.kill();
                        let _ = daemon.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        // A killed dockerd leaves its data root bind mount, overlay mounts and netns files.
        integration::unmount_below(&self.dir.path.join("exec"));
        integration::unmount_below(&self.dir.path.join("data"));
        // containerd's guard kills any task left in the namespace and stops containerd.
        drop(self.containerd.take());
        integration::remove_empty_cgroups(&self.cgroup_parent);
        for p in &self.created_host_paths {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_dir(p);
        }
    }
}

#[test]
fn docker_runs_execs_pauses_updates_and_oom_kills() {
    if integration::skip_if_a_hierarchy_lingers("docker's OOM events") {
        return;
    }
    let rt = Runtime::new();
    let Some(d) = Docker::start(&rt) else { return };
    let bin = absolute_bin(&rt.bin).display().to_string();
    let o = d.run(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("\"{bin}\"")),
        "{} is not registered: {}",
        bin,
        text(&o)
    );
    let tar = busybox_tar(&d.dir.path);
    let o = d.run(&["import", tar.to_str().unwrap(), DOCKER_IMAGE]);
    assert!(o.status.success(), "{}", text(&o));

    // Foreground run: output and exit code.
    let o = d.docker_run(&["--rm"], &["sh", "-c", "echo hi; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}{}", text(&o), d.diag());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n", "{}", d.diag());

    // Detached: exec, pause/unpause, update, stop (SIGTERM reaches the trap), rm.
    let script = "trap 'echo got-term; exit 7' TERM; while :; do sleep 0.1; done";
    let o = d.docker_run(&["-d", "--name", "c1"], &["sh", "-c", script]);
    assert!(o.status.success(), "{}{}", text(&o), d.diag());
    let o = d.run(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "echo in-exec; tr '\\0' ' ' </proc/1/cmdline",
    ]);
    assert!(o.status.success(), "{}{}", text(&o), d.diag());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("in-exec\n"), "{out}");
    assert!(
        out.contains("got-term"),
        "exec is not in c1's pid namespace: {out}"
    );
    let o = d.run(&["exec", "c1", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}{}", text(&o), d.diag());

    let pid = d.inspect("c1", "{{.State.Pid}}");
    let freezer = cgroup_file(&pid, "freezer.state");
    let o = d.run(&["pause", "c1"]);
    assert!(o.status.success(), "{}{}", text(&o), d.diag());
    assert_eq!(d.inspect("c1", "{{.State.Status}}"), "paused");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    let o = d.run(&["unpause", "c1"]);
    assert!(o.status.success(), "{}{}", text(&o), d.diag());
    assert_eq!(d.inspect("c1", "{{.State.Status}}"), "running");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
    let o = d.run(&["exec", "c1", "echo", "after-unpause"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "after-unpause\n",
        "{}",
        text(&o)
    );

    // docker update makes the shim call `<runtime> update --resources - ID`.
    let shares = cgroup_file(&pid, "cpu.shares");
    assert_ne!(std::fs::read_to_string(&shares).unwrap().trim(), "512");
    let o = d.run(&["update", "--cpu-shares", "512", "c1"]);
    assert!(o.status.success(), "{}{}", text(&o), d.diag());
    assert_eq!(std::fs::read_to_string(&shares).unwrap().trim(), "512");

    let started = Instant::now();
    let o = d.run(&["stop", "-t", "20", "c1"]);
    assert!(o.status.success(), "{}{}", text(&o), d.diag());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop waited for its timeout: SIGTERM did not reach the trap"
    );
    assert_eq!(d.inspect("c1", "{{.State.ExitCode}}"), "7");
    let o = d.run(&["logs", "c1"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "got-term\n",
        "{}",
        text(&o)
    );
    let o = d.run(&["rm", "c1"]);
    assert!(o.status.success(), "{}{}", text(&o), d.diag());
    // dockerd may still be finishing the removal when rm's reply arrives (seen once with runc).
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.run(&["container", "inspect", "c1"]).status.success() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = d.run(&["container", "inspect", "c1"]);
    assert!(
        !left.status.success(),
        "c1 survived rm: {}{}",
        text(&left),
        d.diag()
    );

    // Memory limit enforced by the OOM killer, and seen by docker. The container outlives its
    // hog: docker 20.10 sets OOMKilled at exit only from OOM events that came before the exit,
    // and the shim reports an OOM about 0.5 s late, so a container exiting with its hog races
    // (runc lost it 1 time in about 20 here). The hog is one process (dd's 64 MiB buffer): with
    // `head | tail` the OOM killer once took the shell (pid 1) as well (runc, under load).
    // The shim watches for OOMs only once the runtime's start returned, so the hog waits for
    // a file we write after `run -d` (an OOM before that was lost once, runc under load).
    let gate = d.dir.path.join("oom-gate");
    std::fs::create_dir_all(&gate).unwrap();
    let volume = format!("{}:/gate", gate.display());
    let o = d.docker_run(
        &[
            "-d", "--name", "oom", "--memory", "32m", "--memory-swap", "32m", "-v", &volume,
        ],
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
             while [ ! -e /gate/go ]; do sleep 0.05; done; \
             dd if=/dev/zero of=/dev/null bs=64M count=1; echo hog-exit=$?; exec sleep 100",
        ],
    );
    assert!(o.status.success(), "{}{}", text(&o), d.diag());
    std::fs::write(gate.join("go"), "").unwrap();
    let mut last = String::new();
    let logs = poll(Duration::from_secs(30), || {
        let o = d.run(&["logs", "oom"]);
        last = text(&o);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        out.contains("hog-exit=").then_some(out)
    });
    assert_eq!(
        logs.as_deref(),
        Some("33554432\nhog-exit=137\n"),
        "the hog must be OOM-killed under a 32 MiB limit; last logs {last:?}, state {}{}",
        d.inspect("oom", "{{json .State}}"),
        d.diag()
    );
    let oom_event = poll(Duration::from_secs(20), || {
        let o = d.run(&[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            "container=oom",
            "--filter",
            "event=oom",
            "--format",
            "{{.Action}}",
        ]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l == "oom")
            .then_some(())
    });
    assert!(oom_event.is_some(), "docker saw no oom event{}", d.diag());
    let o = d.run(&["kill", "oom"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.run(&["wait", "oom"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "137",
        "{}",
        text(&o)
    );
    assert_eq!(d.inspect("oom", "{{.State.OOMKilled}}"), "true");
    let o = d.run(&["rm", "oom"]);
    assert!(o.status.success(), "{}", text(&o));

    // -t without -i: the container's stdio is a pty (onlcr turns \n into \r\n), no client tty.
    let o = d.docker_run(
        &["--rm", "-t"],
        &[
            "sh",
            "-c",
            "tty; test -t 0 && test -t 1 && echo both-tty; exit 6",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(6), "{}{}", text(&o), d.diag());
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(out.ends_with("\r\nboth-tty\r\n"), "{out:?}");

    // Figures for the README: median of 5 `docker run --rm ... true`.
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let o = d.docker_run(&["--rm"], &["true"]);
            assert!(o.status.success(), "{}", text(&o));
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "docker run --rm --runtime {} ({bin}) --network none true: median {:?} of 5",
        d.runtime, times[2]
    );
}
