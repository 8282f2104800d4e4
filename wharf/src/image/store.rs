//! The content store: blobs under `blobs/sha256/<hex>` in an OCI image layout. A blob is
//! written to a temporary file in the same directory tree, its digest checked, synced and
//! then renamed into place, so a reader never sees a partial or wrong blob.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::digest::{Digest, Hashing};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("digest mismatch: expected {expected}, got {actual} ({size} bytes)")]
    Mismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    Size {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} is not in the content store")]
    Missing(Digest),
    #[error("content store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("writing {what} to {path}: {source}")]
    Write {
        what: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("reading the input: {0}")]
    Read(io::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An OCI image layout directory holding blobs.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the layout at `root`, writing the `oci-layout` marker.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        let tmp = root.join("blobs/tmp");
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let marker = root.join("oci-layout");
        if !marker.exists() {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub fn size(&self, d: &Digest) -> Result<u64, BlobError> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BlobError::Missing(d.clone())),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, BlobError> {
        let p = self.path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => BlobError::Missing(d.clone()),
            _ => io_err(&p)(e),
        })
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, BlobError> {
        let mut v = Vec::new();
        self.open_blob(d)?
            .read_to_end(&mut v)
            .map_err(io_err(&self.path(d)))?;
        Ok(v)
    }

    /// Starts writing a blob; its digest is checked against `expected` on commit (or simply
    /// computed when the caller does not know it yet).
    pub fn writer(&self, expected: Option<Digest>) -> Result<BlobWriter, BlobError> {
        let dir = self.root.join("blobs/tmp");
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        Ok(BlobWriter {
            store: self.clone(),
            expected,
            out: Hashing::new(BufWriter::with_capacity(1 << 20, tmp)),
        })
    }

    pub fn put(&self, data: &[u8]) -> Result<Digest, BlobError> {
        let mut w = self.writer(None)?;
        w.write_all(data).map_err(|e| w.write_error(e))?;
        w.commit()
    }

    /// Copies everything from `r` into a blob; returns its digest and size.
    pub fn put_reader(
        &self,
        r: &mut impl Read,
        expected: Option<Digest>,
    ) -> Result<(Digest, u64), BlobError> {
        let mut w = self.writer(expected)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BlobError::Read(e)),
            };
            w.write_all(&buf[..n]).map_err(|e| w.write_error(e))?;
        }
        let n = w.written();
        Ok((w.commit()?, n))
    }

    pub fn remove(&self, d: &Digest) -> Result<(), BlobError> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&p)(e)),
            _ => Ok(()),
        }
    }

    /// Every blob digest present on disk.
    pub fn list(&self) -> Result<Vec<Digest>, BlobError> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Removes temporary files of interrupted writes. Only safe while no other process
    /// writes, which the caller guarantees with the exclusive store lock.
    pub fn clean_tmp(&self) -> Result<(), BlobError> {
        let dir = self.root.join("blobs/tmp");
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let p = e.map_err(io_err(&dir))?.path();
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        Ok(())
    }
}

/// A blob being written. Dropping it without `commit` deletes the temporary file.
pub struct BlobWriter {
    store: BlobStore,
    expected: Option<Digest>,
    out: Hashing<BufWriter<tempfile::NamedTempFile>>,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far, for progress displays.
    pub fn written(&self) -> u64 {
        self.out.count()
    }

    /// A failed write into this blob, naming the blob and the file written (a full disk
    /// reads "writing blob sha256:... to .../blobs/tmp/...: No space left on device").
    pub fn write_error(&self, source: io::Error) -> BlobError {
        BlobError::Write {
            what: self
                .expected
                .as_ref()
                .map_or_else(|| "a blob".to_string(), |d| format!("blob {d}")),
            path: self.out.get_ref().get_ref().path().to_path_buf(),
            source,
        }
    }

    /// Verifies the digest, syncs and renames the blob into place.
    pub fn commit(mut self) -> Result<Digest, BlobError> {
        // Flush first, so a full disk is reported as a failed write of this blob.
        self.out.flush().map_err(|e| self.write_error(e))?;
        let (buf, actual, size) = self.out.finish();
        if let Some(expected) = self.expected {
            if expected != actual {
                return Err(BlobError::Mismatch {
                    expected,
                    actual,
                    size,
                });
            }
        }
        let tmp = buf.into_inner().map_err(|e| {
            let (source, w) = e.into_parts();
            BlobError::Write {
                what: format!("blob {actual}"),
                path: w.get_ref().path().to_path_buf(),
                source,
            }
        })?;
        tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
        let dest = self.store.path(&actual);
        tmp.persist(&dest).map_err(|e| io_err(&dest)(e.error))?;
        Ok(actual)
    }
}

/// How much of a blob `ReadOnce` reads before it lets the kernel drop it.
const DROP_EVERY: u64 = 8 << 20;

/// A stored blob read once, front to back, as an unpack reads a layer, that leaves the page
/// cache as it is read. Nothing reads a layer's compressed blob again while its snapshot is
/// in use, and keeping it cached takes memory that the files being unpacked need: on a large
/// image, every page of it is one more page the kernel must find for them. Stored blobs
/// were synced before they were renamed into place, so their pages are clean and dropping
/// them writes nothing.
pub struct ReadOnce {
    file: File,
    read: u64,
    dropped: u64,
}

impl ReadOnce {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            read: 0,
            dropped: 0,
        })
    }

    /// Asks the kernel to drop what has been read since the last call.
    fn drop_read(&mut self) {
        use std::os::fd::AsRawFd;
        // Only advice: a kernel that keeps the pages costs memory, not correctness.
        let _ = nix::fcntl::posix_fadvise(
            self.file.as_raw_fd(),
            self.dropped as i64,
            (self.read - self.dropped) as i64,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        self.dropped = self.read;
    }
}

impl Read for ReadOnce {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read += n as u64;
        if self.read - self.dropped >= DROP_EVERY || (n == 0 && self.read > self.dropped) {
            self.drop_read();
        }
        Ok(n)
    }
}

/// Writes `data` to `path` through a synced temporary file and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), BlobError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(dir))?;
    tmp.write_all(data).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_size() -> usize {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .unwrap()
            .unwrap() as usize
    }

    /// How many of the file's pages are in the page cache.
    fn resident(f: &File) -> usize {
        use std::os::fd::AsRawFd;
        let len = f.metadata().unwrap().len() as usize;
        let page = page_size();
        // SAFETY: a fresh read-only shared mapping of the whole file, unmapped below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED);
        let mut vec = vec![0u8; len.div_ceil(page)];
        // SAFETY: `vec` has one byte for each page of the mapping.
        let rc = unsafe { libc::mincore(addr, len, vec.as_mut_ptr()) };
        // SAFETY: the mapping made above, not used after this.
        unsafe { libc::munmap(addr, len) };
        assert_eq!(rc, 0, "mincore: {}", io::Error::last_os_error());
        vec.iter().filter(|b| *b & 1 == 1).count()
    }

    #[test]
    fn a_blob_read_once_leaves_the_page_cache() {
        // Beside the test binary rather than in a /tmp that may be tmpfs, whose pages are
        // the file itself and cannot be dropped.
        let exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir_in(exe.parent().unwrap()).unwrap();
        let fs = nix::sys::statfs::statfs(dir.path())
            .unwrap()
            .filesystem_type();
        if fs == nix::sys::statfs::TMPFS_MAGIC {
            eprintln!(
                "SKIPPED: {} is on tmpfs, which keeps every page",
                dir.path().display()
            );
            return;
        }
        let store = BlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..3 * DROP_EVERY + 12345).map(|i| (i * 7) as u8).collect();
        let d = store.put(&data).unwrap();
        let file = File::open(store.path(&d)).unwrap();
        let page = page_size();
        let pages = data.len().div_ceil(page);
        assert_eq!(resident(&file), pages, "a blob just written is cached");
        let mut r = ReadOnce::open(&store.path(&d)).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut back = Vec::new();
        let mut cached_midway = None;
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
            if cached_midway.is_none() && back.len() >= 2 * DROP_EVERY as usize + page {
                cached_midway = Some(resident(&file));
            }
        }
        assert!(back == data, "read back what was stored");
        let midway = cached_midway.unwrap();
        assert!(
            midway <= pages - 2 * DROP_EVERY as usize / page,
            "{midway} of {pages} pages cached after reading two thirds"
        );
        assert_eq!(resident(&file), 0, "pages cached after the last read");
    }
}
