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

/// The context sent as a stream: a tar is unpacked as it arrives, so a context of any size
/// never sits whole in memory; anything else is the Dockerfile with an empty context
/// (`docker build - < Dockerfile`).
pub fn unpack(root: &Path, mut data: impl Read + Send) -> Result<Unpacked, OperationError> {
    std::fs::create_dir_all(root)?;
    let dir = tempfile::Builder::new()
        .prefix("build-context-")
        .tempdir_in(root)?;
    // Enough of the head to tell: a tar's magic is at byte 257.
    let mut head = Vec::with_capacity(512);
    (&mut data).take(512).read_to_end(&mut head)?;
    let dockerfile_text = if build::is_context_archive(&head) {
        build::unpack_context(std::io::Cursor::new(head).chain(data), dir.path())?;
        None
    } else {
        data.read_to_end(&mut head)?;
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
