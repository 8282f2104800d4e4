//! The `mounts` of config.json, in order: destinations created and resolved inside the rootfs,
//! bind mounts adjusted with mount_setattr (which keeps the flags a user namespace locks),
//! cgroupfs laid out for the host's cgroup version, and nothing mounted over /proc's contents.

use std::fs::Permissions;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};
use nix::sys::statvfs::statvfs as statfs;
use oci_spec::runtime::{Mount, Spec};
use pathrs::{Handle, InodeType, Root};

use super::options::{self, MountOptions};
use super::resolve::lookup;
use super::sources;
use super::{fd_path, Context, RootfsError};
use crate::syscall::mount_setattr;

/// Entries inside /proc that may be mounted over (lxcfs emulates them); anything else under
/// /proc is refused so that a config cannot hide the masks (CVE-2019-16884).
const PROC_OVERRIDES: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

pub fn mount_all(root: &Root, spec: &Spec, ctx: &Context) -> Result<(), RootfsError> {
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        mount_one(root, m, ctx, index).map_err(|e| RootfsError::Config {
            field: format!("mounts[{index}]"),
            message: format!(
                "error mounting {:?} to rootfs at {:?}: {e}",
                m.source().as_deref().unwrap_or(Path::new("")),
                m.destination()
            ),
        })?;
    }
    Ok(())
}

fn mount_one(root: &Root, m: &Mount, ctx: &Context, index: usize) -> Result<(), RootfsError> {
    let opts = options::parse(m.options().as_deref().unwrap_or_default())
        .map_err(|e| RootfsError::Refused(e.to_string()))?;
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = opts.is_bind() || typ == "bind";
    // A destination that already names the rootfs is taken inside it, as runc takes it.
    let rel = m.destination();
    let rel = rel.strip_prefix(ctx.rootfs).unwrap_or(rel);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    let source = m.source().as_ref().map(|s| {
        if s.is_relative() && bind {
            ctx.bundle.join(s)
        } else {
            s.clone()
        }
    });

    if matches!(typ, "proc" | "sysfs") {
        refuse_symlink(root, rel, m.destination())?;
    }
    // A tmpfs over an existing directory keeps that directory's mode, as with runc; an
    // explicit mode= comes later in the data and wins. A new mount point gets tmpfs' 1777.
    let mut data = opts.data_string();
    if typ == "tmpfs" {
        if let Ok(existing) = lookup(root, rel, false) {
            let st = fstat(existing.as_fd().as_raw_fd())
                .map_err(|e| RootfsError::sys("stat", m.destination(), e))?;
            let inherited = format!("mode={:04o}", st.st_mode & 0o7777);
            data = Some(match data {
                Some(d) => format!("{inherited},{d}"),
                None => inherited,
            });
        }
    }
    let is_file = bind
        && source
            .as_deref()
            .and_then(|s| std::fs::metadata(s).ok())
            .is_some_and(|md| !md.is_dir());
    let dest = make_destination(root, rel, is_file)?;
    check_proc_destination(
        ctx.rootfs,
        &dest,
        typ,
        bind.then_some(source.as_deref()).flatten(),
    )?;
    let target = fd_path(dest.as_fd().as_raw_fd());

    if bind {
        let source = source.expect("validated: bind mounts have a source");
        if sources::from_parent(m, &opts, &source) {
            let tree = (ctx.source)(index).map_err(RootfsError::Refused)?;
            crate::syscall::move_mount(tree.as_raw_fd(), dest.as_fd().as_raw_fd()).map_err(
                |e| {
                    RootfsError::sys(
                        format!("attaching the copy of {source:?} onto"),
                        m.destination(),
                        e,
                    )
                },
            )?;
        } else {
            let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
            mount(Some(&source), &target, None::<&str>, flags, None::<&str>).map_err(|e| {
                RootfsError::sys(format!("bind-mounting {source:?} onto"), m.destination(), e)
            })?;
        }
        if let Some(remount) = opts.bind_remount_flags() {
            let top = reopen(root, rel)?;
            set_bind_flags(&fd_path(top.as_fd().as_raw_fd()), &source, &opts, remount)?;
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        (ctx.join_cgroup)().map_err(RootfsError::Refused)?;
        mount_cgroups(root, rel, &dest, &opts, ctx)?;
    } else {
        let fs_source = source.clone().unwrap_or_else(|| PathBuf::from(typ));
        let mut flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        // A read-only /dev still takes devpts, mqueue, the device nodes and the console: it
        // goes read-only last (`rootfs::finish`), as runc does it.
        if m.destination() == Path::new("/dev") {
            flags -= MsFlags::MS_RDONLY;
        }
        let r = mount(Some(&fs_source), &target, Some(typ), flags, data.as_deref());
        match r {
            // A user namespace that does not own the network namespace may not mount sysfs;
            // runc falls back to the host's, read-only and without devices.
            Err(Errno::EPERM) if typ == "sysfs" && ctx.in_userns => {
                mount(
                    Some("/sys"),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| {
                    RootfsError::sys("bind-mounting the host's /sys onto", m.destination(), e)
                })?;
                let top = reopen(root, rel)?;
                let a = opts.bind_attrs();
                mount_setattr(top.as_fd().as_raw_fd(), true, a.set, a.clear)
                    .map_err(|e| RootfsError::sys("setting the flags of", m.destination(), e))?;
            }
            r => {
                r.map_err(|e| RootfsError::sys(format!("mounting {typ} at"), m.destination(), e))?
            }
        }
        if opts.tmpcopyup && typ == "tmpfs" {
            // The copy is the container's memory and I/O: made inside its cgroup, where the
            // kernel charges it for good.
            (ctx.join_cgroup)().map_err(RootfsError::Refused)?;
            // `dest` was opened before the mount: through it the covered directory is still
            // reachable.
            let top = reopen(root, rel)?;
            super::copyup::copy_tree(&target, &fd_path(top.as_fd().as_raw_fd()))
                .map_err(|e| RootfsError::io("copying up into the tmpfs at", m.destination(), e))?;
        }
    }

    if !opts.propagation.is_empty() || !opts.recursive.is_empty() {
        let top = reopen(root, rel)?;
        if !opts.propagation.is_empty() {
            mount(
                None::<&str>,
                &fd_path(top.as_fd().as_raw_fd()),
                None::<&str>,
                opts.propagation,
                None::<&str>,
            )
            .map_err(|e| RootfsError::sys("changing the propagation of", m.destination(), e))?;
        }
        if !opts.recursive.is_empty() {
            mount_setattr(
                top.as_fd().as_raw_fd(),
                true,
                opts.recursive.set,
                opts.recursive.clear,
            )
            .map_err(|e| RootfsError::sys("setting recursive flags of", m.destination(), e))?;
        }
    }
    Ok(())
}

/// Gives a bind mount its options. Inside a user namespace the kernel refuses to clear the
/// flags it locked on the source's mount; the second remount keeps those, as runc does.
fn set_bind_flags(
    target: &Path,
    source: &Path,
    opts: &MountOptions,
    remount: MsFlags,
) -> Result<(), RootfsError> {
    let first = match mount(None::<&str>, target, None::<&str>, remount, None::<&str>) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let source_flags = statfs(source)
        .map(|st| options::from_statfs(st.flags().bits()))
        .map_err(|e| RootfsError::sys("statfs of the bind source", source, e))?;
    let retry = opts.locked_retry(remount, source_flags).map_err(|why| {
        RootfsError::Refused(format!("{why}: {}", crate::syscall::errno_text(first)))
    })?;
    mount(None::<&str>, target, None::<&str>, retry, None::<&str>).map_err(|e| {
        RootfsError::sys(
            "remounting with the source's locked flags re-applied",
            source,
            e,
        )
    })
}

/// Resolves `rel` inside the rootfs, creating it (a directory, or an empty file for a file bind
/// mount) when missing.
pub fn make_destination(root: &Root, rel: &Path, is_file: bool) -> Result<Handle, RootfsError> {
    if let Ok(h) = lookup(root, rel, false) {
        return Ok(h);
    }
    if !is_file {
        if let Some(h) = make_last_dir(root, rel) {
            return Ok(h);
        }
    }
    // Through a dangling symlink the mount point is made where the link points, inside the
    // rootfs, as runc makes it (`/etc/hosts -> /tmp/hosts` gets /tmp/hosts).
    let rel = &expand_symlinks(root, rel);
    let perm = Permissions::from_mode(0o755);
    if is_file {
        if let Some(parent) = rel.parent() {
            root.mkdir_all(parent, &perm)
                .map_err(|e| RootfsError::resolve(parent, e))?;
        }
        let created = root.create(rel, &InodeType::File(Permissions::from_mode(0o644)));
        root.resolve(rel).map_err(|e| match created {
            Err(c) => RootfsError::resolve(rel, c),
            Ok(()) => RootfsError::resolve(rel, e),
        })
    } else {
        root.mkdir_all(rel, &perm)
            .map_err(|e| RootfsError::resolve(rel, e))
    }
}

/// The common case of a missing mount point, `/dev/pts` in a fresh /dev: only the last
/// component is missing. It is made in its parent, resolved inside the rootfs, and opened
/// without following a link, in three system calls where pathrs' checked `mkdir_all` takes
/// forty. Anything else (a dangling symlink, a deeper missing path) is left to `mkdir_all`.
fn make_last_dir(root: &Root, rel: &Path) -> Option<Handle> {
    let (parent, name) = (rel.parent()?, rel.file_name()?);
    let parent = lookup(root, parent, false).ok()?;
    let parent = parent.as_fd().as_raw_fd();
    mkdirat(Some(parent), name, Mode::from_bits_truncate(0o755)).ok()?;
    open_dir_at(parent, Path::new(name)).ok().map(Handle::from)
}

/// Opens the directory `name` of `dir` as an O_PATH handle, never through a link.
fn open_dir_at(dir: std::os::fd::RawFd, name: &Path) -> nix::Result<OwnedFd> {
    let fd = openat(
        Some(dir),
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the mount now on top of `rel` (a handle taken before mounting still points below it).
fn reopen(root: &Root, rel: &Path) -> Result<Handle, RootfsError> {
    lookup(root, rel, false)
}

/// `rel` with each symlink along it replaced by its target, read inside the rootfs and taken
/// from the rootfs' root when absolute, down to the components that do not exist yet. At most
/// 40 links are followed, as the kernel follows; a loop stops expanding there.
fn expand_symlinks(root: &Root, rel: &Path) -> PathBuf {
    use std::path::Component;
    let mut done = PathBuf::new();
    let mut todo: std::collections::VecDeque<std::ffi::OsString> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            done.pop();
            continue;
        }
        let candidate = done.join(&name);
        match root.readlink(&candidate) {
            Ok(target) if links < 40 => {
                links += 1;
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push_front(n.to_owned()),
                        Component::ParentDir => todo.push_front("..".into()),
                        _ => {}
                    }
                }
            }
            _ => done = candidate,
        }
    }
    done
}

/// proc and sysfs are never mounted through a symlink (CVE-2023-27561): a rootfs whose /proc
/// points elsewhere would get an unmasked procfs where the masks do not look.
fn refuse_symlink(root: &Root, rel: &Path, dest: &Path) -> Result<(), RootfsError> {
    if let Ok(h) = lookup(root, rel, true) {
        let st = fstat(h.as_fd().as_raw_fd()).map_err(|e| RootfsError::sys("stat", dest, e))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
            return Err(RootfsError::Refused(format!(
                "{dest:?} must be mounted on ordinary directory: it is a symlink in the rootfs \
                 (refusing to mount proc or sysfs through it)"
            )));
        }
    }
    Ok(())
}

/// Where `dest` really is inside the container, from the fd the mount will go through.
fn container_path(rootfs: &Path, dest: &Handle) -> Option<PathBuf> {
    let real = std::fs::read_link(fd_path(dest.as_fd().as_raw_fd())).ok()?;
    let rel = real.strip_prefix(rootfs).ok()?;
    Some(Path::new("/").join(rel))
}

fn check_proc_destination(
    rootfs: &Path,
    dest: &Handle,
    typ: &str,
    bind_source: Option<&Path>,
) -> Result<(), RootfsError> {
    let Some(path) = container_path(rootfs, dest) else {
        return Ok(());
    };
    if !path.starts_with("/proc") {
        return Ok(());
    }
    if path == Path::new("/proc") {
        // A bind of a whole procfs (the host's, for a container in the host's pid namespace)
        // is a procfs too.
        if typ == "proc" || bind_source.is_some_and(is_procfs_root) {
            return Ok(());
        }
        return Err(RootfsError::Refused(format!(
            "only a proc filesystem may be mounted at /proc, not {typ:?}"
        )));
    }
    if bind_source.is_some() && PROC_OVERRIDES.iter().any(|p| path == Path::new(p)) {
        return Ok(());
    }
    Err(RootfsError::Refused(format!(
        "mounting over {path:?} inside /proc is not allowed"
    )))
}

/// Whether `path` is the root of a procfs mount.
fn is_procfs_root(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, PROC_SUPER_MAGIC};
    statfs(path).is_ok_and(|st| st.filesystem_type() == PROC_SUPER_MAGIC)
        && std::fs::metadata(path).is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == 1)
}

/// cgroupfs as the host has it: cgroup2 where /sys/fs/cgroup is unified; otherwise a tmpfs with
/// one directory per v1 hierarchy. With a cgroup namespace each is a fresh mount rooted at the
/// container's cgroup; without one, a bind of the container's cgroup directory with the
/// mount's flags. As runc lays it out, the tmpfs itself is always writable, nosuid, nodev and
/// noexec: `ro` applies to the hierarchies.
fn mount_cgroups(
    root: &Root,
    rel: &Path,
    dest: &Handle,
    opts: &MountOptions,
    ctx: &Context,
) -> Result<(), RootfsError> {
    let target = &fd_path(dest.as_fd().as_raw_fd());
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let mountinfo_error = |e| RootfsError::Refused(format!("reading /proc/self/mountinfo: {e}"));
    let joined;
    let infos = if ctx.joined_mntns {
        joined = crate::cgroups::cgroup_mounts().map_err(mountinfo_error)?;
        &joined[..]
    } else {
        crate::cgroups::runtime_cgroup_mounts().map_err(mountinfo_error)?
    };
    // Read only when a bind is made here: hull's side may have made them all.
    let own = std::cell::OnceCell::new();
    let own = || -> Result<&procfs::ProcessCGroups, RootfsError> {
        if let Some(own) = own.get() {
            return Ok(own);
        }
        let read = procfs::FromRead::from_file("/proc/self/cgroup")
            .map_err(|e| RootfsError::Refused(format!("reading /proc/self/cgroup: {e}")))?;
        Ok(own.get_or_init(|| read))
    };
    let unified = infos
        .iter()
        .any(|m| m.mount_point == Path::new("/sys/fs/cgroup") && m.fs_type == "cgroup2");

    if unified {
        if ctx.new_cgroupns {
            mount(
                Some("cgroup2"),
                target,
                Some("cgroup2"),
                flags | ro_flag(ro),
                None::<&str>,
            )
            .map_err(|e| RootfsError::sys("mounting cgroup2 at", rel, e))?;
        } else {
            let own_path = own()?
                .0
                .iter()
                .find(|c| c.hierarchy == 0)
                .map(|c| c.pathname.clone());
            let src = Path::new("/sys/fs/cgroup")
                .join(own_path.unwrap_or_default().trim_start_matches('/'));
            let dest = || make_destination(root, rel, false).map(OwnedFd::from);
            bind_with(&src, dest, opts.bind_attrs())?;
        }
        return Ok(());
    }

    let (tmpfs, mut made) = match ctx.cgroupfs.take() {
        Some(fs) => {
            crate::syscall::move_mount(fs.tmpfs.as_raw_fd(), dest.as_fd().as_raw_fd())
                .map_err(|e| RootfsError::sys("attaching the cgroup tmpfs at", rel, e))?;
            (fs.tmpfs, fs.binds)
        }
        None => {
            mount(
                Some("tmpfs"),
                target,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=755"),
            )
            .map_err(|e| RootfsError::sys("mounting the cgroup tmpfs at", rel, e))?;
            // The hierarchies' directories are made straight in the fresh tmpfs: nothing of
            // the rootfs is on the way, and no process of the container runs yet to race with.
            (OwnedFd::from(reopen(root, rel)?), Vec::new())
        }
    };
    // Each hierarchy once, where it is mounted first (the host's /sys/fs/cgroup): not its
    // later views, under this rootfs (a config that binds the host's /sys brings them along)
    // or anywhere else (another container's left in the host's mount namespace).
    let mut seen = std::collections::HashSet::new();
    let host_hierarchies = infos.iter().filter(|m| {
        m.fs_type == "cgroup"
            && !m.mount_point.starts_with(ctx.rootfs)
            && seen.insert(m.majmin.clone())
    });
    for m in host_hierarchies {
        let Some(name) = m.mount_point.file_name() else {
            continue;
        };
        let sub = rel.join(name);
        // Made ahead: its directory is in the tmpfs already.
        if let Some(i) = made.iter().position(|(n, _)| name == n.as_str()) {
            let (_, bind) = made.swap_remove(i);
            crate::syscall::move_mount_into(bind.as_raw_fd(), tmpfs.as_raw_fd(), name)
                .map_err(|e| RootfsError::sys("attaching the cgroup's bind at", &sub, e))?;
            continue;
        }
        match mkdirat(
            Some(tmpfs.as_raw_fd()),
            name,
            Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(RootfsError::sys("creating", &sub, e)),
        }
        // Opened again after the bind, for its flags: then it is the mount's top.
        let in_tmpfs = || {
            open_dir_at(tmpfs.as_raw_fd(), name.as_ref())
                .map_err(|e| RootfsError::sys("opening", &sub, e))
        };
        if ctx.new_cgroupns {
            let dir = in_tmpfs()?;
            let data: Vec<String> = m
                .super_options
                .iter()
                .filter(|(k, _)| *k != "rw" && *k != "ro")
                .map(|(k, v)| v.as_ref().map_or(k.clone(), |v| format!("{k}={v}")))
                .collect();
            mount(
                Some("cgroup"),
                &fd_path(dir.as_raw_fd()),
                Some("cgroup"),
                flags | ro_flag(ro),
                Some(data.join(",").as_str()),
            )
            .map_err(|e| RootfsError::sys("mounting the cgroup hierarchy at", &sub, e))?;
        } else {
            let controllers = name.to_string_lossy();
            let own_path = own()?
                .0
                .iter()
                .find(|c| {
                    c.controllers.iter().any(|x| {
                        controllers
                            .split(',')
                            .any(|n| x == n || x.strip_prefix("name=") == Some(n))
                    })
                })
                .map(|c| c.pathname.clone())
                .unwrap_or_default();
            let src = m.mount_point.join(own_path.trim_start_matches('/'));
            bind_with(&src, in_tmpfs, opts.bind_attrs())?;
        }
    }
    Ok(())
}

/// The flags of the binds of init's cgroup in its v1 cgroupfs, when hull's side can make that
/// mount while init sets up (`cgroups::Cgroup::hand_over`): a v1 host, one cgroup mount in
/// the config, no cgroup namespace, and a new mount namespace whose mounts are slaves of the
/// host's (the default propagation), as such a bind is.
pub fn cgroupfs_ahead(spec: &Spec, plan: &crate::namespaces::Plan) -> Option<options::Attrs> {
    use oci_spec::runtime::LinuxNamespaceType;
    let mut cgroup_mounts = spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")));
    let (Some(m), None) = (cgroup_mounts.next(), cgroup_mounts.next()) else {
        return None;
    };
    let slaves = super::root_propagation(spec).ok()?.is_none_or(|p| {
        p.contains(MsFlags::MS_SLAVE) && !p.intersects(MsFlags::MS_SHARED | MsFlags::MS_PRIVATE)
    });
    let plain = plan.creates(LinuxNamespaceType::Mount)
        && !plan.creates(LinuxNamespaceType::Cgroup)
        && !crate::cgroups::unified();
    let opts = options::parse(m.options().as_deref().unwrap_or_default()).ok()?;
    (slaves && plain).then(|| opts.bind_attrs())
}

fn ro_flag(ro: bool) -> MsFlags {
    if ro {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    }
}

/// Binds `src` onto the directory `dest` opens, with the per-mount attributes `attrs` (set on
/// the new mount, opened again: the fd taken before mounting points below it).
fn bind_with(
    src: &Path,
    dest: impl Fn() -> Result<OwnedFd, RootfsError>,
    attrs: options::Attrs,
) -> Result<(), RootfsError> {
    mount(
        Some(src),
        &fd_path(dest()?.as_raw_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("bind-mounting", src, e))?;
    if !attrs.is_empty() {
        mount_setattr(dest()?.as_raw_fd(), false, attrs.set, attrs.clear)
            .map_err(|e| RootfsError::sys("setting the mount flags of", src, e))?;
    }
    Ok(())
}

/// runc creates the process's working directory when the image lacks it.
pub fn create_cwd(root: &Root, spec: &Spec) -> Result<(), RootfsError> {
    let Some(process) = spec.process() else {
        return Ok(());
    };
    let rel = process.cwd().strip_prefix("/").unwrap_or(process.cwd());
    if rel.as_os_str().is_empty() {
        return Ok(());
    }
    let h = make_destination(root, rel, false)?;
    let st =
        fstat(h.as_fd().as_raw_fd()).map_err(|e| RootfsError::sys("stat", process.cwd(), e))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Err(RootfsError::Config {
            field: "process.cwd".into(),
            message: format!("{:?} is not a directory in the rootfs", process.cwd()),
        });
    }
    Ok(())
}
