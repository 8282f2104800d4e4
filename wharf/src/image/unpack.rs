//! Safe, streaming layer unpacking into a directory that holds that one layer's diff in
//! overlayfs form: whiteouts become 0/0 character devices, opaque markers become the
//! `trusted.overlay.opaque` xattr. Nothing a layer contains can create or change a file
//! outside the destination: `..` that climbs above the root is an error, and every parent
//! directory and hardlink source is resolved with `openat2(RESOLVE_IN_ROOT)`, so symlinks
//! (absolute or relative) are followed as if the layer directory were `/`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::mpsc;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::compression;
use super::digest::{Digest, Hashing};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {0:?} escapes the layer directory")]
    Escape(String),
    #[error("layer entry {0:?} is an invalid whiteout")]
    Whiteout(String),
    #[error("layer is not a valid tar stream: {0}")]
    Tar(io::Error),
    #[error("layer entry {path:?}: {op}: {source}")]
    Fs {
        path: String,
        op: &'static str,
        source: io::Error,
    },
}

/// What unpacking a layer measured: the digest and size of the uncompressed tar
/// (the diff_id) and the bytes of file content it holds.
#[derive(Debug, Clone)]
pub struct Unpacked {
    pub diff_id: Digest,
    pub tar_size: u64,
    pub content_size: u64,
}

/// Unpacks a (possibly gzip/zstd/xz compressed) layer tar from `blob` into the existing,
/// empty directory `dest`. Decompression runs on a second thread so that inflating and
/// writing files use both cores.
pub fn unpack_layer<R: Read + Send + 'static>(
    blob: R,
    dest: &Path,
) -> Result<Unpacked, UnpackError> {
    let root = open_dir(dest).map_err(|e| fs_err("", "open destination", e))?;
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
    let producer = std::thread::spawn(move || {
        let mut r = match compression::decoder(blob) {
            Ok((_, r)) => r,
            Err(e) => return drop(tx.send(Err(e))),
        };
        loop {
            let mut buf = vec![0u8; 1 << 18];
            match r.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return drop(tx.send(Err(e))),
            }
        }
    });
    let reader = Hashing::new(ChannelReader {
        rx,
        buf: Vec::new(),
        pos: 0,
    });
    let result = Extractor::new(root).run(reader);
    // On error the receiver is gone and the producer stops at its next send.
    let _ = producer.join();
    result
}

struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.buf = chunk?;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Copies an entry's data into its file, telling a bad layer (read) from a failing
/// destination such as a full disk (write).
fn copy_content(r: &mut impl Read, file: &mut File, display: &str) -> Result<u64, UnpackError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnpackError::Tar(e)),
        };
        file.write_all(&buf[..n])
            .map_err(|e| fs_err(display, "write", e))?;
        total += n as u64;
    }
}

fn fs_err(path: &str, op: &'static str, e: impl Into<io::Error>) -> UnpackError {
    UnpackError::Fs {
        path: path.to_string(),
        op,
        source: e.into(),
    }
}

fn open_dir(p: &Path) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor fresh from a successful open call.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Splits a tar path into clean components, resolving `.` and `..` lexically.
pub fn clean_path(raw: &[u8]) -> Result<Vec<OsString>, UnpackError> {
    let mut out: Vec<OsString> = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(UnpackError::Escape(String::from_utf8_lossy(raw).into()));
                }
            }
            p => out.push(OsString::from_vec(p.to_vec())),
        }
    }
    Ok(out)
}

fn join(parts: &[OsString]) -> OsString {
    let mut s = OsString::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            s.push("/");
        }
        s.push(p);
    }
    s
}

struct Extractor {
    root: OwnedFd,
    /// The most recently opened parent directory, reused by consecutive entries.
    cached: Option<(OsString, OwnedFd)>,
    dir_times: Vec<(OsString, i64)>,
    content_size: u64,
}

impl Extractor {
    fn new(root: OwnedFd) -> Self {
        Self {
            root,
            cached: None,
            dir_times: Vec::new(),
            content_size: 0,
        }
    }

    fn run<R: Read>(mut self, reader: Hashing<R>) -> Result<Unpacked, UnpackError> {
        let mut archive = tar::Archive::new(reader);
        // Where the last entry's data ends in the stream, and the error that ended it early.
        let (mut data_end, mut broken) = (None, None);
        for entry in archive.entries().map_err(UnpackError::Tar)? {
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            };
            data_end = Some(entry.raw_file_position() + entry.size());
            self.entry(&mut entry)?;
        }
        let mut reader = archive.into_inner();
        // The diff_id covers the whole stream, including padding after the end marker.
        io::copy(&mut reader, &mut io::sink()).map_err(UnpackError::Tar)?;
        let (_, diff_id, tar_size) = reader.finish();
        // Go's archive/tar (docker, containerd, podman, umoci) ends a stream that stops right
        // after an entry's data, with no padding or end marker, as a complete archive, and
        // umoci 0.4's `insert` writes layers like that. Any other early end is an error.
        if let Some(e) = broken {
            if data_end != Some(tar_size) {
                return Err(UnpackError::Tar(e));
            }
        }
        self.finish_dirs()?;
        Ok(Unpacked {
            diff_id,
            tar_size,
            content_size: self.content_size,
        })
    }

    /// Opens the directory `parts` inside the root, creating missing directories.
    fn parent(&mut self, parts: &[OsString]) -> Result<RawFd, UnpackError> {
        let key = join(parts);
        if let Some((k, _)) = &self.cached {
            if *k != key {
                self.cached = None;
            }
        }
        if self.cached.is_none() {
            let fd = self.resolve_dir(parts)?;
            self.cached = Some((key, fd));
        }
        Ok(self
            .cached
            .as_ref()
            .map(|(_, fd)| fd.as_raw_fd())
            .unwrap_or(-1))
    }

    fn resolve_dir(&self, parts: &[OsString]) -> Result<OwnedFd, UnpackError> {
        let mut cur = self.root.try_clone().map_err(|e| fs_err("", "dup", e))?;
        for i in 0..parts.len() {
            let prefix = join(&parts[..=i]);
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            cur = match openat2(self.root.as_raw_fd(), prefix.as_os_str(), how) {
                Ok(fd) => owned(fd),
                Err(Errno::ENOENT) => {
                    let name = parts[i].as_os_str();
                    let p = prefix.to_string_lossy();
                    match mkdirat(Some(cur.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(fs_err(&p, "mkdir", e)),
                    }
                    let fd = openat(
                        Some(cur.as_raw_fd()),
                        name,
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| fs_err(&p, "open parent directory", e))?;
                    owned(fd)
                }
                Err(e) => {
                    return Err(fs_err(
                        &prefix.to_string_lossy(),
                        "open parent directory",
                        e,
                    ))
                }
            };
        }
        Ok(cur)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let display = String::from_utf8_lossy(&raw).into_owned();
        let mut parts = clean_path(&raw)?;
        let Some(name) = parts.pop() else {
            // The root directory itself: its metadata belongs to the layer below.
            return Ok(());
        };
        let name_bytes = name.as_bytes();
        if name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&parts, &name, &display);
        }
        let kind = entry.header().entry_type();
        let parent = self.parent(&parts)?;
        let h = entry.header();
        let mode = Mode::from_bits_truncate(h.mode().map_err(UnpackError::Tar)? & 0o7777);
        let uid = Uid::from_raw(h.uid().map_err(UnpackError::Tar)? as u32);
        let gid = Gid::from_raw(h.gid().map_err(UnpackError::Tar)? as u32);
        let mtime = h.mtime().map_err(UnpackError::Tar)? as i64;
        let xattrs = pax_xattrs(entry)?;
        use tar::EntryType as T;
        let is_dir = matches!(kind, T::Directory);
        prepare_target(parent, &name, is_dir).map_err(|e| fs_err(&display, "replace", e))?;
        match kind {
            T::Regular | T::Continuous => {
                let fd = openat(
                    Some(parent),
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| fs_err(&display, "create", e))?;
                let mut file = File::from(owned(fd));
                let want = entry.header().size().map_err(UnpackError::Tar)?;
                let got = copy_content(entry, &mut file, &display)?;
                if got != want {
                    return Err(UnpackError::Tar(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{display}: truncated file data ({got} of {want} bytes)"),
                    )));
                }
                self.content_size += got;
                let fd = file.as_raw_fd();
                fchownat(Some(fd), "", Some(uid), Some(gid), AtFlags::AT_EMPTY_PATH)
                    .map_err(|e| fs_err(&display, "chown", e))?;
                fchmod(fd, mode).map_err(|e| fs_err(&display, "chmod", e))?;
                set_xattrs(&file, &xattrs, &display)?;
                let t = TimeSpec::new(mtime, 0);
                nix::sys::stat::futimens(fd, &t, &t).map_err(|e| fs_err(&display, "utimes", e))?;
            }
            T::Directory => {
                match mkdirat(
                    Some(parent),
                    name.as_os_str(),
                    Mode::from_bits_truncate(0o700),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(fs_err(&display, "mkdir", e)),
                }
                let fd = openat(
                    Some(parent),
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| fs_err(&display, "open directory", e))?;
                let dir = File::from(owned(fd));
                fchownat(
                    Some(dir.as_raw_fd()),
                    "",
                    Some(uid),
                    Some(gid),
                    AtFlags::AT_EMPTY_PATH,
                )
                .map_err(|e| fs_err(&display, "chown", e))?;
                fchmod(dir.as_raw_fd(), mode).map_err(|e| fs_err(&display, "chmod", e))?;
                set_xattrs(&dir, &xattrs, &display)?;
                parts.push(name);
                self.dir_times.push((join(&parts), mtime));
                // The new directory may shadow what the cache points at.
                self.cached = None;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| fs_err(&display, "symlink", io::Error::other("no target")))?;
                symlinkat(OsStr::from_bytes(&target), Some(parent), name.as_os_str())
                    .map_err(|e| fs_err(&display, "symlink", e))?;
                fchownat(
                    Some(parent),
                    name.as_os_str(),
                    Some(uid),
                    Some(gid),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| fs_err(&display, "chown", e))?;
                let t = TimeSpec::new(mtime, 0);
                utimensat(
                    Some(parent),
                    name.as_os_str(),
                    &t,
                    &t,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| fs_err(&display, "utimes", e))?;
                self.cached = None;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| fs_err(&display, "hardlink", io::Error::other("no target")))?;
                let mut tparts = clean_path(&target)?;
                let tname = tparts
                    .pop()
                    .ok_or_else(|| UnpackError::Escape(String::from_utf8_lossy(&target).into()))?;
                let tdir = self.resolve_existing_dir(&tparts, &display)?;
                linkat(
                    Some(tdir.as_raw_fd()),
                    tname.as_os_str(),
                    Some(parent),
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| fs_err(&display, "hardlink", e))?;
            }
            T::Char | T::Block | T::Fifo => {
                let sflag = match kind {
                    T::Char => SFlag::S_IFCHR,
                    T::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = entry
                    .header()
                    .device_major()
                    .map_err(UnpackError::Tar)?
                    .unwrap_or(0);
                let minor = entry
                    .header()
                    .device_minor()
                    .map_err(UnpackError::Tar)?
                    .unwrap_or(0);
                let dev = nix::sys::stat::makedev(major.into(), minor.into());
                mknodat(Some(parent), name.as_os_str(), sflag, mode, dev)
                    .map_err(|e| fs_err(&display, "mknod", e))?;
                fchownat(
                    Some(parent),
                    name.as_os_str(),
                    Some(uid),
                    Some(gid),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| fs_err(&display, "chown", e))?;
                fchmodat(
                    Some(parent),
                    name.as_os_str(),
                    mode,
                    FchmodatFlags::FollowSymlink,
                )
                .map_err(|e| fs_err(&display, "chmod", e))?;
                self.cached = None;
            }
            // Global pax headers and other metadata-only entries carry no file.
            _ => {}
        }
        Ok(())
    }

    /// Opens an existing directory inside the root without creating anything.
    fn resolve_existing_dir(
        &self,
        parts: &[OsString],
        display: &str,
    ) -> Result<OwnedFd, UnpackError> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let path = if parts.is_empty() {
            OsString::from(".")
        } else {
            join(parts)
        };
        openat2(self.root.as_raw_fd(), path.as_os_str(), how)
            .map(owned)
            .map_err(|e| fs_err(display, "hardlink source", e))
    }

    fn whiteout(
        &mut self,
        parts: &[OsString],
        name: &OsStr,
        display: &str,
    ) -> Result<(), UnpackError> {
        let parent = self.parent(parts)?;
        let b = name.as_bytes();
        if b == OPAQUE.as_bytes() {
            let fd = openat(
                Some(parent),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| fs_err(display, "open directory", e))?;
            return xattr::FileExt::set_xattr(&File::from(owned(fd)), OPAQUE_XATTR, b"y")
                .map_err(|e| fs_err(display, "set opaque xattr", e));
        }
        let target = &b[WHITEOUT_PREFIX.len()..];
        if target.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            // Other `.wh..wh.` names are aufs bookkeeping with no meaning for overlay.
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(UnpackError::Whiteout(display.to_string()));
        }
        let target = OsStr::from_bytes(target);
        prepare_target(parent, target, false).map_err(|e| fs_err(display, "replace", e))?;
        mknodat(Some(parent), target, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(|e| fs_err(display, "create whiteout", e))
    }

    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        self.cached = None;
        // Deepest first, so setting a child's time does not disturb its parent's.
        for (path, mtime) in self.dir_times.iter().rev() {
            let how = OpenHow::new()
                .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            // A later entry may have replaced the directory; then its time is not ours to set.
            if let Ok(fd) = openat2(self.root.as_raw_fd(), path.as_os_str(), how) {
                let fd = owned(fd);
                let t = TimeSpec::new(*mtime, 0);
                nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t)
                    .map_err(|e| fs_err(&path.to_string_lossy(), "utimes", e))?;
            }
        }
        Ok(())
    }
}

/// Makes room for a new entry `name` in `parent`; an existing directory is kept when the new
/// entry is a directory too, so that only its metadata changes.
fn prepare_target(parent: RawFd, name: &OsStr, new_is_dir: bool) -> io::Result<()> {
    let st = match fstatat(Some(parent), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    if is_dir && new_is_dir {
        return Ok(());
    }
    if is_dir {
        let fd = owned(openat(
            Some(parent),
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?);
        // remove_dir_all does not follow symlinks inside the tree it removes.
        std::fs::remove_dir_all(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        drop(fd);
        match unlinkat(Some(parent), name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
    } else {
        unlinkat(Some(parent), name, UnlinkatFlags::NoRemoveDir)?;
    }
    Ok(())
}

fn pax_xattrs<R: Read>(entry: &mut tar::Entry<R>) -> Result<Vec<(String, Vec<u8>)>, UnpackError> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(UnpackError::Tar)? {
        for ext in exts {
            let ext = ext.map_err(UnpackError::Tar)?;
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                // overlayfs metadata in a layer could redirect lookups to other layers.
                if !name.starts_with("trusted.overlay.") {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(out)
}

fn set_xattrs(f: &File, xattrs: &[(String, Vec<u8>)], display: &str) -> Result<(), UnpackError> {
    for (k, v) in xattrs {
        xattr::FileExt::set_xattr(f, k, v).map_err(|e| fs_err(display, "set xattr", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// Builds tar headers byte by byte, because tar::Builder refuses the malicious
    /// names these tests need.
    struct Tar(Vec<u8>);

    impl Tar {
        fn new() -> Self {
            Self(Vec::new())
        }
        fn raw(mut self, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Self {
            let mut h = tar::Header::new_ustar();
            h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
            h.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(if kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_mtime(1_000_000);
            h.set_cksum();
            self.0.extend_from_slice(h.as_bytes());
            self.0.extend_from_slice(data);
            self.0.resize(self.0.len().div_ceil(512) * 512, 0);
            self
        }
        fn file(self, name: &str, data: &[u8]) -> Self {
            self.raw(name, tar::EntryType::Regular, "", data)
        }
        fn dir(self, name: &str) -> Self {
            self.raw(name, tar::EntryType::Directory, "", b"")
        }
        fn symlink(self, name: &str, target: &str) -> Self {
            self.raw(name, tar::EntryType::Symlink, target, b"")
        }
        fn hardlink(self, name: &str, target: &str) -> Self {
            self.raw(name, tar::EntryType::Link, target, b"")
        }
        fn done(mut self) -> Vec<u8> {
            self.0.extend_from_slice(&[0u8; 1024]);
            self.0
        }
    }

    /// A sandbox with the layer directory `root/layer` and a sentinel outside it.
    struct Sandbox {
        tmp: tempfile::TempDir,
    }

    impl Sandbox {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            std::fs::create_dir(tmp.path().join("layer")).unwrap();
            std::fs::create_dir(tmp.path().join("outside")).unwrap();
            std::fs::write(tmp.path().join("outside/secret"), b"keep").unwrap();
            Self { tmp }
        }
        fn layer(&self) -> std::path::PathBuf {
            self.tmp.path().join("layer")
        }
        fn unpack(&self, tar: Vec<u8>) -> Result<Unpacked, UnpackError> {
            unpack_layer(io::Cursor::new(tar), &self.layer())
        }
        /// Everything outside the layer directory is as the sandbox made it.
        fn assert_outside_untouched(&self) {
            let names: Vec<_> = std::fs::read_dir(self.tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert_eq!(names.len(), 2, "{names:?}");
            let outside: Vec<_> = std::fs::read_dir(self.tmp.path().join("outside"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(outside, vec![OsString::from("secret")]);
            assert_eq!(
                std::fs::read(self.tmp.path().join("outside/secret")).unwrap(),
                b"keep"
            );
        }
    }

    #[test]
    fn unpacks_files_dirs_links_and_metadata() {
        let sb = Sandbox::new();
        let tar = Tar::new()
            .dir("etc/")
            .file("etc/hostname", b"box\n")
            .symlink("bin/sh", "/bin/busybox")
            .hardlink("etc/hn", "etc/hostname")
            .done();
        let out = sb.unpack(tar.clone()).unwrap();
        assert_eq!(out.diff_id, Digest::of(&tar));
        assert_eq!(out.tar_size, tar.len() as u64);
        assert_eq!(out.content_size, 4);
        let l = sb.layer();
        assert_eq!(std::fs::read(l.join("etc/hostname")).unwrap(), b"box\n");
        let md = std::fs::metadata(l.join("etc/hostname")).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (1000, 1000, 0o644)
        );
        assert_eq!(md.nlink(), 2);
        assert_eq!(std::fs::metadata(l.join("etc")).unwrap().mtime(), 1_000_000);
        assert_eq!(
            std::fs::read_link(l.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        sb.assert_outside_untouched();
    }

    /// The stream cut right after the last entry's data (as umoci 0.4 writes layers), and
    /// cut inside that data.
    fn unpadded_and_truncated() -> (Vec<u8>, Vec<u8>) {
        let full = Tar::new().dir("etc/").file("etc/hostname", b"box\n").done();
        // Two 512-byte headers and the directory's, then 4 bytes of data.
        let data_end = 512 * 2 + 4;
        (full[..data_end].to_vec(), full[..data_end - 1].to_vec())
    }

    #[test]
    fn a_stream_ending_right_after_the_last_data_is_complete_as_go_reads_it() {
        let (unpadded, _) = unpadded_and_truncated();
        let sb = Sandbox::new();
        let out = sb.unpack(unpadded.clone()).unwrap();
        assert_eq!(out.diff_id, Digest::of(&unpadded));
        assert_eq!(out.tar_size, unpadded.len() as u64);
        assert_eq!(
            std::fs::read(sb.layer().join("etc/hostname")).unwrap(),
            b"box\n"
        );
        sb.assert_outside_untouched();
    }

    #[test]
    fn a_stream_cut_inside_data_or_padding_is_refused() {
        let (unpadded, truncated) = unpadded_and_truncated();
        let err = Sandbox::new().unpack(truncated).unwrap_err();
        assert!(matches!(err, UnpackError::Tar(_)), "{err}");
        let mut half_padding = unpadded;
        half_padding.extend_from_slice(&[0; 100]);
        let err = Sandbox::new().unpack(half_padding).unwrap_err();
        assert!(matches!(err, UnpackError::Tar(_)), "{err}");
    }

    #[test]
    fn gzip_and_zstd_layers_hash_the_uncompressed_tar() {
        use std::io::Write;
        let tar = Tar::new().file("a", b"x").done();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        for blob in [gz.finish().unwrap(), zstd::encode_all(&tar[..], 1).unwrap()] {
            let sb = Sandbox::new();
            assert_eq!(sb.unpack(blob).unwrap().diff_id, Digest::of(&tar));
            assert_eq!(std::fs::read(sb.layer().join("a")).unwrap(), b"x");
        }
    }

    #[test]
    fn whiteouts_and_opaque_directories_use_overlay_form() {
        let sb = Sandbox::new();
        sb.unpack(
            Tar::new()
                .file("d/.wh..wh..opq", b"")
                .file("d/.wh.gone", b"")
                .done(),
        )
        .unwrap();
        let md = std::fs::symlink_metadata(sb.layer().join("d/gone")).unwrap();
        assert_eq!(md.mode() & libc::S_IFMT, libc::S_IFCHR);
        assert_eq!(md.rdev(), 0);
        assert_eq!(
            xattr::get(sb.layer().join("d"), OPAQUE_XATTR)
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
    }

    #[test]
    fn dotdot_paths_are_rejected() {
        for name in [
            "../outside/pwned",
            "a/../../outside/pwned",
            "/../outside/pwned",
        ] {
            let sb = Sandbox::new();
            let err = sb.unpack(Tar::new().file(name, b"x").done()).unwrap_err();
            assert!(matches!(err, UnpackError::Escape(_)), "{name}: {err}");
            sb.assert_outside_untouched();
        }
    }

    #[test]
    fn absolute_symlink_then_write_through_it_stays_inside() {
        let sb = Sandbox::new();
        let outside = sb.tmp.path().join("outside");
        let tar = Tar::new()
            .symlink("evil", outside.to_str().unwrap())
            .file("evil/pwned", b"x")
            .done();
        // Resolved inside the layer, the target directory does not exist there, so the
        // write either lands inside the layer or fails; it never reaches `outside`.
        let _ = sb.unpack(tar);
        sb.assert_outside_untouched();
    }

    #[test]
    fn relative_symlinked_parent_is_contained() {
        let sb = Sandbox::new();
        let tar = Tar::new()
            .dir("sub/")
            .symlink("sub/up", "../../../outside")
            .file("sub/up/pwned", b"x")
            .done();
        let _ = sb.unpack(tar);
        sb.assert_outside_untouched();
        let sb = Sandbox::new();
        let tar = Tar::new()
            .symlink("root", "/")
            .dir("inner/")
            .file("root/inner/f", b"x")
            .done();
        sb.unpack(tar).unwrap();
        assert_eq!(std::fs::read(sb.layer().join("inner/f")).unwrap(), b"x");
        sb.assert_outside_untouched();
    }

    #[test]
    fn hardlinks_pointing_outside_are_contained() {
        let sb = Sandbox::new();
        let err = sb
            .unpack(Tar::new().hardlink("h", "../outside/secret").done())
            .unwrap_err();
        assert!(matches!(err, UnpackError::Escape(_)), "{err}");
        let sb = Sandbox::new();
        let outside = sb.tmp.path().join("outside");
        let tar = Tar::new()
            .symlink("o", outside.to_str().unwrap())
            .hardlink("h", "o/secret")
            .done();
        assert!(sb.unpack(tar).is_err());
        assert!(!sb.layer().join("h").exists());
        sb.assert_outside_untouched();
        let md = std::fs::metadata(sb.tmp.path().join("outside/secret")).unwrap();
        assert_eq!(md.nlink(), 1);
    }

    #[test]
    fn whiteout_of_dotdot_is_rejected() {
        for name in ["d/.wh...", "d/.wh..", "d/.wh."] {
            let sb = Sandbox::new();
            let err = sb.unpack(Tar::new().file(name, b"").done()).unwrap_err();
            assert!(matches!(err, UnpackError::Whiteout(_)), "{name}: {err}");
            sb.assert_outside_untouched();
        }
    }

    #[test]
    fn symlink_replaced_by_file_does_not_write_through() {
        let sb = Sandbox::new();
        let secret = sb.tmp.path().join("outside/secret");
        let tar = Tar::new()
            .symlink("f", secret.to_str().unwrap())
            .file("f", b"new")
            .done();
        sb.unpack(tar).unwrap();
        assert_eq!(std::fs::read(sb.layer().join("f")).unwrap(), b"new");
        sb.assert_outside_untouched();
    }

    #[test]
    fn truncated_and_corrupt_layers_fail() {
        let tar = Tar::new().file("a", &[7u8; 5000]).done();
        let sb = Sandbox::new();
        assert!(sb.unpack(tar[..2000].to_vec()).is_err());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let sb = Sandbox::new();
        assert!(sb.unpack(gz[..gz.len() / 2].to_vec()).is_err());
        let sb = Sandbox::new();
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 6] ^= 0xff;
        assert!(sb.unpack(bad).is_err());
    }

    #[test]
    fn setuid_mode_survives_chown() {
        let sb = Sandbox::new();
        let mut h = tar::Header::new_ustar();
        h.set_path("su").unwrap();
        h.set_size(0);
        h.set_mode(0o4755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b""[..]).unwrap();
        sb.unpack(b.into_inner().unwrap()).unwrap();
        let mode = std::fs::metadata(sb.layer().join("su"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o4755);
    }
}
