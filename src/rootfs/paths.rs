//! maskedPaths and readonlyPaths, applied after pivot_root. A masked file is covered by
//! /dev/null only after checking that /dev/null really is the 1:3 character device
//! (CVE-2025-31133); a masked directory by an empty read-only tmpfs.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor, Mode, SFlag};

use super::{fd_path, options, RootfsError};
use crate::syscall::mount_setattr;

/// Opens `path` without following a final symlink; None when it does not exist.
fn open_path(path: &str) -> Result<Option<OwnedFd>, RootfsError> {
    match open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        // SAFETY: open returned a new fd that nothing else owns.
        Ok(fd) => Ok(Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(RootfsError::sys("opening", path, e)),
    }
}

fn kind(fd: &OwnedFd, path: &str) -> Result<(SFlag, u64), RootfsError> {
    let st = fstat(fd.as_raw_fd()).map_err(|e| RootfsError::sys("stat", path, e))?;
    Ok((
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT,
        st.st_rdev,
    ))
}

/// Masks paths one after the other, as runc does: every masked directory shares one empty
/// read-only tmpfs (one mount instead of one per directory), and a path listed twice is
/// masked once.
#[derive(Default)]
pub struct Masker {
    done: std::collections::HashSet<String>,
    /// The first masked directory, whose tmpfs the others bind.
    empty_dir: Option<String>,
}

impl Masker {
    pub fn mask(&mut self, path: &str) -> Result<(), RootfsError> {
        if !self.done.insert(path.to_string()) {
            return Ok(());
        }
        let Some(fd) = open_path(path)? else {
            return Ok(());
        };
        let target = fd_path(fd.as_raw_fd());
        match kind(&fd, path)?.0 {
            SFlag::S_IFDIR => {
                // The tmpfs is read-only at the superblock, so every bind of it is too.
                let (source, fstype, flags) = match &self.empty_dir {
                    Some(first) => (first.as_str(), None, MsFlags::MS_BIND),
                    None => ("tmpfs", Some("tmpfs"), MsFlags::MS_RDONLY),
                };
                mount(Some(source), &target, fstype, flags, None::<&str>)
                    .map_err(|e| RootfsError::sys("masking", path, e))?;
                self.empty_dir.get_or_insert_with(|| path.to_string());
                Ok(())
            }
            SFlag::S_IFLNK => Ok(()),
            _ => {
                let null = open_path("/dev/null")?.ok_or_else(|| {
                    RootfsError::Refused("masking needs /dev/null, which is missing".into())
                })?;
                let (k, rdev) = kind(&null, "/dev/null")?;
                if k != SFlag::S_IFCHR || major(rdev) != 1 || minor(rdev) != 3 {
                    return Err(RootfsError::Refused(format!(
                        "refusing to mask {path:?}: /dev/null is not the null device (1:3)"
                    )));
                }
                mount(
                    Some(&fd_path(null.as_raw_fd())),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| RootfsError::sys("masking", path, e))
            }
        }
    }
}

pub fn make_readonly(path: &str) -> Result<(), RootfsError> {
    let Some(fd) = open_path(path)? else {
        return Ok(());
    };
    let target = fd_path(fd.as_raw_fd());
    mount(
        Some(&target),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("bind-mounting read-only path", path, e))?;
    let top = open_path(path)?.ok_or_else(|| RootfsError::Refused(format!("{path:?} vanished")))?;
    mount_setattr(top.as_raw_fd(), true, options::ATTR_RDONLY, 0)
        .map_err(|e| RootfsError::sys("making read-only", path, e))
}
