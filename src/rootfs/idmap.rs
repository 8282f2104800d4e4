//! Idmapped bind mounts (`idmap`/`ridmap` options, or a mount's own `uidMappings` and
//! `gidMappings`). hull's parent makes them before the container's init exists, as host root:
//! for each such mount a user namespace carrying the mount's mapping, and a detached copy of
//! the source (open_tree OPEN_TREE_CLONE) idmapped through it (mount_setattr MOUNT_ATTR_IDMAP).
//! init inherits the fds and attaches each copy at its destination with move_mount, after
//! entering its own namespaces, where it could no longer reach the source or map host ids.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::options;
use super::RootfsError;
use crate::syscall;

const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const AT_RECURSIVE: u32 = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The idmapped copies of one container: taken (and closed) one by one as init attaches them,
/// so that a low RLIMIT_NOFILE leaves room for the rest of the set-up.
pub type Copies = std::cell::RefCell<Vec<Option<OwnedFd>>>;

/// The idmapped copy for each of `spec.mounts` (None for the others), in their order.
pub fn prepare(spec: &Spec, bundle: &Path) -> Result<Copies, RootfsError> {
    let linux = spec.linux().as_ref();
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = |message: String| RootfsError::Config {
            field: format!("mounts[{i}]"),
            message,
        };
        let opts = options::parse(m.options().as_deref().unwrap_or_default())
            .map_err(|e| field(e.to_string()))?;
        let own = m.uid_mappings().is_some() || m.gid_mappings().is_some();
        if opts.idmap.is_none() && !own {
            out.push(None);
            continue;
        }
        if !opts.is_bind() && m.typ().as_deref() != Some("bind") {
            return Err(field("idmapped mounts must be bind mounts".into()));
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
            return Err(field(
                "an idmapped mount needs uidMappings and gidMappings (its own or the \
                 container's)"
                    .into(),
            ));
        }
        // rbind copies the whole tree; only ridmap maps the mounts below the top one too.
        let rbind = opts.flags.contains(nix::mount::MsFlags::MS_REC);
        let ridmap = opts.idmap == Some(true);
        let tree =
            idmapped_tree(m, bundle, &uids, &gids, rbind || ridmap, ridmap).map_err(field)?;
        out.push(Some(tree));
    }
    Ok(std::cell::RefCell::new(out))
}

/// A detached copy of the mount's source, idmapped with the mappings.
fn idmapped_tree(
    m: &Mount,
    bundle: &Path,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
    whole_tree: bool,
    map_whole_tree: bool,
) -> Result<OwnedFd, String> {
    let source = m.source().as_deref().ok_or("a bind mount needs a source")?;
    let source = if source.is_relative() {
        bundle.join(source)
    } else {
        source.to_path_buf()
    };
    let path = CString::new(source.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{source:?} contains a NUL byte"))?;
    let rec = if whole_tree { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree with a valid C string; the result is a new fd.
    let tree = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec,
        )
    })
    .map_err(|e| format!("open_tree {source:?}: {e}"))?;
    // SAFETY: open_tree returned a new fd that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    let userns = user_namespace(uids, gids)?;
    syscall::mount_setattr_idmap(tree.as_raw_fd(), map_whole_tree, MOUNT_ATTR_IDMAP, &userns)
        .map_err(|e| format!("idmapping {source:?}: {e}"))?;
    Ok(tree)
}

/// A user namespace with these mappings: a child made in it waits while hull writes its maps
/// and opens the namespace, then goes.
fn user_namespace(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd, String> {
    let child = match syscall::clone_fork(libc::CLONE_NEWUSER as u64)
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
