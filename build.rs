//! Records the git commit hull is built from for `hull --version`, whose `commit:` line
//! callers and runc's tests expect ("unknown" outside a git checkout), and sets up how the
//! hull binary links: statically (through `.cargo/rustc-wrapper`) and hot functions first.
use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HULL_COMMIT={commit}");
    // Only paths that exist: a missing one would rerun this script on every build.
    for p in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    link_statically();
    link_hot_text_together();
}

/// `.cargo/rustc-wrapper` gives the hull binary alone `crt-static` (cargo has no per-binary
/// target feature): a changed wrapper or config must relink it, and a `RUSTC_WRAPPER` from the
/// environment (sccache, say) takes its place, which the build says.
fn link_statically() {
    for p in [".cargo/rustc-wrapper", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-env-changed=RUSTC_WRAPPER");
    let wrapper = env::var("RUSTC_WRAPPER").unwrap_or_default();
    if !wrapper.is_empty() && !wrapper.ends_with(".cargo/rustc-wrapper") {
        println!(
            "cargo:warning=RUSTC_WRAPPER={wrapper} replaces .cargo/rustc-wrapper: this hull \
             links dynamically and starts about 0.4 ms slower"
        );
    }
}

/// Each fault on hull's text maps the whole 64 KiB block around it, so a start that touches
/// 1,100 functions scattered over 2.4 MB of text made most of the binary resident. lld's
/// symbol ordering file puts the functions the common commands run (`hot-text.order`, listed
/// in the order they first run; `benches` regenerates it) at the start of `.text`. Names it
/// does not find, after a dependency or toolchain change re-hashes them, only cost the gain.
fn link_hot_text_together() {
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("src/hot-text.order");
    println!("cargo:rerun-if-changed={}", order.display());
    // Only where rustc links with lld by default; GNU ld has no such option.
    if env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu") {
        println!(
            "cargo:rustc-link-arg-bin=hull=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=hull=-Wl,--no-warn-symbol-ordering");
    }
}
