//! /dev: the default devices every container gets, `linux.devices`, the /dev/fd and stdio links
//! and /dev/ptmx. In a user namespace, where mknod is refused, device nodes are bind mounts of
//! the host's.

use std::fs::Permissions;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDeviceType, Spec};
use pathrs::{Handle, InodeType, Root};

use super::resolve::lookup;
use super::{fd_path, Context, RootfsError};

struct Device {
    path: PathBuf,
    kind: SFlag,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// /dev is set up unless the config bind-mounts the host's /dev.
pub fn needs_dev_setup(spec: &Spec) -> bool {
    !spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}

/// The paths of the device nodes a container of `spec` gets: the defaults and `linux.devices`.
pub fn device_paths(spec: &Spec) -> Vec<PathBuf> {
    devices(spec).into_iter().map(|d| d.path).collect()
}

/// The character devices every container gets (path, major, minor); the cgroup's device rules
/// allow them.
pub const DEFAULT_DEVICE_NODES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn devices(spec: &Spec) -> Vec<Device> {
    let char_dev = |path: &str, major, minor| Device {
        path: path.into(),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    };
    let mut list: Vec<Device> = DEFAULT_DEVICE_NODES
        .iter()
        .map(|(path, major, minor)| char_dev(path, *major, *minor))
        .collect();
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        list.retain(|x| x.path != *d.path());
        list.push(Device {
            path: d.path().clone(),
            kind,
            major: d.major(),
            minor: d.minor(),
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    list
}

pub fn create_all(root: &Root, spec: &Spec, ctx: &Context) -> Result<(), RootfsError> {
    // Device modes must be exactly what the config says.
    let old = umask(Mode::empty());
    let mut dirs = Dirs::default();
    let result = devices(spec)
        .iter()
        .try_for_each(|d| create_device(root, &mut dirs, d, ctx.in_userns))
        .and_then(|()| create_links(dirs.get(root, Path::new("dev"))?));
    umask(old);
    result
}

/// The directories the nodes go in, each opened once: most nodes share /dev.
#[derive(Default)]
struct Dirs(Vec<(PathBuf, Handle)>);

impl Dirs {
    /// `rel` inside the rootfs, made first if it is missing (pathrs' checked creation, forty
    /// system calls, only then).
    fn get(&mut self, root: &Root, rel: &Path) -> Result<&Handle, RootfsError> {
        let i = match self.0.iter().position(|(p, _)| p == rel) {
            Some(i) => i,
            None => {
                let dir = match lookup(root, rel, false) {
                    Ok(dir) => dir,
                    Err(_) => root
                        .mkdir_all(rel, &Permissions::from_mode(0o755))
                        .map_err(|e| RootfsError::resolve(rel, e))?,
                };
                self.0.push((rel.to_path_buf(), dir));
                self.0.len() - 1
            }
        };
        Ok(&self.0[i].1)
    }
}

fn create_device(
    root: &Root,
    dirs: &mut Dirs,
    d: &Device,
    in_userns: bool,
) -> Result<(), RootfsError> {
    let rel = d.path.strip_prefix("/").unwrap_or(&d.path);
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(RootfsError::Refused(format!(
            "{:?} is not a device path",
            d.path
        )));
    };
    let dir = dirs.get(root, parent)?;
    if in_userns {
        let _ = root.create(rel, &InodeType::File(Permissions::from_mode(0o644)));
        let node = lookup(root, rel, false)?;
        return mount(
            Some(&d.path),
            &fd_path(node.as_fd().as_raw_fd()),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys("bind-mounting the host device", &d.path, e));
    }
    let dev = makedev(d.major as u64, d.minor as u64);
    match mknodat(
        Some(dir.as_fd().as_raw_fd()),
        name,
        d.kind,
        Mode::from_bits_truncate(d.mode),
        dev,
    ) {
        Ok(()) => {}
        // An existing node is kept, as runc does.
        Err(Errno::EEXIST) => return Ok(()),
        Err(e) => return Err(RootfsError::sys("creating device", &d.path, e)),
    }
    fchownat(
        Some(dir.as_fd().as_raw_fd()),
        name,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| RootfsError::sys("setting the owner of", &d.path, e))
}

/// The links of /dev, made in /dev as resolved inside the rootfs; an existing entry is kept,
/// except /dev/ptmx, which must be the devpts instance's own, not a host node.
fn create_links(dev: &Handle) -> Result<(), RootfsError> {
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("core", "/proc/kcore"));
    }
    links.push(("ptmx", "pts/ptmx"));
    let dev = dev.as_fd().as_raw_fd();
    let _ = unlinkat(Some(dev), "ptmx", UnlinkatFlags::NoRemoveDir);
    for (name, target) in links {
        match symlinkat(target, Some(dev), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(RootfsError::sys(
                    "creating the link",
                    Path::new("/dev").join(name),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// After the root has changed: stdio that is the null device (an engine's /dev/null, such as
/// conmon's) is reopened on the container's own /dev/null, as runc does, so that no fd of the
/// process refers to a file of the host's /dev (CRIU cannot dump one, for instance).
pub fn reopen_dev_null() -> Result<(), RootfsError> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| RootfsError::io("opening", "/dev/null", e))?;
    let rdev = nix::sys::stat::fstat(null.as_raw_fd())
        .map_err(|e| RootfsError::sys("stat", "/dev/null", e))?
        .st_rdev;
    for fd in 0..3 {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
        if is_char && st.st_rdev == rdev {
            nix::unistd::dup2(null.as_raw_fd(), fd)
                .map_err(|e| RootfsError::sys("reopening stdio on", "/dev/null", e))?;
        }
    }
    Ok(())
}
