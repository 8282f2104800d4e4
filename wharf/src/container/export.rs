//! `export`: a container's merged filesystem (image layers, init layer and its changes,
//! without the mounts the runtime adds inside the container) as one tar stream.

use std::io::Write;
use std::path::Path;

use super::archive::{append_tree, TreeOptions};
use super::rootfs::{Mounted, RootfsError};
use super::Container;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("writing the archive: {0}")]
    Write(std::io::Error),
}

pub fn export(root: &Path, c: &Container, out: impl Write) -> Result<(), ExportError> {
    let m = Mounted::new(root, c)?;
    let mut b = tar::Builder::new(out);
    append_tree(&mut b, m.path(), Path::new(""), TreeOptions::default())
        .map_err(ExportError::Write)?;
    b.finish().map_err(ExportError::Write)?;
    Ok(())
}
