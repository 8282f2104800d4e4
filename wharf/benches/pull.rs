//! Pull + unpack time of wharf against `skopeo copy` + `umoci unpack` for the same
//! 3-layer image served by a local docker-registry. Prints medians and the ratio.
//! Run: `cargo bench -p wharf --bench pull` (or build with `--benches` and run the binary).
//! Each run uses a fresh directory and nothing is deleted until the end, because on this
//! machine's ext4 creating files right after deleting many is much slower (so do not run
//! it right after a test suite that just removed many files, or wait a minute first).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{have, Registry};

const RUNS: usize = 5;

fn layer(
    out: &Path,
    build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>),
) -> (String, String, u64) {
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
    (format!("sha256:{digest}"), diff_id, gz.len() as u64)
}

/// Writes an OCI layout with busybox, /usr/share/doc and /usr/share/perl5 (or whatever
/// exists of them) as three gzip layers.
fn build_layout(dir: &Path) {
    use sha2::Digest as _;
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let mut layers = vec![layer(dir, |b| {
        b.append_path_with_name("/bin/busybox", "bin/busybox")
            .unwrap();
    })];
    for src in ["/usr/share/doc", "/usr/share/perl5"] {
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
}

fn run(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("spawn");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // The wharf binary of the same profile as this bench.
    let wharf = Path::new(env!("CARGO_BIN_EXE_wharf"));
    if !have("/usr/bin/skopeo", "skopeo")
        || !have("/usr/bin/umoci", "umoci")
        || !have("/bin/busybox", "busybox-static")
    {
        return;
    }
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    build_layout(&work.path().join("layout"));
    let (blobs, bytes) = std::fs::read_dir(work.path().join("layout/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .fold((0, 0), |(n, b), len| (n + 1, b + len));
    println!(
        "image: {} layers, {:.1} MB of blobs",
        blobs - 2,
        bytes as f64 / 1e6
    );
    let name = format!("{}/bench:1", reg.host());
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:bench", work.path().join("layout").display()),
        &format!("docker://{name}"),
    ]));
    let (mut w, mut s) = (Vec::new(), Vec::new());
    // Run 0 warms the page cache for the registry's blobs and both tools; it is not counted.
    for i in 0..=RUNS {
        let root = work.path().join(format!("wharf-{i}"));
        w.push(run(Command::new(wharf)
            .arg("--data-root")
            .arg(&root)
            .args(["pull", "-q", &name])));
        let oci = work.path().join(format!("oci-{i}"));
        let bundle = work.path().join(format!("bundle-{i}"));
        s.push(
            run(Command::new("skopeo").args([
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
    w.remove(0);
    s.remove(0);
    let (w, s) = (median(w), median(s));
    println!(
        "wharf pull:                 median {:.3} s over {RUNS} runs ({})",
        w.as_secs_f64(),
        wharf.display()
    );
    println!(
        "skopeo copy + umoci unpack: median {:.3} s over {RUNS} runs",
        s.as_secs_f64()
    );
    println!(
        "ratio wharf / (skopeo+umoci): {:.2}",
        w.as_secs_f64() / s.as_secs_f64()
    );
}
