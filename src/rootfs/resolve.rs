//! Opening a path inside the rootfs: openat2 with RESOLVE_IN_ROOT and no magic links, so that
//! no symlink or `..` in the rootfs leads outside it, as pathrs resolves. The lookups here are
//! hull's own because many of them are expected to fail (a mount point that is not there
//! yet): pathrs describes its root through procfs in each error, nine system calls more per
//! missing path. Kernels without openat2 get pathrs' own resolver.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use pathrs::{Handle, Root};

use super::RootfsError;

/// An O_PATH handle on `rel` inside `root`; with `nofollow`, on a final symlink itself.
pub fn lookup(root: &Root, rel: &Path, nofollow: bool) -> Result<Handle, RootfsError> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if nofollow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // A rename or mount anywhere on the host during the lookup makes openat2 answer EAGAIN;
    // pathrs tries again as often.
    let mut tries = 0;
    let result = loop {
        match openat2(root.as_fd().as_raw_fd(), rel, how) {
            Err(Errno::EAGAIN) if tries < 128 => tries += 1,
            r => break r,
        }
    };
    match result {
        // SAFETY: openat2 returned a new fd that nothing else owns.
        Ok(fd) => Ok(Handle::from(unsafe { OwnedFd::from_raw_fd(fd) })),
        Err(Errno::ENOSYS) => if nofollow {
            root.resolve_nofollow(rel)
        } else {
            root.resolve(rel)
        }
        .map_err(|e| RootfsError::resolve(rel, e)),
        Err(e) => Err(RootfsError::Lookup {
            path: rel.to_path_buf(),
            source: e,
        }),
    }
}
