//! Passing fds with a few bytes of data over a unix socket (SCM_RIGHTS): the pty master to a
//! console socket, a seccomp listener from the container to hull and on to the agent, and
//! what hull's side makes for the container's init (mount sources, its cgroup's files).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// The most fds one message carries: two per cgroup hierarchy at most.
const MAX_FDS: usize = 64;

/// Connects to the unix socket at `path` and sends `data` and `fd` in one message, as runc's
/// `--pidfd-socket` does (the data says which kind of process: `standard` or `setns`).
pub fn send_to(path: &std::path::Path, data: &[u8], fd: BorrowedFd) -> std::io::Result<()> {
    let socket = std::os::unix::net::UnixStream::connect(path)?;
    send(std::os::fd::AsFd::as_fd(&socket), data, fd).map_err(std::io::Error::from)
}

/// Sends `data` and `fd` in one message.
pub fn send(socket: BorrowedFd, data: &[u8], fd: BorrowedFd) -> nix::Result<()> {
    send_fds(socket, data, &[fd])
}

/// Sends `data` and `fds` (at most 64) in one message.
pub fn send_fds(socket: BorrowedFd, data: &[u8], fds: &[BorrowedFd]) -> nix::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(data)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// Receives one message into `buf`: its length and the first fd it carried, if any
/// (close-on-exec); any others are closed.
pub fn recv(socket: BorrowedFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    recv_fds(socket, buf).map(|(n, fds)| (n, fds.into_iter().next()))
}

/// The length of the next message on a datagram or seqpacket socket, waiting for one; 0 when
/// the peer has gone (or for an empty message, which callers must not send). The message
/// stays queued, and any fds it carries stay with it.
pub fn pending_len(socket: BorrowedFd) -> nix::Result<usize> {
    loop {
        match nix::sys::socket::recv(
            socket.as_raw_fd(),
            &mut [],
            MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
        ) {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// The next message on a datagram or seqpacket socket, whole, with the fds it carried, in
/// order (close-on-exec); `None` once the peer has gone. The length is peeked first and the
/// buffer sized to it: no message is cut short, and none costs a buffer for the largest (64
/// KiB zeroed on every receive cost hull's parent and init 16 page faults each per start).
pub fn recv_message(socket: BorrowedFd) -> nix::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    match pending_len(socket)? {
        0 => Ok(None),
        len => recv_exact(socket, len).map(Some),
    }
}

/// Receives the next message, `len` bytes long as `pending_len` gave it.
pub fn recv_exact(socket: BorrowedFd, len: usize) -> nix::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; len];
    let (n, fds) = recv_fds(socket, &mut buf)?;
    buf.truncate(n);
    Ok((buf, fds))
}

/// Receives one message into `buf`: its length and the fds it carried, in order
/// (close-on-exec).
pub fn recv_fds(socket: BorrowedFd, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
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
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel installed these fds for us.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok((msg.bytes, fds))
}
