//! Temporary directories that clean up after themselves without ever crossing into another
//! filesystem: a container that leaks a mount under its bundle must not make cleanup walk into
//! /sys or the host (see MACHINE.md, "Test hazards seen").

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this bench process, for directories and container IDs.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A directory under the system temp dir, unmounted and removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir, String> {
        let path = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        for m in mounts_below(&self.path) {
            if let Ok(c) = CString::new(m.as_os_str().as_encoded_bytes()) {
                // SAFETY: a valid NUL-terminated path; a lazy unmount cannot fail halfway.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if let Ok(md) = std::fs::symlink_metadata(&self.path) {
            remove_same_fs(&self.path, md.dev());
        }
    }
}

/// Mount points at or below `dir`, deepest first, from this process's mountinfo.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

/// `rm -r --one-file-system`: entries on another device are left alone.
fn remove_same_fs(path: &Path, dev: u64) {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return;
    };
    if md.dev() != dev {
        return;
    }
    if md.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                remove_same_fs(&e.path(), dev);
            }
        }
        let _ = std::fs::remove_dir(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}
