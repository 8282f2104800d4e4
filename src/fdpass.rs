//! Passing one fd with a few bytes of data over a unix socket (SCM_RIGHTS): the pty master to a
//! console socket, and a seccomp listener from the container to hull and on to the agent.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Connects to the unix socket at `path` and sends `data` and `fd` in one message, as runc's
/// `--pidfd-socket` does (the data says which kind of process: `standard` or `setns`).
pub fn send_to(path: &std::path::Path, data: &[u8], fd: BorrowedFd) -> std::io::Result<()> {
    let socket = std::os::unix::net::UnixStream::connect(path)?;
    send(std::os::fd::AsFd::as_fd(&socket), data, fd).map_err(std::io::Error::from)
}

/// Sends `data` and `fd` in one message.
pub fn send(socket: BorrowedFd, data: &[u8], fd: BorrowedFd) -> nix::Result<()> {
    let fds = [fd.as_raw_fd()];
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(data)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// Receives one message into `buf`: its length and the fd it carried, if any (close-on-exec).
pub fn recv(socket: BorrowedFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            r => break r?,
        }
    };
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: the kernel installed these fds for us; extra ones are closed here.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    Ok((msg.bytes, fd))
}
