//! Builds as `docker build` and `POST /build` run them: a context from a directory or
//! from a stream (a tar, plain or compressed, or a Dockerfile alone), then the builder.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::OperationError;
use crate::build::{self, Options};
use crate::context::{Access, Context};
use crate::image::digest::Digest;

/// A context unpacked into the data root for the build's time.
pub struct Unpacked {
    dir: tempfile::TempDir,
    /// The Dockerfile, when the bytes were one and not a tar.
    pub dockerfile_text: Option<String>,
}

impl Unpacked {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The most a context that is not an archive may hold: it is a Dockerfile, read whole.
const MAX_DOCKERFILE: u64 = 4 << 20;

/// The context sent as a stream: a tar is unpacked as it arrives, so a context of any size
/// never sits whole in memory; anything else is the Dockerfile with an empty context
/// (`docker build - < Dockerfile`).
pub fn unpack(root: &Path, mut data: impl Read + Send) -> Result<Unpacked, OperationError> {
    std::fs::create_dir_all(root)?;
    let dir = tempfile::Builder::new()
        .prefix("build-context-")
        .tempdir_in(root)?;
    let reading =
        |e: std::io::Error| OperationError::Invalid(format!("reading the build context: {e}"));
    // Enough of the head to tell: a tar's magic is at byte 257.
    let mut head = Vec::with_capacity(512);
    (&mut data)
        .take(512)
        .read_to_end(&mut head)
        .map_err(reading)?;
    let dockerfile_text = if build::is_context_archive(&head) {
        build::unpack_context(std::io::Cursor::new(head).chain(data), dir.path())
            .map_err(reading)?;
        None
    } else {
        // A short head was the end already; reading on would wait for a second end of
        // input from a terminal.
        if head.len() == 512 {
            data.take(MAX_DOCKERFILE)
                .read_to_end(&mut head)
                .map_err(reading)?;
        }
        if head.len() as u64 > MAX_DOCKERFILE {
            return Err(OperationError::Invalid(format!(
                "the build context is neither a tar archive (plain, gzip, zstd or xz) nor a \
                 Dockerfile: it is over {} MiB",
                MAX_DOCKERFILE >> 20
            )));
        }
        Some(String::from_utf8_lossy(&head).into_owned())
    };
    Ok(Unpacked {
        dir,
        dockerfile_text,
    })
}

/// Runs the build, reporting docker's classic lines to `out`; the image id.
pub fn run(root: &Path, o: &Options, out: &mut dyn FnMut(&str)) -> Result<Digest, OperationError> {
    if !o.context.is_dir() {
        return Err(OperationError::Invalid(format!(
            "unable to prepare context: path {:?} not found",
            o.context.display().to_string()
        )));
    }
    let mut ctx = Context::open(root, Access::Shared)?;
    Ok(build::build(&mut ctx, o, out)?)
}

/// A Dockerfile named relative to the context, as `POST /build`'s `dockerfile` names it.
pub fn dockerfile_in(context: &Path, name: &str) -> Result<PathBuf, OperationError> {
    let p = Path::new(name);
    if p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(OperationError::Invalid(format!(
            "the Dockerfile ({name}) must be within the build context"
        )));
    }
    Ok(context.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Its bytes, then a read error, as a client's connection that breaks.
    struct Breaks(Vec<u8>);

    impl Read for Breaks {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    /// A tar holding a Dockerfile of `FROM `, with its end blocks.
    fn dockerfile_tar() -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        tar.append_data(&mut h, "Dockerfile", &b"FROM "[..])
            .unwrap();
        tar.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, data).unwrap();
        gz.finish().unwrap()
    }

    fn left_over(root: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    }

    /// The message of `unpack`'s refusal of `data`, which must leave nothing in `root`.
    fn refusal(root: &Path, data: impl Read + Send) -> String {
        let e = unpack(root, data).err().expect("a refusal").to_string();
        assert!(left_over(root).is_empty(), "{e}");
        e
    }

    #[test]
    fn a_compressed_context_is_unpacked_from_the_stream() {
        let root = tempfile::tempdir().unwrap();
        let u = unpack(root.path(), &gzip(&dockerfile_tar())[..]).unwrap();
        assert_eq!(u.dockerfile_text, None);
        assert_eq!(
            std::fs::read(u.path().join("Dockerfile")).unwrap(),
            b"FROM "
        );
    }

    #[test]
    fn a_compressed_context_whose_checksum_is_wrong_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let mut gz = gzip(&dockerfile_tar());
        // The trailer is the CRC-32 and the length, 4 bytes each.
        let crc = gz.len() - 8;
        gz[crc] ^= 0xff;
        let e = refusal(root.path(), &gz[..]);
        assert!(
            e.starts_with("reading the build context: after the last entry: "),
            "{e}"
        );
    }

    #[test]
    fn what_follows_a_compressed_archive_is_bounded() {
        let root = tempfile::tempdir().unwrap();
        let mut data = dockerfile_tar();
        data.resize(data.len() + (2 << 20), 0);
        let e = refusal(root.path(), &gzip(&data)[..]);
        assert!(
            e.contains("more than 1024 KiB of data past the archive's end"),
            "{e}"
        );
    }

    #[test]
    fn a_plain_archive_is_not_read_past_its_end() {
        let root = tempfile::tempdir().unwrap();
        let u = unpack(root.path(), Breaks(dockerfile_tar())).unwrap();
        assert_eq!(
            std::fs::read(u.path().join("Dockerfile")).unwrap(),
            b"FROM "
        );
    }

    #[test]
    fn a_dockerfile_alone_is_read_whole_and_an_oversized_one_refused() {
        let root = tempfile::tempdir().unwrap();
        let text = format!("FROM busybox\n{}", "# padding\n".repeat(100));
        let u = unpack(root.path(), text.as_bytes()).unwrap();
        assert_eq!(u.dockerfile_text.as_deref(), Some(text.as_str()));
        drop(u);
        let huge = std::io::repeat(b'x').take(MAX_DOCKERFILE + 1);
        let e = refusal(root.path(), huge);
        assert!(e.contains("neither a tar archive"), "{e}");
    }

    #[test]
    fn a_stream_that_breaks_is_named_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4096);
        h.set_mode(0o644);
        tar.append_data(&mut h, "big", &[0u8; 4096][..]).unwrap();
        let mut head = tar.into_inner().unwrap();
        head.truncate(2048);
        let e = refusal(root.path(), Breaks(head));
        assert_eq!(e, "reading the build context: big: connection reset");
    }
}
