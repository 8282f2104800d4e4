//! Terminals: the container's pty (opened inside the container's devpts), /dev/console bound
//! from the pty fd itself (CVE-2025-52565), the console socket protocol (one message: the pty
//! name as data, the master as SCM_RIGHTS), and raw-mode helpers for `run -t`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, Winsize};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::unistd::{dup2, setsid};

#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    #[error("{what}: {source}")]
    Sys { what: String, source: Errno },
    #[error("console socket {path:?}: {source}")]
    Connect {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("console socket: no pty master in the message")]
    NoFd,
}

fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> TtyError {
    let what = what.into();
    move |source| TtyError::Sys { what, source }
}

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, Winsize);
nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, Winsize);

/// A pty pair opened in the container.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub name: String,
}

/// Opens a pty from the container's /dev/ptmx (so it belongs to the container's devpts).
pub fn open_pty(size: Option<(u16, u16)>) -> Result<Pty, TtyError> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys("opening /dev/ptmx"))?;
    grantpt(&master).map_err(sys("grantpt"))?;
    unlockpt(&master).map_err(sys("unlockpt"))?;
    let name = ptsname_r(&master).map_err(sys("ptsname"))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys(format!("opening {name}")))?;
    // SAFETY: open returned a new fd.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    // SAFETY: posix_openpt's fd is owned by the PtyMaster we unwrap here.
    let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
    if let Some((rows, cols)) = size {
        resize(master.as_fd(), rows, cols)?;
    }
    Ok(Pty {
        master,
        slave,
        name,
    })
}

pub fn resize(fd: BorrowedFd, rows: u16, cols: u16) -> Result<(), TtyError> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a live Winsize.
    unsafe { set_winsize(fd.as_raw_fd(), &ws) }
        .map(drop)
        .map_err(sys("setting the terminal size"))
}

/// The window size of a terminal, if `fd` is one.
pub fn size_of(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes into a live Winsize.
    unsafe { get_winsize(fd, &mut ws) }.ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// A session of its own, which runc gives every container process, with a terminal or not:
/// the session's leader is then inside the container (CRIU cannot dump a process whose
/// session leader is outside its pid namespace), and the caller's terminal does not signal it.
pub fn new_session() -> Result<(), TtyError> {
    setsid().map(drop).map_err(sys("setsid"))
}

/// Makes the pty's slave the controlling terminal and stdio of this process.
pub fn make_controlling(pty: &Pty) -> Result<(), TtyError> {
    new_session()?;
    // SAFETY: TIOCSCTTY takes an integer argument.
    Errno::result(unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCSCTTY, 0) })
        .map_err(sys("making the pty the controlling terminal"))?;
    for fd in 0..=2 {
        dup2(pty.slave.as_raw_fd(), fd).map_err(sys("dup2 of the pty"))?;
    }
    Ok(())
}

/// The container's terminal: controlling tty and stdio, and bound onto /dev/console through the
/// fd, never through a path the container could swap.
pub fn attach(pty: &Pty) -> Result<(), TtyError> {
    make_controlling(pty)?;
    let target = console_target().map_err(sys("preparing /dev/console"))?;
    mount(
        Some(&crate::rootfs::fd_path(pty.slave.as_raw_fd())),
        &crate::rootfs::fd_path(target.as_raw_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(sys("bind-mounting the pty onto /dev/console"))
}

/// An O_PATH handle on a plain /dev/console to mount over. Whatever the image put there (a
/// symlink to a /proc file, say) is replaced, never followed (CVE-2025-52565).
fn console_target() -> Result<OwnedFd, Errno> {
    use nix::fcntl::open;
    use nix::sys::stat::{fstat, Mode, SFlag};
    let path = "/dev/console";
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if let Ok(fd) = open(path, flags, Mode::empty()) {
        // SAFETY: open returned a new fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let kind = SFlag::from_bits_truncate(fstat(fd.as_raw_fd())?.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFREG || kind == SFlag::S_IFCHR {
            return Ok(fd);
        }
        nix::unistd::unlink(path)?;
    }
    let created = open(
        path,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_WRONLY,
        Mode::from_bits_truncate(0o600),
    )?;
    nix::unistd::close(created)?;
    // SAFETY: open returned a new fd.
    open(path, flags, Mode::empty()).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Turns off ONLCR on a pty, as runc does for the terminals it proxies: the container's `\n`
/// then reaches the caller as `\n`, not `\r\n`.
pub fn clear_onlcr(fd: BorrowedFd) -> Result<(), TtyError> {
    use nix::sys::termios::OutputFlags;
    let mut t = tcgetattr(fd).map_err(sys("reading the terminal's settings"))?;
    t.output_flags.remove(OutputFlags::ONLCR);
    tcsetattr(fd, SetArg::TCSANOW, &t).map_err(sys("clearing ONLCR"))
}

/// Connects to a `--console-socket`.
pub fn connect(path: &Path) -> Result<OwnedFd, TtyError> {
    UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(|source| TtyError::Connect {
            path: path.to_path_buf(),
            source,
        })
}

/// Sends the pty master over the console socket, as runc does: one message, the pty's name as
/// data and the master as the only fd.
pub fn send_master(socket: BorrowedFd, name: &str, master: BorrowedFd) -> Result<(), TtyError> {
    crate::fdpass::send(socket, name.as_bytes(), master)
        .map_err(sys("sending the pty master over the console socket"))
}

/// Receives a pty master sent by `send_master`.
pub fn recv_master(socket: BorrowedFd) -> Result<OwnedFd, TtyError> {
    let mut buf = [0u8; 4096];
    match crate::fdpass::recv(socket, &mut buf).map_err(sys("receiving the pty master"))? {
        (_, Some(fd)) => Ok(fd),
        (_, None) => Err(TtyError::NoFd),
    }
}

/// Puts the terminal on `fd` in raw mode; the returned guard restores it.
pub struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl RawMode {
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: fd is stdin, open for the life of the process.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let saved = tcgetattr(borrowed).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(borrowed, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: as in enter.
        let borrowed = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = tcsetattr(borrowed, SetArg::TCSANOW, &self.saved);
    }
}
