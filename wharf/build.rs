//! Builds `init/main.rs`, the init wharf bind-mounts into `run --init` containers, as a
//! static executable: containers rarely have wharf's shared libraries, so the init must
//! need none. It is a single file with no dependencies, compiled with the same rustc for
//! the same target and embedded in the wharf binary (see `src/init.rs`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init/main.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("wharf-init");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "wharf_init",
            "--target",
        ])
        .arg(&target)
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "strip=symbols",
            "-o",
        ])
        .arg(&out)
        .arg("init/main.rs")
        .status()
        .expect("running rustc for the container init");
    assert!(status.success(), "building init/main.rs failed: {status}");
}
