//! The console socket of runc's contract: wharf listens on a unix socket, passes its path
//! as `--console-socket`, and the runtime connects once and sends the pty master as
//! SCM_RIGHTS. The socket file is removed when this is dropped.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use super::ShortDir;

pub struct ConsoleSocket {
    listener: UnixListener,
    dir: ShortDir,
    name: String,
}

impl ConsoleSocket {
    /// Listens on `name` in `dir`.
    pub fn bind(dir: &std::path::Path, name: &str) -> io::Result<Self> {
        let dir = ShortDir::open(dir)?;
        let local = dir.path(name);
        let _ = std::fs::remove_file(&local);
        let listener = UnixListener::bind(&local)?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            dir,
            name: name.to_string(),
        })
    }

    /// The path to give the runtime.
    pub fn path(&self) -> PathBuf {
        self.dir.path_for_others(&self.name)
    }

    /// Waits for the runtime to connect and send the master, for as long as `alive` says
    /// the runtime may still do so.
    pub fn receive(&self, mut alive: impl FnMut() -> bool) -> io::Result<OwnedFd> {
        loop {
            match self.listener.accept() {
                Ok((conn, _)) => return receive_fd(conn.as_fd()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if !alive() {
                // It may have connected just before it exited.
                return match self.listener.accept() {
                    Ok((conn, _)) => receive_fd(conn.as_fd()),
                    Err(_) => Err(io::Error::other(
                        "the runtime exited without sending the console",
                    )),
                };
            }
            let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
            let _ = poll(
                &mut fds,
                PollTimeout::try_from(Duration::from_millis(50)).unwrap_or(PollTimeout::MAX),
            );
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.path(&self.name));
    }
}

/// Receives one descriptor sent with SCM_RIGHTS on a connected socket.
fn receive_fd(sock: std::os::fd::BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(io::Error::other(
        "the console socket message carried no descriptor",
    ))
}
