//! `cp`: copies between a container's filesystem (running or stopped) and the host, with
//! docker's archive semantics: an existing destination directory receives the source
//! under its own name, a missing destination is created with the source's content, a
//! source ending in `/.` copies a directory's content, and `-` is a tar stream on
//! stdin or stdout. Paths in the container are resolved with the container's root as
//! `/`, so no symlink in it leads out to the host; extraction refuses entries that would
//! land outside the destination. Ownership is kept only with `-a`; otherwise the copy
//! belongs to the caller (root).

use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::archive::{append_tree, TreeOptions};
use super::rootfs::{self, Mounted, RootfsError};
use super::Container;

#[derive(Debug, thiserror::Error)]
pub enum CpError {
    #[error("Could not find the file {path} in container {container}")]
    NotInContainer { path: String, container: String },
    #[error("{0}: no such file or directory")]
    NoSuchFile(String),
    #[error("destination \"{0}\" must be a directory")]
    NotADirectory(String),
    #[error("cannot copy a directory to a file: {0}")]
    DirectoryToFile(String),
    #[error("too many levels of symbolic links resolving {0}")]
    Loop(String),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// `path` as the container sees it, resolved under `root` without leaving it; the last
/// component is followed only when `follow_last`.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, CpError> {
    let mut todo: Vec<String> = components(path);
    todo.reverse();
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        match name.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let next = cur.join(&name);
        let full = root.join(&next);
        let is_link = full
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        if is_link && (follow_last || !todo.is_empty()) {
            links += 1;
            if links > 40 {
                return Err(CpError::Loop(path.to_string()));
            }
            let target = std::fs::read_link(&full)?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                cur = PathBuf::new();
            }
            todo.extend(components(&target).into_iter().rev());
        } else {
            cur = next;
        }
    }
    Ok(root.join(cur))
}

fn components(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// One side of a copy.
pub enum Endpoint<'a> {
    /// A path on the host.
    Host(&'a Path),
    /// A path in the container.
    Container(&'a str),
}

pub struct Options {
    /// Keep uid and gid (`-a`).
    pub archive: bool,
    /// Follow a symlink given as the source (`-L`).
    pub follow: bool,
}

/// Where a resolved source lands: the directory to extract into and the name it gets.
fn plan(
    src: &Path,
    src_text: &str,
    dest: &Path,
    dest_text: &str,
) -> Result<(PathBuf, PathBuf), CpError> {
    let src_is_dir = src.is_dir();
    let contents_only = src_is_dir && (src_text.ends_with("/.") || src_text == ".");
    let base = src
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    match dest.symlink_metadata() {
        Ok(m) if dest.is_dir() || m.is_dir() => {
            let name = if contents_only { PathBuf::new() } else { base };
            Ok((dest.to_path_buf(), name))
        }
        Ok(_) if src_is_dir => Err(CpError::DirectoryToFile(dest_text.to_string())),
        Ok(_) => Ok((parent(dest), file_name(dest))),
        Err(_) if dest_text.ends_with('/') && !src_is_dir => {
            Err(CpError::NotADirectory(dest_text.to_string()))
        }
        Err(_) => {
            let dir = parent(dest);
            if !dir.is_dir() {
                return Err(CpError::NoSuchFile(dest_text.to_string()));
            }
            if contents_only {
                std::fs::create_dir(dest)?;
                return Ok((dest.to_path_buf(), PathBuf::new()));
            }
            Ok((dir, file_name(dest)))
        }
    }
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn file_name(p: &Path) -> PathBuf {
    p.file_name().map(PathBuf::from).unwrap_or_default()
}

fn extract(r: impl Read, dir: &Path, o: &Options) -> Result<(), CpError> {
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_mtime(true);
    a.set_overwrite(true);
    a.set_preserve_ownerships(o.archive);
    a.unpack(dir).map_err(|e| {
        // tar's message names the file; its cause says what went wrong.
        match std::error::Error::source(&e) {
            Some(cause) => io::Error::new(e.kind(), format!("{e}: {cause}")),
            None => e,
        }
    })?;
    Ok(())
}

/// Writes `src` as `name` into a temporary archive, rewound for reading.
fn archive(src: &Path, name: &Path, o: &Options) -> Result<std::fs::File, CpError> {
    let mut tmp = tempfile::tempfile()?;
    {
        let mut b = tar::Builder::new(&mut tmp);
        let t = TreeOptions {
            follow_root: o.follow,
            ..Default::default()
        };
        append_tree(&mut b, src, name, t)?;
        b.finish()?;
    }
    tmp.rewind()?;
    Ok(tmp)
}

/// Copies the content of directory `src` into directory `dest` with ownership, modes and
/// times, and gives `dest` the owner and mode of `src` (a volume filled from its image).
pub fn copy_contents(src: &Path, dest: &Path) -> Result<(), CpError> {
    let o = Options {
        archive: true,
        follow: false,
    };
    extract(archive(src, Path::new(""), &o)?, dest, &o)?;
    let meta = src.metadata()?;
    std::os::unix::fs::chown(dest, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(dest, meta.permissions())?;
    Ok(())
}

/// The container's filesystem as its processes see it: the overlay with its bind mounts
/// and volumes over it. Those mounts are made in a mount namespace of this process's own,
/// so the host never sees them and they go when `cp` exits.
fn mounted_with_volumes(root: &Path, c: &Container) -> Result<Mounted, CpError> {
    let binds: Vec<_> = c.spec.mounts.iter().filter(|m| m.kind != "tmpfs").collect();
    if binds.is_empty() {
        return Ok(Mounted::new(root, c)?);
    }
    rootfs::private_mount_namespace()?;
    let m = Mounted::new(root, c)?;
    // Shortest destination first, so a mount inside another lands on top of it.
    for b in binds {
        let target = resolve_in_root(m.path(), &b.destination, true)?;
        let source = Path::new(&b.source);
        if !target.exists() {
            // The runtime makes the mount point on start; a never-started container's is
            // made here the same way.
            if source.is_dir() {
                std::fs::create_dir_all(&target)?;
            } else {
                std::fs::create_dir_all(parent(&target))?;
                std::fs::File::create(&target)?;
            }
        }
        rootfs::bind(source, &target, b.rw)?;
    }
    Ok(m)
}

/// What docker's `X-Docker-Container-Path-Stat` says of a path in the container: its
/// name, size, Go `FileMode` bits, modification time and link target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `fs.FileMode` for a Unix mode: the permission bits plus Go's type and special bits.
fn go_file_mode(mode: u32) -> u32 {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        _ => 0,
    };
    let special = [
        (libc::S_ISUID, 1 << 23),
        (libc::S_ISGID, 1 << 22),
        (libc::S_ISVTX, 1 << 20),
    ]
    .iter()
    .filter(|(bit, _)| mode & bit != 0)
    .fold(0, |acc, (_, go)| acc | go);
    kind | special | (mode & 0o777)
}

/// Stats `path_text` inside the container (a symlink itself, not its target).
pub fn stat(root: &Path, c: &Container, path_text: &str) -> Result<PathStat, CpError> {
    use std::os::unix::fs::MetadataExt;
    let m = mounted_with_volumes(root, c)?;
    let p = resolve_in_root(m.path(), path_text, false)?;
    let meta = p.symlink_metadata().map_err(|_| CpError::NotInContainer {
        path: path_text.to_string(),
        container: c.id.clone(),
    })?;
    let link_target = if meta.file_type().is_symlink() {
        std::fs::read_link(&p)
            .map(|t| t.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = chrono::DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec() as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    Ok(PathStat {
        name: Path::new(path_text)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into()),
        size: meta.len(),
        mode: go_file_mode(meta.mode()),
        mtime,
        link_target,
    })
}

/// Copies out of the container into `dest` (a host path, or `out` for `-`).
pub fn copy_out(
    root: &Path,
    c: &Container,
    src_text: &str,
    dest: Option<&Path>,
    out: &mut dyn Write,
    o: &Options,
) -> Result<(), CpError> {
    let m = mounted_with_volumes(root, c)?;
    let src = resolve_in_root(m.path(), src_text, o.follow)?;
    if src.symlink_metadata().is_err() {
        return Err(CpError::NotInContainer {
            path: src_text.to_string(),
            container: c.id.clone(),
        });
    }
    match dest {
        None => {
            let name = src.file_name().map(PathBuf::from).unwrap_or_default();
            let mut a = archive(&src, &name, o)?;
            io::copy(&mut a, out)?;
            out.flush()?;
        }
        Some(dest) => {
            let (dir, name) = plan(&src, src_text, dest, &dest.to_string_lossy())?;
            extract(archive(&src, &name, o)?, &dir, o)?;
        }
    }
    Ok(())
}

/// Copies `src` (a host path, or `input` for `-`) into the container at `dest_text`.
pub fn copy_in(
    root: &Path,
    c: &Container,
    src: Option<&Path>,
    input: &mut dyn Read,
    dest_text: &str,
    o: &Options,
) -> Result<(), CpError> {
    let m = mounted_with_volumes(root, c)?;
    let dest = resolve_in_root(m.path(), dest_text, true)?;
    match src {
        None => {
            if !dest.is_dir() {
                return Err(CpError::NotADirectory(dest_text.to_string()));
            }
            extract(input, &dest, o)
        }
        Some(src) => {
            if src.symlink_metadata().is_err() {
                return Err(CpError::NoSuchFile(src.display().to_string()));
            }
            let (dir, name) = plan(src, &src.to_string_lossy(), &dest, dest_text)?;
            extract(archive(src, &name, o)?, &dir, o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc/sub")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("etc/sub/up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/abs/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(r, "/etc/sub/up/etc", true).unwrap(),
            r.join("etc")
        );
        assert_eq!(resolve_in_root(r, "../../x", true).unwrap(), r.join("x"));
        assert_eq!(resolve_in_root(r, "/abs", false).unwrap(), r.join("abs"));
        assert!(matches!(
            resolve_in_root(r, "/loop", true),
            Err(CpError::Loop(_))
        ));
    }

    #[test]
    fn destinations_follow_docker_rules() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("srcdir")).unwrap();
        std::fs::write(r.join("file"), "x").unwrap();
        std::fs::create_dir(r.join("dest")).unwrap();
        let p = |s: &str| r.join(s);
        assert_eq!(
            plan(&p("file"), "file", &p("dest"), "dest").unwrap(),
            (p("dest"), "file".into())
        );
        assert_eq!(
            plan(&p("file"), "file", &p("new"), "new").unwrap(),
            (r.to_path_buf(), "new".into())
        );
        assert_eq!(
            plan(&p("srcdir"), "srcdir/.", &p("dest"), "dest").unwrap(),
            (p("dest"), PathBuf::new())
        );
        assert!(matches!(
            plan(&p("srcdir"), "srcdir", &p("file"), "file"),
            Err(CpError::DirectoryToFile(_))
        ));
        assert!(matches!(
            plan(&p("file"), "file", &p("nodir/x"), "nodir/x"),
            Err(CpError::NoSuchFile(_))
        ));
        assert!(matches!(
            plan(&p("file"), "file", &p("newdir/"), "newdir/"),
            Err(CpError::NotADirectory(_))
        ));
    }
}
