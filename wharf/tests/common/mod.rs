//! Shared helpers for wharf's black-box tests: a temporary data root, the built binary,
//! and a busybox root filesystem tarball made from Debian's busybox-static.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub struct Env {
    pub dir: tempfile::TempDir,
}

/// The Envs alive in this test process. The runtimes remove each container's own cgroup, not
/// the /wharf parent they made for it in every hierarchy: the last Env to go removes that.
/// Earlier, it could vanish under another test's runtime between its two mkdirs.
static LIVE_ENVS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

fn live_envs() -> std::sync::MutexGuard<'static, usize> {
    LIVE_ENVS.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Env {
    /// Whatever a test did, the data root's bridges and nftables table go with it, and with
    /// the last Env the /wharf cgroup parent.
    fn drop(&mut self) {
        remove_network_state(&self.root());
        let mut live = live_envs();
        *live -= 1;
        if *live == 0 {
            remove_empty_cgroup_parents(&["wharf"]);
        }
    }
}

impl Env {
    pub fn new() -> Self {
        // Counted once it exists, so that its Drop, which uncounts it, is sure to run.
        let dir = tempfile::tempdir().expect("tempdir");
        *live_envs() += 1;
        Self { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn wharf(&self) -> Command {
        let mut c = Command::cargo_bin("wharf").expect("wharf binary");
        c.arg("--data-root").arg(self.root());
        c.env_remove("WHARF_ROOT");
        c.env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.wharf().args(args).output().expect("run wharf")
    }

    /// Runs wharf, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wharf {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// Runs wharf, asserts failure with exit status 1 and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "wharf {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf8")
    }

    /// A gzip'd busybox root filesystem with `marker` written to /etc/marker.
    pub fn busybox_tarball(&self, marker: &str) -> PathBuf {
        let out = self.path(&format!("rootfs-{marker}.tar.gz"));
        let f = std::fs::File::create(&out).expect("create tarball");
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for d in ["bin/", "etc/"] {
            let mut h = tar_header(tar::EntryType::Directory, 0o755, 0);
            b.append_data(&mut h, d, std::io::empty()).expect("dir");
        }
        b.append_path_with_name(busybox(), "bin/busybox")
            .expect("busybox");
        let mut h = tar_header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, "bin/sh", "busybox").expect("symlink");
        let mut h = tar_header(tar::EntryType::Regular, 0o644, marker.len() as u64);
        b.append_data(&mut h, "etc/marker", marker.as_bytes())
            .expect("marker");
        b.into_inner().expect("tar").finish().expect("gzip");
        out
    }

    /// Imports a busybox image as `name` and returns its id.
    pub fn import(&self, marker: &str, name: &str) -> String {
        let t = self.busybox_tarball(marker);
        self.ok(&["import", t.to_str().unwrap(), name])
            .trim()
            .to_string()
    }

    /// A listing of every file under the data root with its size, to compare store states.
    pub fn snapshot(&self) -> Vec<(PathBuf, u64)> {
        let mut v: Vec<_> = walkdir::WalkDir::new(self.root())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter(|e| {
                let n = e.file_name().to_string_lossy();
                // SQLite's WAL and shared-memory files change on every read.
                !n.starts_with("wharf.db")
            })
            .map(|e| {
                (
                    e.path().to_path_buf(),
                    e.metadata().map(|m| m.len()).unwrap_or(0),
                )
            })
            .collect();
        v.sort();
        v
    }
}

pub fn busybox() -> &'static Path {
    Path::new("/bin/busybox")
}

/// Returns false (after printing why) when a test's external requirement is missing.
pub fn have(path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        true
    } else {
        integration::skip(&format!("{path} not found (apt-get install {package})"));
        false
    }
}

/// Runs an external tool and returns stdout, panicking with its stderr on failure.
pub fn tool(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().expect("spawn tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A header for a root-owned tar entry with a fixed time, so fixture images are the same
/// bytes on every run.
pub fn tar_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Removes the cgroup parents `parents` (relative, deepest first) in every hierarchy where
/// they are empty: the runtimes remove each container's own cgroup, not the parent wharf or
/// podman put it under. rmdir refuses one that is still in use.
pub fn remove_empty_cgroup_parents(parents: &[&str]) {
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            for parent in parents {
                let _ = std::fs::remove_dir(h.path().join(parent));
            }
        }
    }
}

/// Removes the cgroup `name` below every hierarchy's root with everything below it,
/// deepest first (an engine's parent cgroup and the ones its containers left).
pub fn remove_cgroup_tree(name: &str) {
    integration::remove_empty_cgroups(name);
}

/// podman with all its state inside `dir`, so tests never touch the host's storage.
pub fn podman(dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("podman");
    c.arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--tmpdir")
        .arg(dir.join("tmp"))
        .args([
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            "--storage-driver=vfs",
        ]);
    c
}

/// A Debian `docker-registry` on a free 127.0.0.1 port with its own config and storage,
/// killed when dropped.
pub struct Registry {
    child: std::process::Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry, with htpasswd basic auth when `user` is given; None (after
    /// printing why) when docker-registry is not installed.
    pub fn start(user: Option<(&str, &str)>) -> Option<Self> {
        if !have("/usr/bin/docker-registry", "docker-registry") {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        // The free port we found can be taken by another test before the registry binds it:
        // then the registry exits, and we try another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut config = format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            );
            if let Some((u, p)) = user {
                let hash = bcrypt::hash(p, 4).expect("bcrypt");
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{u}:{hash}\n")).expect("htpasswd");
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: wharf-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, config).expect("registry config");
            let mut child = std::process::Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&cfg)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn docker-registry");
            if answers(&mut child, port) {
                return Some(Self { child, port, dir });
            }
        }
        panic!("docker-registry exited at start five times");
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Path of a blob's data file in the registry's filesystem storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the registry we started answers on `port`; false if it exited first (another
/// test took the port).
fn answers(child: &mut std::process::Child, port: u16) -> bool {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if child.try_wait().expect("docker-registry status").is_some() {
            return false;
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                return true;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "docker-registry did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Removes what wharf's networking put on the host for the data root at `root`: the
/// bridge of every network it recorded, and its nftables table. Run by each guard after
/// its containers are gone (their namespaces and veths went with them), so that a test
/// leaves no link or rule behind even when it failed.
pub fn remove_network_state(root: &Path) {
    let Ok(db) = wharf::store::Db::open(&root.join("wharf.db")) else {
        return;
    };
    for n in db.networks().unwrap_or_default() {
        if let Some(bridge) = n.bridge {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &bridge])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let _ = std::process::Command::new("nft")
        .args(["delete", "table", "ip", &wharf::network::nft::table(root)])
        .stderr(std::process::Stdio::null())
        .status();
}
