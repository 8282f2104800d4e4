//! Switching the root: pivot_root without a temporary directory (the old root is stacked under
//! the new one and detached), or MS_MOVE + chroot for `--no-pivot`.

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, close, fchdir};

use super::RootfsError;

pub fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).map_err(|e| RootfsError::sys("opening", "/", e))?;
    let new =
        open(rootfs, flags, Mode::empty()).map_err(|e| RootfsError::sys("opening", rootfs, e))?;
    let result = (|| {
        fchdir(new).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
        nix::unistd::pivot_root(".", ".")
            .map_err(|e| RootfsError::sys("pivot_root to", rootfs, e))?;
        fchdir(old).map_err(|e| RootfsError::sys("chdir", "old root", e))?;
        // The old root must not propagate the detach to the host.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys("making the old root a slave", "/", e))?;
        umount2(".", MntFlags::MNT_DETACH)
            .map_err(|e| RootfsError::sys("detaching the old root", "/", e))?;
        chdir("/").map_err(|e| RootfsError::sys("chdir", "/", e))
    })();
    let _ = close(old);
    let _ = close(new);
    result
}

/// `--no-pivot`: the host's mounts stay below the chroot in the container's mount namespace.
/// Whole procfs and sysfs mounts among them would let the container mount a bare procfs or
/// sysfs (the kernel allows it where a full one is visible in the namespace): they are
/// detached first, or covered where they cannot be, as runc does.
pub fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let infos = procfs::process::Process::myself()
        .and_then(|p| p.mountinfo())
        .map_err(|e| RootfsError::Refused(format!("reading /proc/self/mountinfo: {e}")))?;
    let full: Vec<std::path::PathBuf> = infos
        .into_iter()
        .filter(|m| {
            m.root == "/"
                && matches!(m.fs_type.as_str(), "proc" | "sysfs")
                && !m.mount_point.starts_with(rootfs)
        })
        .map(|m| m.mount_point)
        .collect();
    for p in &full {
        // The detach must not reach the host. EINVAL: no longer a mount point, gone with an
        // earlier one.
        match mount(
            None::<&str>,
            p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(RootfsError::sys("making a slave", p, e)),
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(|e| RootfsError::sys("covering", p, e))?,
            Err(e) => return Err(RootfsError::sys("detaching", p, e)),
        }
    }
    chdir(rootfs).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("moving the rootfs to /", rootfs, e))?;
    chroot(".").map_err(|e| RootfsError::sys("chroot", rootfs, e))?;
    chdir("/").map_err(|e| RootfsError::sys("chdir", "/", e))
}

/// Without a mount namespace of its own the container's root is a chroot: there is nothing of
/// its own to pivot to.
pub fn chroot_into(rootfs: &Path) -> Result<(), RootfsError> {
    chdir(rootfs).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
    chroot(".").map_err(|e| RootfsError::sys("chroot", rootfs, e))?;
    chdir("/").map_err(|e| RootfsError::sys("chdir", "/", e))
}

/// pivot_root refuses a new root whose parent mount is shared: make that parent private.
pub fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let infos = procfs::process::Process::myself()
        .and_then(|p| p.mountinfo())
        .map_err(|e| RootfsError::Refused(format!("reading /proc/self/mountinfo: {e}")))?;
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let mount_point = infos
        .iter()
        .filter(|m| parent.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .map(|m| m.mount_point.clone())
        .unwrap_or_else(|| "/".into());
    mount(
        None::<&str>,
        &mount_point,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("making the rootfs's parent mount private", &mount_point, e))
}
