//! The rootfs set-up's error: which operation on which path failed, and why.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{what} {path:?}: {}", crate::syscall::errno_text(*source))]
    Sys {
        what: String,
        path: PathBuf,
        source: Errno,
    },
    #[error("{what} {path:?}: {source}")]
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("resolving {path:?} inside the rootfs: {source}")]
    Resolve {
        path: PathBuf,
        source: pathrs::error::Error,
    },
    #[error("resolving {path:?} inside the rootfs: {}", crate::syscall::errno_text(*source))]
    Lookup { path: PathBuf, source: Errno },
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    #[error("{0}")]
    Refused(String),
}

impl RootfsError {
    pub fn sys(what: impl Into<String>, path: impl AsRef<Path>, source: Errno) -> Self {
        RootfsError::Sys {
            what: what.into(),
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn io(what: impl Into<String>, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        RootfsError::Io {
            what: what.into(),
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn resolve(path: impl AsRef<Path>, source: pathrs::error::Error) -> Self {
        RootfsError::Resolve {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}
