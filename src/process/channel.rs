//! The parent <-> child channel: typed messages over a SOCK_SEQPACKET socketpair, one message per
//! packet, so the child can report exactly which step failed and why.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

/// What the container side reports when a step of its set-up fails.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{step}: {message}")]
pub struct InitFailure {
    pub step: String,
    pub message: String,
}

/// Tags an error with the set-up step it came from.
pub trait Step<T> {
    fn step(self, step: &str) -> Result<T, InitFailure>;
}

impl<T, E: std::fmt::Display> Step<T> for Result<T, E> {
    fn step(self, step: &str) -> Result<T, InitFailure> {
        self.map_err(|e| InitFailure {
            step: step.to_string(),
            message: e.to_string(),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Message {
    /// Parent -> child: the awaited work is done (cgroup joined, id maps written, hooks run).
    Proceed,
    /// Child -> parent: a new user namespace exists; write its uid/gid maps.
    WriteIdMaps,
    /// Child -> parent: the container's init, forked into the new pid or time namespace.
    InitPid(i32),
    /// Parent -> child, instead of Proceed when init joins a cgroup made after the clone
    /// (`cgroups::Join::BySelf`): the cgroup is ready. Attached are `tasks` fds, the v1
    /// `tasks` files in `Join::BySelf`'s order, open for writing; then, when `cgroupfs` names
    /// hierarchies, init's cgroupfs mount made ahead (`cgroups::CgroupFs`): its tmpfs, and a
    /// bind of the cgroup for each name, in order.
    CgroupMade {
        tasks: usize,
        cgroupfs: Option<Vec<String>>,
    },
    /// Child -> parent: make the source of `mounts[N]` (see `rootfs::sources`); the answer is
    /// Proceed with the source's fd attached.
    MountSource(usize),
    /// Child -> parent: mounts are ready; run the prestart and createRuntime hooks.
    RunCreateHooks,
    /// Child -> parent: the seccomp filter's user-notification fd is attached; hand it to the
    /// seccomp agent at `listenerPath`.
    SeccompListener,
    /// Child -> parent: init is set up and about to wait on exec.fifo.
    Ready,
    /// Child -> parent: set-up failed.
    Failed(InitFailure),
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel to the container: {0}")]
    Io(#[from] Errno),
    #[error("channel to the container closed before the expected message")]
    Closed,
    #[error("channel to the container: malformed message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("channel to the container: expected {expected}, got {got:?}")]
    Unexpected {
        expected: &'static str,
        got: Message,
    },
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, child end), close-on-exec and numbered at least `min_fd`.
pub fn pair(min_fd: i32) -> Result<(Channel, Channel), Errno> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((
        Channel {
            fd: super::fd_at_least(a, min_fd)?,
        },
        Channel {
            fd: super::fd_at_least(b, min_fd)?,
        },
    ))
}

impl std::os::fd::AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl Channel {
    /// Sends one message as one packet. With write(2), not send(2): init reports ready, or
    /// why it failed, after the container's seccomp filter is on, and allowlists written for
    /// runc (whose init only writes and closes by then) need not name sendto. SIGPIPE is
    /// ignored in hull (Rust's start-up) and in init until exec, so a closed peer is EPIPE.
    pub fn send(&self, msg: &Message) -> Result<(), ChannelError> {
        let bytes = serde_json::to_vec(msg)?;
        loop {
            match nix::unistd::write(&self.fd, &bytes) {
                Err(Errno::EINTR) => continue,
                r => return r.map(drop).map_err(Into::into),
            }
        }
    }

    /// Sends a message with an fd attached.
    pub fn send_fd(&self, msg: &Message, fd: BorrowedFd) -> Result<(), ChannelError> {
        self.send_fds(msg, &[fd])
    }

    /// Sends a message with fds attached, in order.
    pub fn send_fds(&self, msg: &Message, fds: &[BorrowedFd]) -> Result<(), ChannelError> {
        let bytes = serde_json::to_vec(msg)?;
        Ok(crate::fdpass::send_fds(self.fd.as_fd(), &bytes, fds)?)
    }

    pub fn recv(&self) -> Result<Message, ChannelError> {
        self.recv_fds().map(|(m, _)| m)
    }

    /// Receives a message and the first fd attached to it, if any.
    pub fn recv_fd(&self) -> Result<(Message, Option<OwnedFd>), ChannelError> {
        self.recv_fds().map(|(m, fds)| (m, fds.into_iter().next()))
    }

    /// Receives a message and the fds attached to it, in order.
    pub fn recv_fds(&self) -> Result<(Message, Vec<OwnedFd>), ChannelError> {
        // A peer that exits with our last message unread leaves a one-time ECONNRESET in
        // front of what it sent before it went (its failure report), at the peek or, when it
        // exits in between, at the read after it: the message is still queued, read on.
        let mut reset = false;
        loop {
            match crate::fdpass::recv_message(self.fd.as_fd()) {
                Err(Errno::ECONNRESET) if !reset => reset = true,
                Err(e) => return Err(e.into()),
                Ok(None) => return Err(ChannelError::Closed),
                Ok(Some((bytes, fds))) => return Ok((serde_json::from_slice(&bytes)?, fds)),
            }
        }
    }

    /// Waits for `Proceed`; a `Failed` from the other side becomes the error.
    pub fn wait_proceed(&self) -> Result<(), ChannelError> {
        match self.recv()? {
            Message::Proceed => Ok(()),
            got => Err(ChannelError::Unexpected {
                expected: "Proceed",
                got,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(message: String) -> Message {
        Message::Failed(InitFailure {
            step: "mounting".into(),
            message,
        })
    }

    #[test]
    fn a_message_over_64_kib_arrives_whole_with_its_fds() {
        let (a, b) = pair(3).unwrap();
        let long = "x".repeat(100 * 1024);
        let file = std::fs::File::open("/dev/null").unwrap();
        a.send_fds(&failure(long.clone()), &[file.as_fd(), file.as_fd()])
            .unwrap();
        a.send(&Message::Ready).unwrap();
        let (got, fds) = b.recv_fds().unwrap();
        assert!(matches!(got, Message::Failed(f) if f.message == long));
        assert_eq!(fds.len(), 2);
        assert!(matches!(b.recv().unwrap(), Message::Ready));
    }

    #[test]
    fn what_a_gone_peer_sent_is_read_before_its_absence() {
        let (a, b) = pair(3).unwrap();
        // a's peer exits with a message for it unread: the ECONNRESET it leaves comes first.
        b.send(&Message::Proceed).unwrap();
        a.send(&failure("no such file".into())).unwrap();
        drop(a);
        assert!(matches!(b.recv().unwrap(), Message::Failed(f) if f.message == "no such file"));
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn a_peer_gone_between_the_peek_and_the_read_still_has_its_message_read() {
        let (a, b) = pair(3).unwrap();
        a.send(&failure("no such file".into())).unwrap();
        let len = crate::fdpass::pending_len(b.fd.as_fd()).unwrap();
        b.send(&Message::Proceed).unwrap();
        drop(a);
        // The read after the peek meets the reset; the message stays queued.
        assert_eq!(
            crate::fdpass::recv_exact(b.fd.as_fd(), len).err(),
            Some(Errno::ECONNRESET)
        );
        assert!(matches!(b.recv().unwrap(), Message::Failed(f) if f.message == "no such file"));
    }
}
