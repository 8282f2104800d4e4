//! A container's network namespace as a file: a fresh namespace bound onto
//! `<data-root>/netns/<container id>` before the runtime's `create` (the bundle joins it by
//! path), entered only long enough to open a socket inside it, and removed by unmounting.
//! A path whose mount a reboot or a lost mount namespace took away is just a file, and
//! removing it is still right.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Where the namespace of container `id` is kept.
pub fn path(root: &Path, id: &str) -> PathBuf {
    root.join("netns").join(id)
}

/// Makes a new network namespace and binds it at `at`. The calling thread returns to its
/// own namespace before this returns, also on failure.
pub fn create(at: &Path) -> std::io::Result<()> {
    if let Some(dir) = at.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(at)?;
    let made = in_new_namespace(|| {
        mount(
            Some("/proc/thread-self/ns/net"),
            at,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    });
    if made.is_err() {
        let _ = std::fs::remove_file(at);
    }
    made
}

fn in_new_namespace(f: impl FnOnce() -> nix::Result<()>) -> std::io::Result<()> {
    let own = File::open("/proc/thread-self/ns/net")?;
    unshare(CloneFlags::CLONE_NEWNET)?;
    let done = f();
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET)?;
    Ok(done?)
}

/// Runs `f` inside the namespace at `at` (to open sockets that stay bound to it) and
/// comes back to the caller's namespace.
pub fn enter<T>(at: &Path, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let own = File::open("/proc/thread-self/ns/net")?;
    let target = File::open(at)?;
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET)?;
    let out = f();
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET)?;
    out
}

/// Whether `at` holds a namespace (rather than the empty file left when its mount is gone).
pub fn is_namespace(at: &Path) -> bool {
    nix::sys::statfs::statfs(at).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Unmounts and deletes the namespace file; a missing one is already removed. The
/// namespace itself (with the container's ends of its veths) goes when its last user does.
pub fn remove(at: &Path) -> std::io::Result<()> {
    match umount2(at, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(at) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
