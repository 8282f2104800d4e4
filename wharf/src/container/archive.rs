//! Tar streams of container files, shared by `export`, `commit` and `cp`: a directory
//! tree (or a single file) appended under a chosen name, in path order, without
//! following symlinks; for `commit`, overlayfs whiteouts become OCI whiteouts (a 0/0
//! character device `x` becomes an empty `.wh.x`, an opaque directory gets `.wh..wh..opq`).

use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// How to write the tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct TreeOptions {
    /// Convert overlayfs whiteouts (an overlay upper directory).
    pub whiteouts: bool,
    /// Follow a symlink given as the tree's root (`cp -L`).
    pub follow_root: bool,
}

fn empty_header(kind: tar::EntryType, meta: &std::fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(meta.uid() as u64);
    h.set_gid(meta.gid() as u64);
    h.set_mtime(meta.mtime().max(0) as u64);
    h
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    xattr::get(path, "trusted.overlay.opaque")
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y")
}

/// Appends `src` and everything below it as `name` (`""` puts a directory's contents
/// at the top of the archive).
pub fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    src: &Path,
    name: &Path,
    o: TreeOptions,
) -> io::Result<()> {
    b.follow_symlinks(false);
    let walk = walkdir::WalkDir::new(src)
        .follow_root_links(o.follow_root)
        .sort_by_file_name();
    for e in walk {
        let e = e.map_err(io::Error::other)?;
        let rel = e.path().strip_prefix(src).unwrap_or(Path::new(""));
        // Joining an empty path would add a trailing slash.
        let target = if rel.as_os_str().is_empty() {
            name.to_path_buf()
        } else {
            name.join(rel)
        };
        if target.as_os_str().is_empty() {
            continue;
        }
        let meta = if e.depth() == 0 && o.follow_root {
            std::fs::metadata(e.path())?
        } else {
            e.path().symlink_metadata()?
        };
        if o.whiteouts && is_whiteout(&meta) {
            let file = target
                .file_name()
                .map(|n| format!(".wh.{}", n.to_string_lossy()))
                .unwrap_or_default();
            let wh = target.with_file_name(file);
            let mut h = empty_header(tar::EntryType::Regular, &meta);
            b.append_data(&mut h, wh, io::empty())?;
            continue;
        }
        if meta.is_dir() {
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&meta);
            h.set_entry_type(tar::EntryType::Directory);
            // Directory names end with a slash, as in docker's archives.
            let dir_name = format!("{}/", target.display());
            b.append_data(&mut h, dir_name, io::empty())?;
            if o.whiteouts && is_opaque(e.path()) {
                let mut h = empty_header(tar::EntryType::Regular, &meta);
                b.append_data(&mut h, target.join(".wh..wh..opq"), io::empty())?;
            }
        } else if e.depth() == 0 && o.follow_root && meta.is_file() {
            let mut f = std::fs::File::open(e.path())?;
            b.append_file(&target, &mut f)?;
        } else {
            b.append_path_with_name(e.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(data: &[u8]) -> Vec<String> {
        tar::Archive::new(data)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn trees_and_whiteouts_become_tar_entries() {
        let d = tempfile::tempdir().unwrap();
        let up = d.path().join("upper");
        std::fs::create_dir_all(up.join("etc/opq")).unwrap();
        std::fs::write(up.join("etc/new"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", up.join("link")).unwrap();
        // mknod and trusted.* xattrs need root; without it those entries are skipped.
        let whiteout = nix::sys::stat::mknod(
            &up.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .is_ok();
        let opaque = xattr::set(up.join("etc/opq"), "trusted.overlay.opaque", b"y").is_ok();
        let mut b = tar::Builder::new(Vec::new());
        let o = TreeOptions {
            whiteouts: true,
            ..Default::default()
        };
        append_tree(&mut b, &up, Path::new(""), o).unwrap();
        let data = b.into_inner().unwrap();
        let mut want = vec!["etc/"];
        if whiteout {
            want.push("etc/.wh.gone");
        }
        want.extend(["etc/new", "etc/opq/"]);
        if opaque {
            want.push("etc/opq/.wh..wh..opq");
        }
        want.push("link");
        assert_eq!(names(&data), want);
        let mut b = tar::Builder::new(Vec::new());
        append_tree(
            &mut b,
            &up.join("etc/new"),
            Path::new("renamed"),
            TreeOptions::default(),
        )
        .unwrap();
        assert_eq!(names(&b.into_inner().unwrap()), vec!["renamed"]);
    }
}
