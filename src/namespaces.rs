//! Namespaces: OCI types <-> clone flags, opening and checking `path` namespaces, the join order
//! (user last, mount just before it), and the UTS names.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

use crate::spec::validate::ns_name;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("linux.namespaces[{index}].path: {path:?}: {source}")]
    Open {
        index: usize,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("linux.namespaces[{index}].path: {path:?} is not a namespace")]
    NotNamespace { index: usize, path: PathBuf },
    #[error("linux.namespaces[{index}].path: {path:?} is a {actual} namespace, not {expected}")]
    WrongType {
        index: usize,
        path: PathBuf,
        actual: &'static str,
        expected: &'static str,
    },
    #[error("joining the {kind} namespace {path:?}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        source: Errno,
    },
    #[error("creating namespaces ({flags:?}): {source}")]
    Unshare { flags: CloneFlags, source: Errno },
    #[error("setting the {what} to {value:?}: {source}")]
    Uts {
        what: &'static str,
        value: String,
        source: Errno,
    },
}

/// The namespaces a config lists.
pub fn listed(spec: &Spec) -> impl Iterator<Item = &LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // nix 0.29 has no CLONE_NEWTIME constant.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join by path, opened and type-checked before anything is created.
pub struct Join {
    kind: LinuxNamespaceType,
    path: PathBuf,
    fd: OwnedFd,
}

/// What the container's namespaces need: those to create and those to join.
pub struct Plan {
    pub new: CloneFlags,
    joins: Vec<Join>,
}

impl Plan {
    /// Opens every `path` namespace in `spec` and checks its type.
    pub fn from_spec(spec: &Spec) -> Result<Plan, NamespaceError> {
        let mut new = CloneFlags::empty();
        let mut joins = Vec::new();
        let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
        for (index, ns) in namespaces.into_iter().flatten().enumerate() {
            match ns.path() {
                None => new |= clone_flag(ns.typ()),
                Some(path) => joins.push(Join {
                    kind: ns.typ(),
                    fd: open_checked(index, path, ns.typ())?,
                    path: path.clone(),
                }),
            }
        }
        // The user namespace last: as host root hull may join any namespace, while inside a
        // joined user namespace it may join only those that namespace owns (a network
        // namespace made elsewhere is not). Mount just before it.
        joins.sort_by_key(|j| match j.kind {
            LinuxNamespaceType::User => 2,
            LinuxNamespaceType::Mount => 1,
            _ => 0,
        });
        Ok(Plan { new, joins })
    }

    /// Namespaces the clone itself can create. When a namespace is joined, creating a user
    /// namespace first would lose the rights to join it, so everything waits for the child.
    /// The cgroup namespace always waits until the parent has moved the child into its cgroup,
    /// and the time namespace until its offsets are written; the pid namespace then waits too,
    /// because the process that forks into the time namespace must not be the new pid 1 (its
    /// exit would kill the namespace).
    ///
    /// Without a new user namespace, which must come first to own the others, the child also
    /// makes its mount, network, IPC and UTS namespaces itself: then that work runs on its
    /// CPU while the parent makes the cgroup, not inside the parent's clone.
    pub fn clone_flags(&self) -> CloneFlags {
        if !self.joins.is_empty() {
            return CloneFlags::empty();
        }
        let mut deferred = CloneFlags::CLONE_NEWCGROUP | clone_flag(LinuxNamespaceType::Time);
        if self.creates(LinuxNamespaceType::Time) {
            deferred |= CloneFlags::CLONE_NEWPID;
        }
        if !self.creates(LinuxNamespaceType::User) {
            deferred |= CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS;
        }
        self.new - deferred
    }

    /// Whether init forks before it sets up the rootfs: the pid namespace (joined, or made
    /// after the time namespace) only takes the children of the process that enters it.
    pub fn init_forks(&self) -> bool {
        let pending = self.new - self.clone_flags();
        let children_only = CloneFlags::CLONE_NEWPID | clone_flag(LinuxNamespaceType::Time);
        pending.intersects(children_only)
            || self.joins(LinuxNamespaceType::Pid)
            || self.joins(LinuxNamespaceType::Time)
    }

    /// Whether init may join its cgroup after it has set up its namespaces and started on its
    /// mounts: it joins no namespace (a joined mount namespace would resolve the host's cgroup
    /// paths in its own view) and does not fork before the rootfs.
    pub fn init_may_join_cgroup_late(&self) -> bool {
        self.joins.is_empty() && !self.init_forks()
    }

    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(clone_flag(t))
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.joins.iter().any(|j| j.kind == t)
    }

    /// Child side: joins the path namespaces in order.
    pub fn join_all(&self) -> Result<(), NamespaceError> {
        for j in &self.joins {
            setns(j.fd.as_fd(), clone_flag(j.kind)).map_err(|source| NamespaceError::Join {
                kind: ns_name(j.kind),
                path: j.path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Child side: creates the namespaces in `flags` (a user namespace among them comes first: the
/// kernel makes it the owner of the others).
pub fn create(flags: CloneFlags) -> Result<(), NamespaceError> {
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).map_err(|source| NamespaceError::Unshare { flags, source })
}

fn open_checked(
    index: usize,
    path: &Path,
    expected: LinuxNamespaceType,
) -> Result<OwnedFd, NamespaceError> {
    let file = File::open(path).map_err(|source| NamespaceError::Open {
        index,
        path: path.to_path_buf(),
        source,
    })?;
    // NS_GET_NSTYPE = _IO(0xb7, 0x3): the CLONE_NEW* flag of the namespace behind the fd.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: an ioctl without arguments on an fd we own.
    let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
    if kind < 0 {
        return Err(NamespaceError::NotNamespace {
            index,
            path: path.to_path_buf(),
        });
    }
    let want = clone_flag(expected).bits();
    if kind != want {
        let actual = [
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::User,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Time,
        ]
        .into_iter()
        .find(|t| clone_flag(*t).bits() == kind)
        .map_or("unknown", ns_name);
        return Err(NamespaceError::WrongType {
            index,
            path: path.to_path_buf(),
            actual,
            expected: ns_name(expected),
        });
    }
    Ok(file.into())
}

/// Sets hostname and domainname in the container's UTS namespace.
pub fn set_uts_names(spec: &Spec) -> Result<(), NamespaceError> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|source| NamespaceError::Uts {
            what: "hostname",
            value: h.into(),
            source,
        })?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: pointer and length describe a live byte slice.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        Errno::result(r).map_err(|source| NamespaceError::Uts {
            what: "domainname",
            value: d.into(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<Plan, NamespaceError> {
        let spec: Spec = serde_json::from_str(json).unwrap();
        Plan::from_spec(&spec)
    }

    #[test]
    fn clone_defers_cgroup_time_and_with_time_pid() {
        let p = plan(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"cgroup"},{"type":"time"},{"type":"mount"},{"type":"user"}]}}"#).unwrap();
        assert_eq!(
            p.clone_flags(),
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUSER
        );
        assert!(p.creates(LinuxNamespaceType::Time));
        assert!(p.init_forks());
        let p = plan(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"cgroup"},{"type":"mount"},{"type":"user"}]}}"#).unwrap();
        assert_eq!(
            p.clone_flags(),
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUSER
        );
        assert!(!p.init_forks());
    }

    #[test]
    fn without_a_user_namespace_the_child_makes_all_but_pid() {
        let p = plan(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}]}}"#).unwrap();
        assert_eq!(p.clone_flags(), CloneFlags::CLONE_NEWPID);
        assert!(!p.init_forks());
    }

    #[test]
    fn joining_defers_everything_to_the_child() {
        let p = plan(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/self/ns/net"}]}}"#).unwrap();
        assert!(p.clone_flags().is_empty());
        assert!(p.joins(LinuxNamespaceType::Network));
    }

    #[test]
    fn wrong_type_names_both() {
        let e = plan(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid","path":"/proc/self/ns/net"}]}}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is a network namespace, not pid"), "{e}");
        let e = plan(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid","path":"/etc/passwd"}]}}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is not a namespace"), "{e}");
    }
}
