//! `load` of an image archive into a scratch data root: its manifest.json or index.json,
//! the image configs and manifests they name, and the layers checked against the
//! diff_ids. Never panics, whatever the archive.

#![no_main]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wharf::context::{Access, Context};
use wharf::image::archive;

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let root = scratch().join("root");
    // Every archive's files land in the content store: start a fresh one now and then so
    // a long run does not fill the disk.
    if RUNS.fetch_add(1, Ordering::Relaxed) % 2000 == 0 {
        let _ = std::fs::remove_dir_all(&root);
    }
    let mut ctx = Context::open(&root, Access::Shared).expect("scratch data root");
    let _ = archive::load(&mut ctx, std::io::Cursor::new(data));
});
