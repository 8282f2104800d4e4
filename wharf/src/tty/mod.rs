//! Terminal plumbing for `-t`: the console socket through which the runtime hands over a
//! container's pty master, window sizes and raw mode on the user's terminal, and docker's
//! detach keys.

pub mod console;
pub mod detach;
pub mod term;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A directory held open so sockets in it can be named by a short
/// `/proc/<pid>/fd/<n>/<name>` path: a socket path is limited to 108 bytes and container
/// directories are deeper than that under some data roots.
pub struct ShortDir {
    fd: OwnedFd,
}

impl ShortDir {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let fd = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        // SAFETY: open returned a new descriptor that nothing else owns.
        Ok(Self {
            fd: unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) },
        })
    }

    /// `name` inside the directory, for this process.
    pub fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}/{name}", self.fd.as_raw_fd()))
    }

    /// `name` inside the directory, for other processes (as long as we live).
    pub fn path_for_others(&self, name: &str) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}/{name}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}
