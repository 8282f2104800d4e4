//! A container's mounts as CRIU must be told about them. Bind mounts, the per-hierarchy cgroup
//! binds of cgroup v1, masked files and device nodes come from outside the container's mount
//! tree: CRIU records them by name at dump (`ext_mnt` key = where the mount is, value = the
//! name) and is given the host path for each name at restore. Before a restore their mount
//! points must exist in the rootfs, including those nested in another bind's source.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};
use pathrs::Root;

use super::rpc::ExtMountMap;
use crate::rootfs::{device_paths, fd_path, make_destination};

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

fn is_cgroup(m: &Mount) -> bool {
    matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))
}

/// Where a mount is in the container: its destination resolved inside the rootfs, so that a
/// destination through a symlink names the real mount point; the destination as written when
/// it cannot be resolved.
fn mount_point(root: &Root, rootfs: &Path, dest: &Path) -> String {
    let rel = dest.strip_prefix("/").unwrap_or(dest);
    root.resolve(rel)
        .ok()
        .and_then(|h| std::fs::read_link(fd_path(h.as_fd().as_raw_fd())).ok())
        .and_then(|p| p.strip_prefix(rootfs).ok().map(|r| Path::new("/").join(r)))
        .unwrap_or_else(|| dest.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn entry(key: impl Into<String>, val: impl Into<String>) -> ExtMountMap {
    ExtMountMap {
        key: key.into(),
        val: val.into(),
    }
}

/// The names of cgroup v1 hierarchies the container sees bound at /sys/fs/cgroup/<name> when
/// it has no cgroup namespace of its own (cgroup2 and cgroupns mounts are real mounts).
fn v1_cgroup_binds(spec: &Spec) -> Vec<(String, PathBuf)> {
    let has_mount = spec.mounts().iter().flatten().any(is_cgroup);
    let own_ns = crate::namespaces::listed(spec).any(|n| n.typ() == LinuxNamespaceType::Cgroup);
    if !has_mount || own_ns {
        return Vec::new();
    }
    procfs::process::Process::myself()
        .and_then(|p| p.mountinfo())
        .map(|m| {
            let mut seen = std::collections::HashSet::new();
            m.into_iter()
                .filter(|m| m.fs_type == "cgroup" && seen.insert(m.majmin.clone()))
                .filter_map(|m| {
                    let name = m.mount_point.file_name()?.to_string_lossy().into_owned();
                    Some((name, m.mount_point))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn devices(spec: &Spec) -> Vec<String> {
    device_paths(spec)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// The external mounts of a running container, for its dump. `init` is its init's pid, through
/// whose root the masked paths are looked at.
pub fn for_dump(spec: &Spec, rootfs: &Path, init: i32) -> Vec<ExtMountMap> {
    let mut v = Vec::new();
    if let Ok(root) = Root::open(rootfs) {
        for m in spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
            let at = mount_point(&root, rootfs, m.destination());
            v.push(entry(at.clone(), at));
        }
    }
    for (name, _) in v1_cgroup_binds(spec) {
        let at = format!("/sys/fs/cgroup/{name}");
        v.push(entry(at.clone(), at));
    }
    // A masked file is /dev/null bound over it; a masked directory is a tmpfs CRIU dumps.
    for p in spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        let inside = PathBuf::from(format!("/proc/{init}/root{p}"));
        if inside.exists() && !inside.is_dir() {
            v.push(entry(p.clone(), "/dev/null"));
        }
    }
    for d in devices(spec) {
        v.push(entry(d.clone(), d));
    }
    v
}

/// The host path of each external mount named at dump, for a restore of `spec` into the
/// cgroup `cgroup_dir` (relative to each hierarchy's root).
pub fn for_restore(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    cgroup_dir: &Path,
) -> Vec<ExtMountMap> {
    let mut v = Vec::new();
    if let Ok(root) = Root::open(rootfs) {
        for m in spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
            let Some(source) = m.source() else { continue };
            let source = if source.is_relative() {
                bundle.join(source)
            } else {
                source.clone()
            };
            v.push(entry(
                mount_point(&root, rootfs, m.destination()),
                source.to_string_lossy(),
            ));
        }
    }
    let rel = cgroup_dir.strip_prefix("/").unwrap_or(cgroup_dir);
    for (name, host) in v1_cgroup_binds(spec) {
        v.push(entry(
            format!("/sys/fs/cgroup/{name}"),
            host.join(rel).to_string_lossy(),
        ));
    }
    let masks = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_ref())
        .is_some_and(|m| !m.is_empty());
    if masks {
        v.push(entry("/dev/null", "/dev/null"));
    }
    for d in devices(spec) {
        v.push(entry(d.clone(), d));
    }
    v
}

/// Temporary binds made while preparing mount points, lazily unmounted when dropped.
pub struct Prepared(Vec<PathBuf>);

impl Drop for Prepared {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = umount2(p, MntFlags::MNT_DETACH);
        }
    }
}

/// Creates, inside the rootfs, the mount point of every mount CRIU will restore (not those
/// below a tmpfs, which CRIU restores with their contents, nor cgroupfs). A bind's source is
/// bound onto its mount point meanwhile, so that a mount nested in it gets its mount point in
/// the source, where the restored container will look for it.
pub fn prepare_mount_points(spec: &Spec, rootfs: &Path, bundle: &Path) -> anyhow::Result<Prepared> {
    let root = Root::open(rootfs).map_err(|e| anyhow::anyhow!("opening {rootfs:?}: {e}"))?;
    let tmpfs: Vec<&Path> = spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    let mut prepared = Prepared(Vec::new());
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination();
        if is_cgroup(m) || tmpfs.iter().any(|t| dest != *t && dest.starts_with(t)) {
            continue;
        }
        let rel = dest.strip_prefix("/").unwrap_or(dest);
        if rel.as_os_str().is_empty() {
            continue;
        }
        let bind = is_bind(m);
        let source = m.source().as_ref().map(|s| {
            if s.is_relative() {
                bundle.join(s)
            } else {
                s.clone()
            }
        });
        let is_file = bind
            && source
                .as_deref()
                .and_then(|s| std::fs::metadata(s).ok())
                .is_some_and(|md| !md.is_dir());
        let handle = make_destination(&root, rel, is_file)
            .map_err(|e| anyhow::anyhow!("mount point {dest:?}: {e}"))?;
        if let (true, Some(source)) = (bind, source) {
            let at = fd_path(handle.as_fd().as_raw_fd());
            let target = std::fs::read_link(&at)?;
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(Some(&source), &at, None::<&str>, flags, None::<&str>)
                .map_err(|e| anyhow::anyhow!("binding {source:?} onto {target:?}: {e}"))?;
            prepared.0.push(target);
        }
    }
    Ok(prepared)
}
