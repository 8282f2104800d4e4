//! docker 20.10 for the network and image benches, confined to a network namespace
//! the bench makes (entered with nsenter, which unlike `ip netns exec` keeps the host's
//! /sys and its cgroup mounts): dockerd (on its own containerd, data and exec roots) rewrites iptables
//! and adds docker0 and docker-proxy only inside it, so the host's firewall and links are
//! left alone. Drop removes the containers, stops both daemons by pid, unmounts what they
//! left and deletes the namespace.

// Each bench uses a part of it.
#![allow(dead_code)]

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Dockerd {
    dir: PathBuf,
    netns: String,
    /// Whether the namespace is this daemon's, deleted with it, or the caller's.
    own_netns: bool,
    containerd: Option<Child>,
    daemon: Option<Child>,
    /// Host paths dockerd makes outside its roots that did not exist before it started.
    created: Vec<&'static str>,
}

/// What dockerd creates outside its data and exec roots (its key, plugin directories).
const HOST_PATHS: [&str; 3] = ["/etc/docker/key.json", "/run/docker/plugins", "/run/docker"];

/// Err(what is missing) unless docker.io's daemons and the tools they call are installed.
pub fn installed() -> Result<(), String> {
    for tool in ["dockerd", "containerd", "docker-proxy", "iptables"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Err(format!("{tool} is not installed"));
        }
    }
    Ok(())
}

/// Unmounts whatever an engine left mounted under `dir`, deepest first, so that removing it
/// cannot cross into another filesystem.
pub fn unmount_below(dir: &Path) {
    let prefix = format!("{}/", dir.display());
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = Command::new("umount").arg("-l").arg(&m).status();
    }
}

/// `program`, to be run in the network namespace `netns` (nsenter, which unlike `ip netns
/// exec` keeps the host's /sys and its cgroup mounts).
pub fn command_in(netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{netns}")).arg(program);
    c
}

/// Runs `f` on a thread inside the network namespace `netns`; processes it spawns start there.
pub fn run_in<T: Send + 'static>(
    netns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let ns = std::fs::File::open(format!("/run/netns/{netns}")).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns: {e}"))?;
        Ok(f())
    })
    .join()
    .map_err(|_| "thread panicked".to_string())?
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

impl Dockerd {
    /// Starts both daemons in a fresh namespace; Err(why) when docker.io is missing or
    /// they do not come up.
    pub fn start(dir: &Path) -> Result<Dockerd, String> {
        installed()?;
        let netns = format!("wharfbench{}", std::process::id());
        ip(&["netns", "add", &netns])?;
        Self::start_in(dir, netns, true)
    }

    /// Starts both daemons in the caller's network namespace `netns` (made with `ip netns
    /// add`), which outlives them: several daemons in turn can reach what listens there.
    pub fn start_in_netns(dir: &Path, netns: &str) -> Result<Dockerd, String> {
        installed()?;
        Self::start_in(dir, netns.to_string(), false)
    }

    fn start_in(dir: &Path, netns: String, own_netns: bool) -> Result<Dockerd, String> {
        let created = HOST_PATHS
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        let mut d = Dockerd {
            dir: dir.to_path_buf(),
            netns: netns.clone(),
            own_netns,
            containerd: None,
            daemon: None,
            created,
        };
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let p = |s: &str| dir.join(s);
        std::fs::write(
            p("containerd.toml"),
            format!(
                "version = 2\nroot = \"{0}/ctd-root\"\nstate = \"{0}/ctd-state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{0}/ctd.sock\"\n",
                dir.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = |name: &str| std::fs::File::create(p(name)).map_err(|e| e.to_string());
        d.containerd = Some(
            command_in(&netns, "containerd")
                .arg("--config")
                .arg(p("containerd.toml"))
                .stdout(log("containerd.log")?)
                .stderr(log("containerd.err")?)
                .spawn()
                .map_err(|e| format!("containerd: {e}"))?,
        );
        std::fs::write(p("daemon.json"), "{}\n").map_err(|e| e.to_string())?;
        d.daemon = Some(
            command_in(&netns, "dockerd")
                .arg("--config-file")
                .arg(p("daemon.json"))
                .arg("--data-root")
                .arg(p("data"))
                .arg("--exec-root")
                .arg(p("exec"))
                .arg("--pidfile")
                .arg(p("dockerd.pid"))
                .arg("-H")
                .arg(format!("unix://{}", p("docker.sock").display()))
                .arg("--containerd")
                .arg(p("ctd.sock"))
                .args(["--default-ulimit", "nofile=1024:1024"])
                .arg("--cgroup-parent")
                .arg(format!("/{netns}"))
                .stdin(Stdio::null())
                .stdout(log("dockerd.log")?)
                .stderr(log("dockerd.err")?)
                .spawn()
                .map_err(|e| format!("dockerd: {e}"))?,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if d.docker(&["version"]).map(|o| o.status.success()) == Ok(true) {
                return Ok(d);
            }
            if Instant::now() > deadline {
                let err = std::fs::read_to_string(p("dockerd.err")).unwrap_or_default();
                return Err(format!("dockerd did not start: {err}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Makes docker.io clients of this daemon (the client of its daemon's version; a newer
    /// one may come first on PATH).
    pub fn client(&self) -> impl Fn() -> Command + Clone + 'static {
        let client = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let host = format!("unix://{}", self.dir.join("docker.sock").display());
        move || {
            let mut c = Command::new(client);
            c.arg("-H").arg(&host);
            c
        }
    }

    pub fn docker(&self, args: &[&str]) -> Result<Output, String> {
        self.client()()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("docker {args:?}: {e}"))
    }

    /// Runs `f` on a thread inside the daemon's namespace (where its bridge, containers
    /// and docker-proxy are).
    pub fn inside<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        run_in(&self.netns, f)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Ok(o) = self.docker(&["ps", "-aq"]) {
            for id in String::from_utf8_lossy(&o.stdout).lines() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        for child in [self.daemon.take(), self.containerd.take()]
            .into_iter()
            .flatten()
        {
            // nsenter execs the daemon: the child's pid is the daemon's.
            let mut child = child;
            // SAFETY: kill has no memory preconditions; the pid is our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        unmount_below(&self.dir);
        if self.own_netns {
            let _ = ip(&["netns", "del", &self.netns]);
        }
        // The cgroup parent (named as the namespace) and whatever dockerd left below it.
        super::common::remove_cgroup_tree(&self.netns);
        for p in &self.created {
            let path = Path::new(p);
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
        }
    }
}
