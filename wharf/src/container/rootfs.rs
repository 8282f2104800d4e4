//! A container's root filesystem: an overlay of the image's snapshots, a read-only "init"
//! layer wharf writes (/.dockerenv and the mount points /dev, /proc, /sys, /etc/hosts,
//! /etc/hostname and /etc/resolv.conf, like docker's `-init` layer, so they never show up
//! in `diff`), and a per-container upper directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("mounting the overlay at {path}: {source}")]
    Mount { path: PathBuf, source: nix::Error },
    #[error("unmounting {path}: {source}")]
    Umount { path: PathBuf, source: nix::Error },
    #[error("entering a private mount namespace: {0}")]
    Namespace(nix::Error),
    #[error("bind-mounting {source_path} at {target}: {source}")]
    Bind {
        source_path: PathBuf,
        target: PathBuf,
        source: nix::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directories of one container's overlay, all under its container directory.
pub struct Layout {
    pub init: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl Layout {
    pub fn new(cdir: &Path) -> Self {
        Self {
            init: cdir.join("init"),
            upper: cdir.join("upper"),
            work: cdir.join("work"),
            merged: cdir.join("merged"),
        }
    }

    /// Creates the init layer and the empty overlay directories.
    pub fn prepare(&self) -> Result<(), RootfsError> {
        for d in [&self.upper, &self.work, &self.merged] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        // Mount points the runtime would otherwise create in the upper layer.
        for d in ["etc", "dev", "proc", "sys"] {
            let p = self.init.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let etc = self.init.join("etc");
        for f in [
            self.init.join(".dockerenv"),
            etc.join("hosts"),
            etc.join("hostname"),
            etc.join("resolv.conf"),
        ] {
            fs::write(&f, b"").map_err(io_err(&f))?;
        }
        // docker's /.dockerenv is 0755.
        let env = self.init.join(".dockerenv");
        fs::set_permissions(&env, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err(&env))?;
        Ok(())
    }

    /// Adds /sbin/docker-init to the init layer as the mount point of `run --init`'s
    /// init, unless the image's /sbin is a symlink (a merged /usr), which a directory in
    /// the init layer would hide; the runtime then creates the mount point itself.
    pub fn add_init_mount_point(&self, lowers: &[PathBuf]) -> Result<(), RootfsError> {
        let sbin = lowers
            .iter()
            .rev()
            .find_map(|l| l.join("sbin").symlink_metadata().ok());
        if sbin.is_some_and(|m| m.file_type().is_symlink()) {
            return Ok(());
        }
        let dir = self.init.join("sbin");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let f = dir.join("docker-init");
        fs::write(&f, b"").map_err(io_err(&f))
    }

    pub fn is_mounted(&self) -> bool {
        mount_point(&self.merged)
    }

    /// Mounts the overlay; `lowers` are snapshot directories, bottom first.
    pub fn mount(&self, lowers: &[PathBuf]) -> Result<(), RootfsError> {
        if self.is_mounted() {
            return Ok(());
        }
        // overlayfs lists lowerdirs top first.
        let mut dirs = vec![self.init.display().to_string()];
        dirs.extend(lowers.iter().rev().map(|p| p.display().to_string()));
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            dirs.join(":"),
            self.upper.display(),
            self.work.display()
        );
        mount(
            Some("overlay"),
            &self.merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|source| RootfsError::Mount {
            path: self.merged.clone(),
            source,
        })
    }

    pub fn umount(&self) -> Result<(), RootfsError> {
        if !self.is_mounted() {
            return Ok(());
        }
        umount2(&self.merged, MntFlags::MNT_DETACH).map_err(|source| RootfsError::Umount {
            path: self.merged.clone(),
            source,
        })
    }
}

/// Moves this process into a mount namespace of its own from which nothing propagates
/// back: what it mounts afterwards is seen by it alone and goes away when it exits.
pub fn private_mount_namespace() -> Result<(), RootfsError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(RootfsError::Namespace)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(RootfsError::Namespace)
}

/// Bind-mounts `source` (with what is mounted below it) at `target`, read-only unless `rw`.
pub fn bind(source: &Path, target: &Path, rw: bool) -> Result<(), RootfsError> {
    let err = |e| RootfsError::Bind {
        source_path: source.to_path_buf(),
        target: target.to_path_buf(),
        source: e,
    };
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(err)?;
    if !rw {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(err)?;
    }
    Ok(())
}

/// The container's overlay, mounted while this lives; unmounted on drop only when it was
/// mounted here (a running container's stays).
pub struct Mounted {
    layout: Layout,
    ours: bool,
}

impl Mounted {
    pub fn new(root: &Path, c: &super::Container) -> Result<Self, RootfsError> {
        let layout = Layout::new(&super::dir(root, &c.id));
        let ours = !layout.is_mounted();
        if ours {
            let lowers: Vec<PathBuf> = c
                .spec
                .layers
                .iter()
                .map(|l| root.join("snapshots").join(l))
                .collect();
            layout.mount(&lowers)?;
        }
        Ok(Self { layout, ours })
    }

    pub fn path(&self) -> &Path {
        &self.layout.merged
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.ours {
            let _ = self.layout.umount();
        }
    }
}

/// Whether `p` is a mount point, from /proc/self/mountinfo (field 5).
pub fn mount_point(p: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = p.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| unescape(m) == want))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Removes a container directory without crossing into other filesystems: anything still
/// mounted below it is detached first, deepest first.
pub fn remove_dir(cdir: &Path) -> Result<(), RootfsError> {
    if !cdir.exists() {
        return Ok(());
    }
    let prefix = format!("{}/", cdir.display());
    if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
        let mut mounts: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(unescape))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            // Best effort: a mount that is already gone is what we want.
            let _ = umount2(Path::new(&m), MntFlags::MNT_DETACH);
        }
    }
    fs::remove_dir_all(cdir).map_err(io_err(cdir))
}
