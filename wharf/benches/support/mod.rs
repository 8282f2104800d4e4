//! What the wharf benches share: the release hull they drive, the busybox image they
//! import, the check that they can run, their settings from the environment and podman's
//! configuration.
// Each bench uses a part of what they share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common;

#[path = "../../../benches/src/figure.rs"]
mod figure;

/// The workspace's release hull, built first if missing (`WHARF_BENCH_HULL=PATH` picks
/// another).
pub fn hull() -> PathBuf {
    if let Some(p) = std::env::var_os("WHARF_BENCH_HULL") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = root.join("target/release/hull");
    if !p.is_file() {
        eprintln!("building the release hull (cargo build --release -p hull)");
        let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "hull"])
            .current_dir(&root)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cargo build --release -p hull failed");
    }
    p
}

/// A busybox root filesystem tarball with the given applets, from Debian's busybox-static.
pub fn rootfs_tar(out: &Path, applets: &[&str]) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for d in ["bin/", "etc/", "tmp/"] {
        let mut h = common::tar_header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, d, std::io::empty()).unwrap();
    }
    b.append_path_with_name(common::busybox(), "bin/busybox")
        .unwrap();
    for applet in applets {
        let mut h = common::tar_header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    b.into_inner().unwrap();
}

/// `wharf import`s the rootfs tarball `tar` into `data_root` as `image`, with `sh` as its
/// command.
pub fn wharf_import(wharf: &Path, data_root: &Path, tar: &Path, image: &str) {
    let out = Command::new(wharf)
        .arg("--data-root")
        .arg(data_root)
        .args(["import", "-c", "CMD [\"sh\"]"])
        .arg(tar)
        .arg(image)
        .output()
        .expect("run wharf import");
    assert!(
        out.status.success(),
        "wharf import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A busybox tarball with `applets` in `dir`, imported as `busybox` into the data root
/// `dir/wharf`: (tarball, data root).
pub fn busybox_store(wharf: &Path, dir: &Path, applets: &[&str]) -> (PathBuf, PathBuf) {
    let (tar, data_root) = (dir.join("busybox.tar"), dir.join("wharf"));
    rootfs_tar(&tar, applets);
    wharf_import(wharf, &data_root, &tar, "busybox");
    (tar, data_root)
}

/// The median of the samples (sorted in place).
pub fn median(v: &mut [std::time::Duration]) -> std::time::Duration {
    v.sort();
    v[v.len() / 2]
}

/// Whether the bench can run: as root, with every tool of `tools` answering `--version`;
/// prints why not.
pub fn ready(bench: &str, tools: &[&str]) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: the {bench} benchmark needs root");
        return false;
    }
    for tool in tools {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("SKIPPED: {tool} not found (.ci/setup installs it)");
            return false;
        }
    }
    true
}

/// A number from the environment (`WHARF_BENCH_RUNS`...), or `default`.
pub fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// podman's containers.conf for the benches, in `dir`: no CAP_SYS_RESOURCE here, so
/// podman's default ulimits cannot be raised and are set to what the machine allows.
pub fn podman_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n",
    )
    .expect("write containers.conf");
    conf
}

/// One of issue 19's figures, for `hull-benches --all`'s table: appended to the file
/// `BENCH_FIGURES` names (nothing when it is unset). `target` is the largest ratio of `value`
/// to `anchor_value` that meets the issue.
pub fn figure(name: &str, value: (f64, &str), anchor: (&str, f64), target: f64) {
    if let Some(path) = std::env::var_os("BENCH_FIGURES") {
        figure::append(Path::new(&path), name, value, anchor, target).expect("BENCH_FIGURES");
    }
}
