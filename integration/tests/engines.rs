//! Real engines driving the runtime: podman (through conmon) with `--runtime`. Each engine gets
//! private storage and state directories under a temporary directory that is unmounted and
//! removed afterwards.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use integration::{make_rootfs, Runtime, TempDir};

struct Podman<'a> {
    rt: &'a Runtime,
    dir: TempDir,
}

impl<'a> Podman<'a> {
    /// None (after printing why) when podman is not installed.
    fn new(rt: &'a Runtime) -> Option<Podman<'a>> {
        if Command::new("podman").arg("--version").output().is_err() {
            integration::skip("podman is not installed (apt-get install podman)");
            return None;
        }
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
        let p = Podman { rt, dir };
        let rootfs = p.dir.path.join("rootfs");
        make_rootfs(&rootfs);
        let tar = p.dir.path.join("rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
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

#[test]
fn containerd_runs_execs_pauses_and_reads_metrics() {
    let rt = Runtime::new();
    let Some(p) = Podman::new(&rt) else { return };
    let Some(ctd) = Containerd::start() else {
        return;
    };
    // podman makes the OCI archive of the busybox image; ctr imports it.
    let archive = ctd.dir.path.join("image.tar");
    let o = p.run(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        archive.to_str().unwrap(),
        "localhost/hulltest:1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ctd.ctr(&[
        "image",
        "import",
        "--base-name",
        "localhost/hulltest",
        archive.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
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
