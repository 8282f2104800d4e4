//! The user's terminal: window sizes (TIOCGWINSZ/TIOCSWINSZ) and raw mode for the time a
//! container's terminal is attached, restored on drop.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

/// Rows and columns of the terminal on `fd`, if it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the local.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut ws) }.ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Sets the size of the terminal on `fd` (a pty master), which signals SIGWINCH to its
/// foreground process group.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the local.
    unsafe { tiocswinsz(fd.as_raw_fd(), &ws) }.map(drop)
}

pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false)
}

/// A terminal in raw mode until dropped.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts the terminal on `fd` in raw mode; None when `fd` is not a terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> nix::Result<Option<Self>> {
        if !is_terminal(fd) {
            return Ok(None);
        }
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)?;
        Ok(Some(Self {
            fd: fd
                .try_clone_to_owned()
                .map_err(|_| nix::errno::Errno::EBADF)?,
            saved,
        }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
