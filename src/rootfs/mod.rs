//! The container's root filesystem, in the order runtime-spec gives: propagation, the rootfs
//! bind, every mount of `mounts`, devices and /dev links (before pivot_root); then pivot_root and
//! the masked, read-only and root-read-only changes (after it). Every destination is resolved
//! inside the rootfs (pathrs, openat2 RESOLVE_IN_ROOT) and mounted through an O_PATH fd, so no
//! symlink in the rootfs can redirect a mount to the host (CVE-2021-30465, CVE-2024-45310).

mod copyup;
mod devices;
mod error;
mod mounts;
pub mod options;
mod paths;
mod pivot;
mod resolve;
pub mod sources;

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;

pub use devices::{device_paths, needs_dev_setup, reopen_dev_null, DEFAULT_DEVICE_NODES};
pub use error::RootfsError;
pub use mounts::{cgroupfs_ahead, make_destination};
pub use pivot::{chroot_into, move_root, pivot_root};

/// What the rootfs set-up needs to know beyond the spec.
pub struct Context<'a> {
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// The container runs in a user namespace: mknod is refused and mount flags are locked.
    pub in_userns: bool,
    /// The container has its own cgroup namespace: cgroupfs can be mounted fresh.
    pub new_cgroupns: bool,
    /// The container has no mount namespace of its own: its mounts are made in the host's,
    /// whose propagation is left alone, and the root is switched with chroot.
    pub host_mntns: bool,
    /// The container joined a mount namespace: its mounts are not a copy of hull's.
    pub joined_mntns: bool,
    /// The v1 cgroupfs hull's side made for init (`cgroups::HandOver`), which the cgroup
    /// mount attaches instead of making it.
    pub cgroupfs: &'a std::cell::RefCell<Option<crate::cgroups::CgroupFs>>,
    /// Asks hull's side for the source of `mounts[index]` (see `sources`).
    pub source: &'a dyn Fn(usize) -> Result<std::os::fd::OwnedFd, String>,
    /// Puts init into its cgroup if it is not there yet (`cgroups::Join::BySelf`): a cgroup
    /// mount shows init's own cgroup.
    pub join_cgroup: &'a dyn Fn() -> Result<(), String>,
}

/// `/proc/self/fd/N`: a path that mount(2) follows to exactly the inode behind the fd.
pub fn fd_path(fd: RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

/// `linux.rootfsPropagation`, when given.
fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>, RootfsError> {
    let linux = spec.linux().as_ref();
    match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => Ok(None),
        Some(p) => {
            let o = options::parse(&[p.to_string()]).map_err(|e| RootfsError::Config {
                field: "linux.rootfsPropagation".into(),
                message: e.to_string(),
            })?;
            if o.propagation.is_empty() {
                return Err(RootfsError::Config {
                    field: "linux.rootfsPropagation".into(),
                    message: format!("{p:?} is not a propagation mode"),
                });
            }
            Ok(Some(o.propagation))
        }
    }
}

/// Before pivot_root: propagation, the rootfs bind, mounts, devices. The host's mounts become
/// slaves unless `rootfsPropagation` says otherwise; the rootfs's parent mount is made private
/// first, so that the rootfs bind is not shared (pivot_root refuses a shared one, and a shared
/// one would propagate the container's mounts out).
pub fn prepare(spec: &Spec, ctx: &Context) -> Result<(), RootfsError> {
    // In the host's mount namespace nothing of the host's may change: runc makes the host's
    // `/` an rslave mount there; hull leaves it as it is. The rootfs still becomes a mount of
    // its own, so that one `umount -R` of it takes the container's mounts away.
    if !ctx.host_mntns {
        let propagation = root_propagation(spec)?.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
        mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
            .map_err(|e| RootfsError::sys("setting the propagation of /", "/", e))?;
        // A recursive slave or private change (the default) leaves no shared mount to look
        // for: the mountinfo read is only for the other modes.
        let none_shared =
            propagation.contains(MsFlags::MS_REC) && !propagation.contains(MsFlags::MS_SHARED);
        if !none_shared {
            pivot::make_parent_private(ctx.rootfs)?;
        }
    }
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("bind-mounting the rootfs onto itself", ctx.rootfs, e))?;

    let root = pathrs::Root::open(ctx.rootfs).map_err(|e| RootfsError::resolve(ctx.rootfs, e))?;
    mounts::mount_all(&root, spec, ctx)?;
    if devices::needs_dev_setup(spec) {
        devices::create_all(&root, spec, ctx)?;
    }
    mounts::create_cwd(&root, spec)?;
    Ok(())
}

/// After pivot_root: `rootfsPropagation` on the new root (private it already is), which is
/// where runc applies it too, since on the old root it would reach the host's mounts.
pub fn apply_root_propagation(spec: &Spec) -> Result<(), RootfsError> {
    match root_propagation(spec)? {
        Some(p) if !p.contains(MsFlags::MS_PRIVATE) => {
            mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
                .map_err(|e| RootfsError::sys("setting rootfsPropagation on", "/", e))
        }
        _ => Ok(()),
    }
}

/// After pivot_root and the console: masked and read-only paths, a read-only /dev, then the
/// read-only root.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    let ro_dev = spec
        .mounts()
        .iter()
        .flatten()
        .rfind(|m| m.destination() == Path::new("/dev"))
        .and_then(|m| options::parse(m.options().as_deref().unwrap_or_default()).ok())
        .is_some_and(|o| o.flags.contains(MsFlags::MS_RDONLY));
    if ro_dev {
        let dev =
            std::fs::File::open("/dev").map_err(|e| RootfsError::io("opening /dev", "/dev", e))?;
        crate::syscall::mount_setattr(dev.as_raw_fd(), false, options::ATTR_RDONLY, 0)
            .map_err(|e| RootfsError::sys("making read-only", "/dev", e))?;
    }
    if let Some(linux) = spec.linux() {
        let mut masker = paths::Masker::default();
        for p in linux.masked_paths().iter().flatten() {
            masker.mask(p)?;
        }
        for p in linux.readonly_paths().iter().flatten() {
            paths::make_readonly(p)?;
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let root = std::fs::File::open("/").map_err(|e| RootfsError::io("opening /", "/", e))?;
        crate::syscall::mount_setattr(root.as_raw_fd(), false, options::ATTR_RDONLY, 0)
            .map_err(|e| RootfsError::sys("making the root read-only", "/", e))?;
    }
    Ok(())
}
