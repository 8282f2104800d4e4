//! Layers a build writes without running anything: COPY and ADD from the context (or
//! from another stage's or image's filesystem) and the directory of a WORKDIR. Sources are
//! read in place, never copied wholesale first; `.dockerignore`d paths are never opened.
//! Each source's content, mode and ownership (never its mtime) go into the step's cache
//! key, so a chmod invalidates and a touch does not (moby#20577).

use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::dockerignore::Matcher;
use crate::image::store::{BlobStore, BlobWriter};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("COPY failed: file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    NotFound(String),
    #[error("COPY failed: forbidden path outside the build context: {0}")]
    Outside(String),
    #[error("When using COPY with more than one source file, the destination must be a directory and end with a /")]
    NotADirectory,
    #[error("invalid --chmod value {0:?}: it must be an octal mode")]
    Chmod(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where sources come from: the context directory (with its ignore rules) or another
/// stage's root filesystem.
pub struct Sources<'a> {
    pub root: &'a Path,
    pub ignore: Option<&'a Matcher>,
}

/// One file or directory to put in the layer: where it is, and where it goes.
#[derive(Debug)]
pub struct Item {
    pub src: PathBuf,
    /// Relative to the context root, for the ignore rules.
    pub rel: String,
    pub dest: String,
    /// A directory whose contents (not itself) go to `dest`.
    pub contents: bool,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Cleans a source path given relative to the sources' root, refusing `..` escapes.
fn clean_rel(src: &str) -> Result<String, LayerError> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(src).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::ParentDir if parts.pop().is_none() => {
                return Err(LayerError::Outside(src.to_string()));
            }
            _ => {}
        }
    }
    Ok(parts.join("/"))
}

/// Joins `dest` to the working directory unless absolute.
pub fn absolute(dest: &str, workdir: &str) -> String {
    if dest.starts_with('/') {
        dest.to_string()
    } else {
        let base = if workdir.is_empty() { "/" } else { workdir };
        format!("{}/{}", base.trim_end_matches('/'), dest)
    }
}

/// Resolves COPY's sources to items, with docker's rules: a directory's contents are
/// copied, a file lands at `dest` or (when `dest` ends in `/` or there are several
/// sources) inside it, and wildcards match within one directory.
pub fn resolve(srcs: &[String], dest: &str, from: &Sources) -> Result<Vec<Item>, LayerError> {
    let mut matched: Vec<(PathBuf, String)> = Vec::new();
    let mut wildcard = false;
    for s in srcs {
        let rel = clean_rel(s)?;
        let (dir, last) = match rel.rsplit_once('/') {
            Some((d, l)) => (d.to_string(), l.to_string()),
            None => (String::new(), rel.clone()),
        };
        if has_glob(&last) {
            wildcard = true;
            let base = from.root.join(&dir);
            let mut names: Vec<String> = std::fs::read_dir(&base)
                .map_err(|_| LayerError::NotFound(s.clone()))?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| super::dockerignore::glob_match(&last, n))
                .collect();
            names.sort();
            let mut any = false;
            for n in names {
                let r = if dir.is_empty() {
                    n.clone()
                } else {
                    format!("{dir}/{n}")
                };
                if from.ignore.is_some_and(|m| m.ignored(&r)) {
                    continue;
                }
                any = true;
                matched.push((from.root.join(&r), r));
            }
            if !any {
                return Err(LayerError::NotFound(s.clone()));
            }
        } else {
            let path = from.root.join(&rel);
            let ignored = !rel.is_empty() && from.ignore.is_some_and(|m| m.ignored(&rel));
            if ignored || std::fs::symlink_metadata(&path).is_err() {
                return Err(LayerError::NotFound(s.clone()));
            }
            matched.push((path, rel));
        }
    }
    let into_dir = dest.ends_with('/') || matched.len() > 1 || wildcard;
    if matched.len() > 1 && !dest.ends_with('/') {
        return Err(LayerError::NotADirectory);
    }
    let dest_dir = dest.trim_end_matches('/');
    Ok(matched
        .into_iter()
        .map(|(src, rel)| {
            let is_dir = std::fs::metadata(&src).is_ok_and(|m| m.is_dir());
            let name = src
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = if is_dir || !into_dir {
                if dest_dir.is_empty() {
                    "/".to_string()
                } else {
                    dest_dir.to_string()
                }
            } else {
                format!("{dest_dir}/{name}")
            };
            Item {
                src,
                rel,
                dest,
                contents: is_dir,
            }
        })
        .collect())
}

/// How entries are owned and moded in the layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub chmod: Option<u32>,
}

pub fn parse_chmod(s: &str) -> Result<u32, LayerError> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| LayerError::Chmod(s.to_string()))
}

/// Everything the items would put in the layer, walked in a stable order: (layer path,
/// source path or None for a parent directory, relative path for the ignore rules).
fn entries(
    items: &[Item],
    ignore: Option<&Matcher>,
) -> Result<Vec<(String, Option<PathBuf>)>, LayerError> {
    let mut out: Vec<(String, Option<PathBuf>)> = Vec::new();
    for it in items {
        let dest = it.dest.trim_start_matches('/').to_string();
        // Parents of the destination, made as docker makes them.
        let parent_of = if it.contents {
            dest.as_str()
        } else {
            dest.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
        };
        out.extend(ancestors(parent_of).map(|a| (a, None)));
        if !it.contents {
            out.push((dest, Some(it.src.clone())));
            continue;
        }
        let walk = walkdir::WalkDir::new(&it.src)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| {
                let Some(m) = ignore else { return true };
                let rel = e.path().strip_prefix(&it.src).unwrap_or(e.path());
                let full = if it.rel.is_empty() {
                    rel.display().to_string()
                } else {
                    format!("{}/{}", it.rel, rel.display())
                };
                // An ignored directory is still walked when a `!` pattern may bring
                // something under it back.
                !m.ignored(&full) || (e.file_type().is_dir() && m.has_exclusions())
            });
        for e in walk {
            let e = e.map_err(|e| LayerError::Io {
                path: it.src.clone(),
                source: e.into(),
            })?;
            let rel = e.path().strip_prefix(&it.src).unwrap_or(e.path());
            if let Some(m) = ignore {
                let full = if it.rel.is_empty() {
                    rel.display().to_string()
                } else {
                    format!("{}/{}", it.rel, rel.display())
                };
                if m.ignored(&full) && !e.file_type().is_dir() {
                    continue;
                }
            }
            let name = if dest.is_empty() {
                rel.display().to_string()
            } else {
                format!("{dest}/{}", rel.display())
            };
            out.push((name, Some(e.path().to_path_buf())));
        }
    }
    out.dedup_by(|a, b| a.0 == b.0 && a.1.is_none() && b.1.is_none());
    Ok(out)
}

/// The cache part of a COPY: every entry's name, type, mode and owner as they will be in
/// the layer, and its content's digest.
pub fn content_key(
    items: &[Item],
    ignore: Option<&Matcher>,
    owner: &Owner,
) -> Result<String, LayerError> {
    let mut h = Sha256::new();
    for (name, src) in entries(items, ignore)? {
        h.update(name.as_bytes());
        h.update([0]);
        let Some(src) = src else {
            h.update(b"parent\0");
            continue;
        };
        let meta = std::fs::symlink_metadata(&src).map_err(io_at(&src))?;
        h.update(format!("{:o}:{}:{}\0", mode_of(&meta, owner), owner.uid, owner.gid).as_bytes());
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&src).map_err(io_at(&src))?;
            h.update(target.as_os_str().as_encoded_bytes());
        } else if meta.is_file() {
            let mut f = std::fs::File::open(&src).map_err(io_at(&src))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f.read(&mut buf).map_err(io_at(&src))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        h.update([0xff]);
    }
    Ok(hex::encode(h.finalize()))
}

fn mode_of(meta: &std::fs::Metadata, owner: &Owner) -> u32 {
    let kind = meta.mode() & 0o170000;
    match owner.chmod {
        Some(m) if !meta.file_type().is_symlink() => kind | m,
        _ => meta.mode(),
    }
}

/// Writes the items as a layer blob; returns its digest (the diff_id) and size.
pub fn write(
    blobs: &BlobStore,
    items: &[Item],
    ignore: Option<&Matcher>,
    owner: &Owner,
) -> Result<(crate::image::digest::Digest, u64), LayerError> {
    let mut b = start(blobs)?;
    b.follow_symlinks(false);
    for (name, src) in entries(items, ignore)? {
        let Some(src) = src else {
            append_dir(&mut b, &name, owner).map_err(io_at(Path::new(&name)))?;
            continue;
        };
        let mut h = tar::Header::new_gnu();
        h.set_uid(owner.uid as u64);
        h.set_gid(owner.gid as u64);
        let meta = std::fs::symlink_metadata(&src).map_err(io_at(&src))?;
        h.set_mode(mode_of(&meta, owner) & 0o7777);
        h.set_mtime(meta.mtime().max(0) as u64);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&src).map_err(io_at(&src))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, &name, &target).map_err(io_at(&src))?;
        } else if meta.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, format!("{name}/"), io::empty())
                .map_err(io_at(&src))?;
        } else if meta.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = std::fs::File::open(&src).map_err(io_at(&src))?;
            b.append_data(&mut h, &name, f).map_err(io_at(&src))?;
        }
    }
    finish(blobs, b)
}

/// Whether `path` is a tar archive ADD unpacks (plain, gzip, zstd or xz), by content.
pub fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 262];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// A layer holding the archive's entries under `dest` (ADD of a local tar).
pub fn write_archive(
    blobs: &BlobStore,
    archive: &Path,
    dest: &str,
) -> Result<(crate::image::digest::Digest, u64), LayerError> {
    let f = std::fs::File::open(archive).map_err(io_at(archive))?;
    let (_, reader) = crate::image::compression::decoder(f).map_err(io_at(archive))?;
    let mut input = tar::Archive::new(reader);
    let mut b = start(blobs)?;
    let dest = dest.trim_matches('/');
    for dir in ancestors(dest) {
        append_dir(&mut b, &dir, &Owner::default()).map_err(io_at(archive))?;
    }
    for e in input.entries().map_err(io_at(archive))? {
        let mut e = e.map_err(io_at(archive))?;
        let path = e.path().map_err(io_at(archive))?.into_owned();
        let rel = clean_rel(&path.to_string_lossy())
            .map_err(|_| LayerError::Outside(path.display().to_string()))?;
        if rel.is_empty() {
            continue;
        }
        let name = if dest.is_empty() {
            rel
        } else {
            format!("{dest}/{rel}")
        };
        let mut h = e.header().clone();
        // Fields some tar writers leave empty would make the layer unreadable.
        if h.uid().is_err() {
            h.set_uid(0);
        }
        if h.gid().is_err() {
            h.set_gid(0);
        }
        if h.mtime().is_err() {
            h.set_mtime(0);
        }
        match h.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(io_at(archive))?
                    .unwrap_or_default()
                    .into_owned();
                b.append_link(&mut h, &name, target)
                    .map_err(io_at(archive))?;
            }
            _ => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).map_err(io_at(archive))?;
                b.append_data(&mut h, &name, data.as_slice())
                    .map_err(io_at(archive))?;
            }
        }
    }
    finish(blobs, b)
}

/// The digest of an archive's bytes, for ADD's cache key.
pub fn file_key(path: &Path) -> Result<String, LayerError> {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).map_err(io_at(path))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_at(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let meta = f.metadata().map_err(io_at(path))?;
    h.update(format!("{:o}", meta.permissions().mode()).as_bytes());
    Ok(hex::encode(h.finalize()))
}

/// A layer with just the directory `path` (a WORKDIR that did not exist).
pub fn write_dir(
    blobs: &BlobStore,
    path: &str,
    owner: &Owner,
) -> Result<(crate::image::digest::Digest, u64), LayerError> {
    let mut b = start(blobs)?;
    for dir in ancestors(path) {
        append_dir(&mut b, &dir, owner).map_err(io_at(Path::new(path)))?;
    }
    finish(blobs, b)
}

/// `a`, `a/b`, `a/b/c` for `/a/b/c`: the directories a path needs, outermost first.
fn ancestors(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|p| !p.is_empty())
        .scan(String::new(), |acc, part| {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            Some(acc.clone())
        })
}

/// A directory entry as docker makes the parents of what it copies: 0755, owned as
/// asked, no time.
fn append_dir<W: Write>(b: &mut tar::Builder<W>, name: &str, owner: &Owner) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(owner.uid as u64);
    h.set_gid(owner.gid as u64);
    h.set_mtime(0);
    h.set_size(0);
    b.append_data(&mut h, format!("{name}/"), io::empty())
}

fn store_error(
    blobs: &BlobStore,
) -> impl FnOnce(crate::image::store::BlobError) -> LayerError + '_ {
    move |e| LayerError::Io {
        path: blobs.root().to_path_buf(),
        source: io::Error::other(e),
    }
}

/// A tar writing into a new blob of the store.
fn start(blobs: &BlobStore) -> Result<tar::Builder<BlobWriter>, LayerError> {
    Ok(tar::Builder::new(
        blobs.writer(None).map_err(store_error(blobs))?,
    ))
}

/// Ends the tar and stores the blob: its digest (the layer's diff_id) and size.
fn finish(
    blobs: &BlobStore,
    b: tar::Builder<BlobWriter>,
) -> Result<(crate::image::digest::Digest, u64), LayerError> {
    let mut w = b.into_inner().map_err(io_at(blobs.root()))?;
    w.flush().map_err(io_at(blobs.root()))?;
    let size = w.written();
    let digest = w.commit().map_err(store_error(blobs))?;
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.txt", "b.txt", "c.md", "dir/x", "dir/sub/y", "big/z"] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f).unwrap();
        }
        d
    }

    fn dests(items: &[Item]) -> Vec<(String, bool)> {
        items.iter().map(|i| (i.dest.clone(), i.contents)).collect()
    }

    #[test]
    fn copy_sources_resolve_like_docker() {
        let d = tree();
        let from = Sources {
            root: d.path(),
            ignore: None,
        };
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // A file to a file name, into a directory, and a directory's contents.
        assert_eq!(
            dests(&resolve(&s(&["a.txt"]), "/app/f", &from).unwrap()),
            [("/app/f".into(), false)]
        );
        assert_eq!(
            dests(&resolve(&s(&["a.txt"]), "/app/", &from).unwrap()),
            [("/app/a.txt".into(), false)]
        );
        assert_eq!(
            dests(&resolve(&s(&["dir"]), "/app", &from).unwrap()),
            [("/app".into(), true)]
        );
        // Wildcards match within one directory, into a directory.
        assert_eq!(
            dests(&resolve(&s(&["*.txt"]), "/app/", &from).unwrap()),
            [("/app/a.txt".into(), false), ("/app/b.txt".into(), false)]
        );
        assert!(matches!(
            resolve(&s(&["a.txt", "b.txt"]), "/app", &from),
            Err(LayerError::NotADirectory)
        ));
        assert!(matches!(
            resolve(&s(&["nope"]), "/app", &from),
            Err(LayerError::NotFound(_))
        ));
        assert!(matches!(
            resolve(&s(&["../x"]), "/app", &from),
            Err(LayerError::Outside(_))
        ));
        let ignore = Matcher::parse("big\n*.md\n").unwrap();
        let from = Sources {
            root: d.path(),
            ignore: Some(&ignore),
        };
        assert!(matches!(
            resolve(&s(&["c.md"]), "/", &from),
            Err(LayerError::NotFound(_))
        ));
        let all = resolve(&s(&["."]), "/app", &from).unwrap();
        let names: Vec<String> = entries(&all, Some(&ignore))
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert!(names.contains(&"app/dir/sub/y".to_string()));
        assert!(
            !names
                .iter()
                .any(|n| n.contains("big") || n.ends_with(".md")),
            "{names:?}"
        );
        assert_eq!(absolute("x", "/w"), "/w/x");
        assert_eq!(absolute("x", ""), "/x");
    }

    #[test]
    fn cache_keys_follow_content_and_mode_not_mtime() {
        let d = tree();
        let from = Sources {
            root: d.path(),
            ignore: None,
        };
        let items = resolve(&["a.txt".to_string()], "/a", &from).unwrap();
        let owner = Owner::default();
        let k1 = content_key(&items, None, &owner).unwrap();
        let f = d.path().join("a.txt");
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(t)
            .unwrap();
        assert_eq!(content_key(&items, None, &owner).unwrap(), k1);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(content_key(&items, None, &owner).unwrap(), k1);
        let chowned = Owner { uid: 7, ..owner };
        assert_ne!(
            content_key(&items, None, &chowned).unwrap(),
            content_key(&items, None, &owner).unwrap()
        );
        assert_eq!(parse_chmod("755").unwrap(), 0o755);
        assert!(parse_chmod("9").is_err());
    }
}
