//! What the wharf benches share: the release hull they drive and the busybox image they
//! import.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common;

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

/// The median of the samples (sorted in place).
pub fn median(v: &mut [std::time::Duration]) -> std::time::Duration {
    v.sort();
    v[v.len() / 2]
}
