//! `docker run --rm --network none IMAGE true` through three Engine API servers in one run,
//! interleaved: wharf's `system service` (driving hull and runc), dockerd 20.10 (on its own
//! containerd, runc), and `podman system service` (runc). The same docker CLI (Debian's
//! docker.io) is the client of all three; medians and ratios to dockerd are printed. Goal:
//! wharf's socket <= 0.5x dockerd.
//!
//! Run: `cargo bench -p wharf --bench api` (`WHARF_BENCH_RUNS=N`, default 20 samples per
//! row after one warm-up round). Needs root, docker.io, podman and runc.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "engines/dockerd.rs"]
mod dockerd;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/busybox:latest";

/// A server process ended by pid when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_socket(path: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{} never answered", path.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn ok(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn docker(host: &str) -> Command {
    let mut c = Command::new("/usr/bin/docker");
    c.arg("-H").arg(host);
    c
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: the API benchmark needs root");
        return;
    }
    for tool in ["/usr/bin/docker", "/usr/bin/podman", "/usr/sbin/runc"] {
        if !Path::new(tool).exists() {
            eprintln!("SKIPPED: {tool} not found (.ci/setup installs it)");
            return;
        }
    }
    if let Err(e) = bench() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn bench() -> Result<(), String> {
    let runs: usize = support::env_or("WHARF_BENCH_RUNS", 20);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tar = dir.path().join("busybox.tar");
    support::rootfs_tar(&tar, &["sh", "true"]);
    let hull = support::hull();
    let wharf = PathBuf::from(env!("CARGO_BIN_EXE_wharf"));

    let data_root = dir.path().join("wharf");
    support::wharf_import(&wharf, &data_root, &tar, IMAGE);
    let mut servers = Vec::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    for (label, rt) in [
        ("hull", hull.display().to_string()),
        ("runc", "runc".into()),
    ] {
        let sock = dir.path().join(format!("wharf-{label}.sock"));
        let child = Command::new(&wharf)
            .arg("--data-root")
            .arg(&data_root)
            .args(["--runtime", &rt, "system", "service", "--time", "0"])
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("wharf system service: {e}"))?;
        servers.push(Server(child));
        wait_for_socket(&sock)?;
        rows.push((
            format!("wharf API + {label}"),
            format!("unix://{}", sock.display()),
        ));
    }

    let pod_dir = dir.path().join("podman");
    let conf = support::podman_conf(dir.path());
    let podman = || {
        let mut c = common::podman(&pod_dir);
        c.env("CONTAINERS_CONF", &conf);
        c
    };
    let mut import = podman();
    import.arg("import").arg(&tar).arg(IMAGE);
    ok(import, "podman import")?;
    let pod_sock = dir.path().join("podman.sock");
    let child = podman()
        .args(["--runtime", "runc", "system", "service", "--time", "0"])
        .arg(format!("unix://{}", pod_sock.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("podman system service: {e}"))?;
    servers.push(Server(child));
    wait_for_socket(&pod_sock)?;
    rows.push((
        "podman service + runc".into(),
        format!("unix://{}", pod_sock.display()),
    ));

    let daemon = dockerd::Dockerd::start(&dir.path().join("docker"))?;
    let out = daemon.docker(&["import", tar.to_str().unwrap_or_default(), IMAGE])?;
    if !out.status.success() {
        return Err(format!(
            "docker import: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    rows.push((
        "dockerd + runc".into(),
        format!("unix://{}", dir.path().join("docker/docker.sock").display()),
    ));

    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    for round in 0..=runs {
        for (i, (name, host)) in rows.iter().enumerate() {
            let mut c = docker(host);
            c.args(["run", "--rm", "--network", "none", IMAGE, "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let start = Instant::now();
            let out = c.output().map_err(|e| format!("{name}: {e}"))?;
            let took = start.elapsed();
            if !out.status.success() {
                return Err(format!(
                    "{name} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            if round > 0 {
                samples[i].push(took);
            }
        }
    }
    let medians: Vec<Duration> = samples.iter_mut().map(|s| support::median(s)).collect();
    let base = medians[rows.len() - 1];
    println!(
        "docker run --rm --network none busybox true through each API socket, {runs} samples each, interleaved; median and ratio to dockerd"
    );
    println!("{:<24} {:>10} {:>8}", "", "median", "ratio");
    for ((name, _), m) in rows.iter().zip(&medians) {
        println!(
            "{:<24} {:>8.1}ms {:>7.2}x",
            name,
            m.as_secs_f64() * 1000.0,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
    drop(daemon);
    drop(servers);
    let mut reset = podman();
    reset.args(["system", "reset", "--force"]);
    let _ = reset.stdout(Stdio::null()).stderr(Stdio::null()).status();
    // rmdir only takes empty cgroups: what still holds a process stays.
    common::remove_cgroup_tree("libpod_parent");
    common::remove_empty_cgroup_parents(&["wharf"]);
    common::remove_network_state(&data_root);
    Ok(())
}
