//! Bind-mount sources that init cannot make by itself: idmapped ones (`idmap`/`ridmap`, or a
//! mount's own `uidMappings`/`gidMappings`), which need host root to map host ids, and sources
//! a user namespace cannot reach (a directory it may not search). init asks hull's side for
//! each when it comes to that mount; hull makes a detached copy (open_tree OPEN_TREE_CLONE)
//! inside the container's mount namespace, so a source within an earlier mount of the
//! container is found, idmaps it through a user namespace carrying the mapping
//! (mount_setattr MOUNT_ATTR_IDMAP), and passes the fd; init attaches it with move_mount.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::options;
use super::RootfsError;
use crate::syscall;

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// How an idmapped mount maps ids, and whether the mounts below the top one are mapped too.
struct Mapping {
    ids: Ids,
    recursive: bool,
}

enum Ids {
    /// The mount's own mappings, or the container's.
    Maps(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>),
    /// The user namespace the container joins, whose mappings are implied.
    Userns(PathBuf),
}

fn mapping(
    spec: &Spec,
    m: &Mount,
    opts: &options::MountOptions,
) -> Result<Option<Mapping>, String> {
    let own = m.uid_mappings().is_some() || m.gid_mappings().is_some();
    if opts.idmap.is_none() && !own {
        return Ok(None);
    }
    if !opts.is_bind() && m.typ().as_deref() != Some("bind") {
        return Err("idmapped mounts must be bind mounts".into());
    }
    let recursive = opts.idmap == Some(true);
    let linux = spec.linux().as_ref();
    let joined_userns = crate::namespaces::listed(spec)
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        .and_then(|n| n.path().clone());
    let container_maps = linux.is_some_and(|l| l.uid_mappings().is_some());
    if let (false, false, Some(path)) = (own, container_maps, joined_userns) {
        return Ok(Some(Mapping {
            ids: Ids::Userns(path),
            recursive,
        }));
    }
    // Without mappings of its own, the mount takes the container's.
    let maps = |own: &Option<Vec<LinuxIdMapping>>, container: Option<&Vec<LinuxIdMapping>>| {
        own.clone()
            .or_else(|| container.cloned())
            .unwrap_or_default()
    };
    let uids = maps(
        m.uid_mappings(),
        linux.and_then(|l| l.uid_mappings().as_ref()),
    );
    let gids = maps(
        m.gid_mappings(),
        linux.and_then(|l| l.gid_mappings().as_ref()),
    );
    if uids.is_empty() || gids.is_empty() {
        return Err(
            "an idmapped mount needs uidMappings and gidMappings (its own, the container's, or \
             those of a user namespace it joins)"
                .into(),
        );
    }
    Ok(Some(Mapping {
        ids: Ids::Maps(uids, gids),
        recursive,
    }))
}

/// Checks every idmapped mount of `spec` before anything is made.
pub fn check(spec: &Spec) -> Result<(), RootfsError> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = |message: String| RootfsError::Config {
            field: format!("mounts[{i}]"),
            message,
        };
        let opts = options::parse(m.options().as_deref().unwrap_or_default())
            .map_err(|e| field(e.to_string()))?;
        mapping(spec, m, &opts).map_err(field)?;
    }
    Ok(())
}

/// Whether init must ask hull's side for the source of this bind mount: an idmapped one
/// always, another when init cannot reach it (a user namespace, a source it may not search).
pub fn from_parent(m: &Mount, opts: &options::MountOptions, source: &Path) -> bool {
    opts.idmap.is_some()
        || m.uid_mappings().is_some()
        || m.gid_mappings().is_some()
        || std::fs::metadata(source).is_err()
}

/// hull's side of a mount source request: a detached copy of the source of `mounts[index]`,
/// made as host root inside the container's mount namespace (where init's earlier mounts,
/// which the source may lie in, are visible), idmapped when the mount asks for it. A forked
/// helper joins the namespace; hull itself stays where it is.
pub fn open_for(init: Pid, spec: &Spec, index: usize, bundle: &Path) -> Result<OwnedFd, String> {
    let m = spec
        .mounts()
        .iter()
        .flatten()
        .nth(index)
        .ok_or_else(|| format!("mounts[{index}] does not exist"))?;
    let opts =
        options::parse(m.options().as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
    let map = mapping(spec, m, &opts)?;
    let source = m.source().as_deref().ok_or("a bind mount needs a source")?;
    let source = if source.is_relative() {
        bundle.join(source)
    } else {
        source.to_path_buf()
    };
    // rbind copies the whole tree; only ridmap maps the mounts below the top one too.
    let whole_tree = opts.flags.contains(nix::mount::MsFlags::MS_REC)
        || map.as_ref().is_some_and(|m| m.recursive);
    let mntns = std::fs::File::open(format!("/proc/{init}/ns/mnt"))
        .map_err(|e| format!("opening the container's mount namespace: {e}"))?;
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| format!("socketpair: {e}"))?;
    // SAFETY: hull is single-threaded; the helper only makes system calls and exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            let made = nix::sched::setns(&mntns, nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| format!("joining the container's mount namespace: {e}"))
                .and_then(|()| tree(&source, whole_tree, map.as_ref()));
            let _ = match made {
                Ok(fd) => crate::fdpass::send(theirs.as_fd(), b"", fd.as_fd()).map_err(drop),
                Err(e) => nix::unistd::write(&theirs, e.as_bytes())
                    .map(drop)
                    .map_err(drop),
            };
            // SAFETY: _exit skips the atexit handlers, which belong to hull.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let mut buf = [0u8; 4096];
            let got = crate::fdpass::recv(ours.as_fd(), &mut buf);
            let _ = waitpid(child, None);
            match got {
                Ok((_, Some(fd))) => Ok(fd),
                Ok((n, None)) if n > 0 => Err(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Ok(_) => Err("the helper that opens mount sources died".into()),
                Err(e) => Err(format!("receiving the mount source: {e}")),
            }
        }
    }
}

/// A detached copy of `source`, idmapped with `map` when given.
fn tree(source: &Path, whole_tree: bool, map: Option<&Mapping>) -> Result<OwnedFd, String> {
    let tree = syscall::open_tree_clone(source, whole_tree)
        .map_err(|e| format!("open_tree {source:?}: {e}"))?;
    if let Some(map) = map {
        let userns = match &map.ids {
            Ids::Maps(uids, gids) => user_namespace(uids, gids)?,
            Ids::Userns(path) => std::fs::File::open(path)
                .map(OwnedFd::from)
                .map_err(|e| format!("opening the user namespace {path:?}: {e}"))?,
        };
        syscall::mount_setattr_idmap(tree.as_raw_fd(), map.recursive, MOUNT_ATTR_IDMAP, &userns)
            .map_err(|e| format!("idmapping {source:?}: {e}"))?;
    }
    Ok(tree)
}

/// A user namespace with these mappings: a child made in it waits while hull writes its maps
/// and opens the namespace, then goes.
fn user_namespace(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd, String> {
    let child = match syscall::clone_fork(libc::CLONE_NEWUSER as u64, None)
        .map_err(|e| format!("making a user namespace: {e}"))?
    {
        None => {
            // SAFETY: pause and _exit are async-signal-safe; the parent kills this child.
            unsafe {
                libc::pause();
                libc::_exit(0)
            }
        }
        Some(pid) => pid,
    };
    let made = (|| {
        let lines = |maps: &[LinuxIdMapping]| -> String {
            maps.iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        std::fs::write(format!("/proc/{child}/uid_map"), lines(uids))
            .map_err(|e| format!("writing the mount's uid map: {e}"))?;
        std::fs::write(format!("/proc/{child}/gid_map"), lines(gids))
            .map_err(|e| format!("writing the mount's gid map: {e}"))?;
        std::fs::File::open(format!("/proc/{child}/ns/user"))
            .map(OwnedFd::from)
            .map_err(|e| format!("opening the mount's user namespace: {e}"))
    })();
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    made
}
