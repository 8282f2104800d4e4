//! Moving images as users time them: `pull` (download and unpack) of a 6-layer image of
//! about 370 MB (`build_layout`) from a local docker-registry, `save` of it to an archive and
//! `load` of that archive into an empty store, by wharf, docker 20.10 and podman 4.3; for
//! pull also `skopeo copy` + `umoci unpack` and the floor, one thread gunzipping every layer.
//! Prints medians and ratios to wharf.
//! Run: `cargo bench -p wharf --bench pull` (`WHARF_BENCH_RUNS`, default 3, plus a warm-up).
//!
//! Every sample starts from an empty store (a fresh wharf data root, podman root or dockerd
//! data root: dockerd is started afresh for each) and nothing is deleted until the end,
//! because on this machine's ext4 creating files right after deleting many is much slower
//! (so do not run it right after a test suite that just removed many files). The registry
//! and every client of it run in a network namespace of the bench's own, where dockerd runs
//! too, so nothing listens on the host's loopback.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "engines/dockerd.rs"]
mod dockerd;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{have, Registry};
use dockerd::Dockerd;

fn layer(
    out: &Path,
    build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>),
) -> (String, String, u64, u64) {
    use sha2::Digest as _;
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    b.follow_symlinks(false);
    build(&mut b);
    let gz = b.into_inner().unwrap().finish().unwrap();
    let mut d = flate2::read::GzDecoder::new(&gz[..]);
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut d, &mut raw).unwrap();
    let digest = hex::encode(sha2::Sha256::digest(&gz));
    let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)));
    std::fs::write(out.join("blobs/sha256").join(&digest), &gz).unwrap();
    (
        format!("sha256:{digest}"),
        diff_id,
        gz.len() as u64,
        raw.len() as u64,
    )
}

/// Writes an OCI layout with busybox and, one layer each, /usr/share/doc, a compiler's
/// library directory, /usr/libexec, Python's modules and glibc's locale sources (whatever
/// exists of them): about 370 MB of tar on this machine kind, the size issue 19 names.
/// Returns the bytes of its layers' tar streams.
fn build_layout(dir: &Path) -> u64 {
    use sha2::Digest as _;
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let mut layers = vec![layer(dir, |b| {
        b.append_path_with_name("/bin/busybox", "bin/busybox")
            .unwrap();
    })];
    for src in [
        "/usr/share/doc",
        "/usr/lib/gcc",
        "/usr/libexec",
        "/usr/lib/python3",
        "/usr/share/i18n",
    ] {
        if Path::new(src).is_dir() {
            layers.push(layer(dir, |b| {
                b.append_dir_all(src.trim_start_matches('/'), src).unwrap();
            }));
        }
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/busybox", "sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.1.clone()).collect::<Vec<_>>()},
    }))
    .unwrap();
    let config_digest = hex::encode(sha2::Sha256::digest(&config));
    std::fs::write(dir.join("blobs/sha256").join(&config_digest), &config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_digest}"), "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l.0, "size": l.2,
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest_digest = hex::encode(sha2::Sha256::digest(&manifest));
    std::fs::write(dir.join("blobs/sha256").join(&manifest_digest), &manifest).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{manifest_digest}"), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "bench"},
    }]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    layers.iter().map(|l| l.3).sum()
}

fn run(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.stdout(Stdio::null()).output().expect("spawn");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The bench's network namespace, deleted on drop (after the registry in it has gone).
struct Netns(String);

impl Netns {
    fn add() -> Netns {
        let name = format!("wharfpull{}", std::process::id());
        dockerd::ip(&["netns", "add", &name]).expect("ip netns add");
        let ns = Netns(name);
        dockerd::ip(&["-n", &ns.0, "link", "set", "lo", "up"]).expect("lo up");
        ns
    }

    /// `program` run inside the namespace.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        dockerd::command_in(&self.0, program)
    }

    /// A registry listening on the namespace's loopback.
    fn registry(&self) -> Option<Registry> {
        dockerd::run_in(&self.0, || Registry::start(None)).expect("registry in the namespace")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = dockerd::ip(&["netns", "del", &self.0]);
    }
}

/// The samples of one tool for one operation.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn median(&mut self) -> Option<Duration> {
        (!self.0.is_empty()).then(|| support::median(&mut self.0))
    }
}

#[derive(Default)]
struct Row {
    wharf: Samples,
    docker: Samples,
    podman: Samples,
    skopeo_umoci: Samples,
    floor: Samples,
}

fn main() {
    // The wharf binary of the same profile as this bench.
    let wharf = PathBuf::from(env!("CARGO_BIN_EXE_wharf"));
    if !support::ready("pull", &["podman", "skopeo", "umoci", "nsenter"])
        || !have("/bin/busybox", "busybox-static")
    {
        return;
    }
    let runs: usize = support::env_or("WHARF_BENCH_RUNS", 3);
    let docker = dockerd::installed();
    if let Err(why) = &docker {
        eprintln!("SKIPPED: the docker column: {why}");
    }
    let ns = Netns::add();
    let Some(reg) = ns.registry() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = |p: &str| work.path().join(p);
    let unpacked = build_layout(&w("layout"));
    let layers: Vec<PathBuf> = std::fs::read_dir(w("layout/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.metadata().unwrap().len() > 64 * 1024)
        .collect();
    let bytes: u64 = layers.iter().map(|p| p.metadata().unwrap().len()).sum();
    println!(
        "image: {} layers, {:.1} MB compressed, {:.1} MB of tar",
        layers.len(),
        bytes as f64 / 1e6,
        unpacked as f64 / 1e6
    );
    let name = format!("{}/bench:1", reg.host());
    run(ns.command("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:bench", w("layout").display()),
        &format!("docker://{name}"),
    ]));
    let conf = support::podman_conf(work.path());
    let podman = |dir: &Path, inside: bool| {
        let mut c = if inside {
            ns.command("podman")
        } else {
            Command::new("podman")
        };
        c.env("CONTAINERS_CONF", &conf)
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .arg("--tmpdir")
            .arg(dir.join("tmp"))
            .args(["--cgroup-manager=cgroupfs", "--events-backend=file"]);
        c
    };
    let (mut pull, mut save, mut load) = (Row::default(), Row::default(), Row::default());
    // Run 0 warms the page cache for the registry's blobs and every tool; it is not counted.
    for i in 0..=runs {
        let keep = |row: &mut Samples, d: Duration| {
            if i > 0 {
                row.0.push(d)
            }
        };
        // The floor: decompressing every layer, one after the other, on one thread.
        let start = Instant::now();
        for l in &layers {
            run(Command::new("gzip").arg("-dc").arg(l));
        }
        keep(&mut pull.floor, start.elapsed());

        let (root, archive) = (w(&format!("wharf-{i}")), w(&format!("wharf-{i}.tar")));
        keep(
            &mut pull.wharf,
            run(ns
                .command(&wharf)
                .arg("--data-root")
                .arg(&root)
                .args(["pull", "-q", &name])),
        );
        keep(
            &mut save.wharf,
            run(Command::new(&wharf)
                .arg("--data-root")
                .arg(&root)
                .args(["save", "-o"])
                .arg(&archive)
                .arg(&name)),
        );
        keep(
            &mut load.wharf,
            run(Command::new(&wharf)
                .arg("--data-root")
                .arg(w(&format!("wharf-load-{i}")))
                .args(["load", "-q", "-i"])
                .arg(&archive)),
        );

        let (dir, archive) = (w(&format!("podman-{i}")), w(&format!("podman-{i}.tar")));
        keep(
            &mut pull.podman,
            run(podman(&dir, true).args(["pull", "-q", "--tls-verify=false", &name])),
        );
        keep(
            &mut save.podman,
            run(podman(&dir, false)
                .args(["save", "-q", "-o"])
                .arg(&archive)
                .arg(&name)),
        );
        keep(
            &mut load.podman,
            run(podman(&w(&format!("podman-load-{i}")), false)
                .args(["load", "-q", "-i"])
                .arg(&archive)),
        );

        if docker.is_ok() {
            let archive = w(&format!("docker-{i}.tar"));
            let timed = |d: &Dockerd, args: &[&str]| {
                let start = Instant::now();
                let out = d.docker(args).expect("docker");
                assert!(
                    out.status.success(),
                    "docker {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                start.elapsed()
            };
            let d = Dockerd::start_in_netns(&w(&format!("docker-{i}")), &ns.0).expect("dockerd");
            keep(&mut pull.docker, timed(&d, &["pull", "-q", &name]));
            let out = archive.to_str().unwrap();
            keep(&mut save.docker, timed(&d, &["save", "-o", out, &name]));
            drop(d);
            let d =
                Dockerd::start_in_netns(&w(&format!("docker-load-{i}")), &ns.0).expect("dockerd");
            keep(&mut load.docker, timed(&d, &["load", "-q", "-i", out]));
        }

        let (oci, bundle) = (w(&format!("oci-{i}")), w(&format!("bundle-{i}")));
        keep(
            &mut pull.skopeo_umoci,
            run(ns.command("skopeo").args([
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{name}"),
                &format!("oci:{}:bench", oci.display()),
            ])) + run(Command::new("umoci").args([
                "unpack",
                "--image",
                &format!("{}:bench", oci.display()),
                bundle.to_str().unwrap(),
            ])),
        );
        print!(".");
        std::io::stdout().flush().unwrap();
    }
    println!();
    for entry in std::fs::read_dir(work.path()).unwrap().flatten() {
        let p = entry.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("podman-"))
            && p.is_dir()
        {
            let _ = podman(&p, false)
                .args(["system", "reset", "--force"])
                .stderr(Stdio::null())
                .status();
        }
    }
    dockerd::unmount_below(work.path());
    drop(reg);
    report(
        runs,
        unpacked as f64 / 1e6,
        &mut [("pull", pull), ("save", save), ("load", load)],
    );
}

/// One table: medians in seconds and wharf's ratio to docker, to podman and to the best of
/// the two.
fn report(runs: usize, image_mb: f64, rows: &mut [(&str, Row)]) {
    let secs =
        |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.2}", d.as_secs_f64()));
    let ratio = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a.as_secs_f64() / b.as_secs_f64()),
        _ => "-".to_string(),
    };
    println!("medians over {runs} runs, seconds");
    println!("| operation | wharf | docker | podman | skopeo+umoci | gunzip floor | wharf/docker | wharf/podman | wharf/best |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, row) in rows.iter_mut() {
        let (w, d, p) = (row.wharf.median(), row.docker.median(), row.podman.median());
        let best = [d, p].into_iter().flatten().min();
        // Issue 19 measures pull against docker, save and load against the better engine.
        let anchor = match *name {
            "pull" => d.map(|d| ("docker", d)),
            _ => best.map(|b| (if Some(b) == d { "docker" } else { "podman" }, b)),
        };
        if let (Some(w), Some((anchor, a))) = (w, anchor) {
            support::figure(
                &format!("wharf {name}, {image_mb:.0} MB image"),
                (w.as_secs_f64(), "s"),
                (anchor, a.as_secs_f64()),
                0.5,
            );
        }
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            secs(w),
            secs(d),
            secs(p),
            secs(row.skopeo_umoci.median()),
            secs(row.floor.median()),
            ratio(w, d),
            ratio(w, p),
            ratio(w, best),
        );
    }
}
