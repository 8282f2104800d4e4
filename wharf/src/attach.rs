//! Attaching to a container's stdio through its monitor. The monitor listens on
//! `attach.sock` in the container directory (a SOCK_SEQPACKET socket, so each message
//! keeps its boundary) and may be handed a first client at start (`run -it`). Messages
//! start with a type byte:
//! - client to monitor: `STDIN` + bytes, `RESIZE` + rows and columns (u16 little endian
//!   each), `STDIN_EOF`;
//! - monitor to client: `STDOUT` or `STDERR` + bytes.
//!
//! The client side (`run_client`) also serves `exec -t`, where the remote end is the pty
//! master itself: it puts the user's terminal in raw mode, forwards window size changes,
//! and watches for the detach keys.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    accept4, bind, connect, listen, recv, send, socket, AddressFamily, Backlog, MsgFlags, SockFlag,
    SockType, UnixAddr,
};

use crate::tty::{detach::Matcher, term, ShortDir};

pub const STDIN: u8 = 0;
pub const RESIZE: u8 = 1;
pub const STDIN_EOF: u8 = 2;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

const SOCKET: &str = "attach.sock";
const CHUNK: usize = 16 * 1024;

/// A connected pair of attach sockets: one end for the monitor, one for its starter.
pub fn pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Connects to the monitor of the container whose directory is `cdir`.
pub fn connect_to(cdir: &Path) -> io::Result<OwnedFd> {
    let dir = ShortDir::open(cdir)?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(sock.as_raw_fd(), &UnixAddr::new(&dir.path(SOCKET))?)?;
    Ok(sock)
}

/// What a client asked the monitor for.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Data(Vec<u8>),
    Resize(u16, u16),
    Eof,
}

fn parse_input(msg: &[u8]) -> Option<Input> {
    match msg.split_first()? {
        (&STDIN, data) => Some(Input::Data(data.to_vec())),
        (&RESIZE, [r0, r1, c0, c1]) => Some(Input::Resize(
            u16::from_le_bytes([*r0, *r1]),
            u16::from_le_bytes([*c0, *c1]),
        )),
        (&STDIN_EOF, []) => Some(Input::Eof),
        _ => None,
    }
}

/// The monitor's side: the listening socket and the attached clients.
pub struct Hub {
    dir: ShortDir,
    listener: OwnedFd,
    clients: Vec<OwnedFd>,
}

impl Hub {
    pub fn listen(cdir: &Path) -> io::Result<Self> {
        let dir = ShortDir::open(cdir)?;
        let path = dir.path(SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        bind(listener.as_raw_fd(), &UnixAddr::new(&path)?)?;
        listen(&listener, Backlog::new(16)?)?;
        Ok(Self {
            dir,
            listener,
            clients: Vec::new(),
        })
    }

    pub fn add(&mut self, client: OwnedFd) {
        self.clients.push(client);
    }

    /// The descriptors to poll: the listener, then each client.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        std::iter::once(self.listener.as_fd())
            .chain(self.clients.iter().map(|c| c.as_fd()))
            .collect()
    }

    /// Handles readiness of the descriptors `fds` returned, in the same order: accepts
    /// new clients, reads their messages and forgets the ones that left.
    pub fn handle(&mut self, ready: &[bool]) -> Vec<Input> {
        let mut inputs = Vec::new();
        let mut gone = Vec::new();
        let mut buf = vec![0u8; CHUNK + 1];
        for (i, c) in self.clients.iter().enumerate() {
            if !ready.get(i + 1).copied().unwrap_or(false) {
                continue;
            }
            match recv(c.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => gone.push(i),
                Ok(n) => inputs.extend(parse_input(&buf[..n])),
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                Err(_) => gone.push(i),
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
        if ready.first().copied().unwrap_or(false) {
            while let Ok(fd) = accept4(self.listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 returned a new descriptor that nothing else owns.
                self.clients.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        inputs
    }

    /// Sends output to every client; a client that cannot take it is dropped.
    pub fn broadcast(&mut self, stream: u8, data: &[u8]) {
        for chunk in data.chunks(CHUNK) {
            let mut msg = Vec::with_capacity(chunk.len() + 1);
            msg.push(stream);
            msg.extend_from_slice(chunk);
            self.clients
                .retain(|c| send(c.as_raw_fd(), &msg, MsgFlags::MSG_NOSIGNAL).is_ok());
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.path(SOCKET));
    }
}

/// The other end of an attached session.
pub enum Remote {
    /// A monitor's attach socket.
    Monitor(OwnedFd),
    /// A pty master (exec -t).
    Master(OwnedFd),
}

impl Remote {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Remote::Monitor(f) | Remote::Master(f) => f.as_fd(),
        }
    }

    fn send_input(&self, data: &[u8]) -> io::Result<()> {
        match self {
            Remote::Monitor(f) => {
                for chunk in data.chunks(CHUNK) {
                    let mut msg = vec![STDIN];
                    msg.extend_from_slice(chunk);
                    send(f.as_raw_fd(), &msg, MsgFlags::MSG_NOSIGNAL)?;
                }
                Ok(())
            }
            Remote::Master(f) => write_all(f.as_fd(), data),
        }
    }

    /// Sends a window size: to the monitor as a message, or to the pty master itself.
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        match self {
            Remote::Monitor(f) => {
                let mut msg = vec![RESIZE];
                msg.extend_from_slice(&rows.to_le_bytes());
                msg.extend_from_slice(&cols.to_le_bytes());
                send(f.as_raw_fd(), &msg, MsgFlags::MSG_NOSIGNAL)?;
                Ok(())
            }
            Remote::Master(f) => Ok(term::set_window_size(f.as_fd(), rows, cols)?),
        }
    }

    fn stdin_eof(&self) -> io::Result<()> {
        if let Remote::Monitor(f) = self {
            send(f.as_raw_fd(), &[STDIN_EOF], MsgFlags::MSG_NOSIGNAL)?;
        }
        Ok(())
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub struct ClientOptions {
    /// Forward our stdin.
    pub stdin: bool,
    /// The container has a terminal: raw mode, window sizes, detach keys.
    pub tty: bool,
    pub detach_keys: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The remote end closed: the process is gone.
    Ended,
    /// The user typed the detach keys.
    Detached,
}

/// Pumps our stdin and stdout to and from `remote` until it ends or the user detaches.
/// With `proxy`, SIGINT and SIGTERM sent to us are handed to it (docker's sig-proxy for
/// sessions without a terminal) instead of ending us.
pub fn run_client(
    remote: &Remote,
    o: &ClientOptions,
    mut proxy: Option<&mut dyn FnMut(Signal) -> io::Result<()>>,
) -> io::Result<Outcome> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    if proxy.is_some() {
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGTERM);
    }
    mask.thread_block()?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let _raw = if o.tty && o.stdin {
        term::RawMode::enter(stdin.as_fd())?
    } else {
        None
    };
    let size = || term::window_size(stdout.as_fd()).or_else(|| term::window_size(stdin.as_fd()));
    if o.tty {
        if let Some((rows, cols)) = size() {
            remote.resize(rows, cols)?;
        }
    }
    let mut matcher = Matcher::new(if o.tty { o.detach_keys.clone() } else { vec![] });
    let mut reading_stdin = o.stdin;
    let mut buf = vec![0u8; CHUNK + 1];
    loop {
        let mut fds = vec![
            PollFd::new(remote.fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if reading_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let Some(ready) = poll_ready(&mut fds, None)? else {
            continue;
        };
        drop(fds);
        if ready[0] {
            let n = match remote {
                Remote::Monitor(f) => recv(f.as_raw_fd(), &mut buf, MsgFlags::empty()),
                Remote::Master(f) => nix::unistd::read(f.as_raw_fd(), &mut buf),
            };
            match (remote, n) {
                (_, Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN)) => {}
                (_, Ok(0) | Err(_)) => return Ok(Outcome::Ended),
                (Remote::Master(_), Ok(n)) => write_out(&mut stdout.lock(), &buf[..n])?,
                (Remote::Monitor(_), Ok(n)) => match buf[0] {
                    STDERR => write_out(&mut io::stderr().lock(), &buf[1..n])?,
                    _ => write_out(&mut stdout.lock(), &buf[1..n])?,
                },
            }
        }
        if ready[1] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGWINCH);
                match (&mut proxy, sig) {
                    (Some(p), Signal::SIGINT | Signal::SIGTERM) => p(sig)?,
                    _ => {
                        if let Some((rows, cols)) = size() {
                            remote.resize(rows, cols)?;
                        }
                    }
                }
            }
        }
        if reading_stdin && ready[2] {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Ok(0) | Err(_) => {
                    reading_stdin = false;
                    remote.stdin_eof()?;
                }
                Ok(n) => {
                    let (pass, detach) = matcher.feed(&buf[..n]);
                    if !pass.is_empty() {
                        remote.send_input(&pass)?;
                    }
                    if detach {
                        return Ok(Outcome::Detached);
                    }
                }
            }
        }
    }
}

/// Waits for any of `fds`, at most `timeout`, and returns which are ready, in order (none
/// when the time ran out); None when a signal interrupted the wait.
pub fn poll_ready(
    fds: &mut [PollFd],
    timeout: Option<std::time::Duration>,
) -> nix::Result<Option<Vec<bool>>> {
    // Rounded up: a wait cut to zero would spin until the deadline.
    let timeout = timeout.map_or(PollTimeout::NONE, |d| {
        let ms = d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
    });
    match poll(fds, timeout) {
        Err(nix::errno::Errno::EINTR) => return Ok(None),
        r => r?,
    };
    Ok(Some(
        fds.iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect(),
    ))
}

fn write_out(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    out.write_all(data)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_messages_parse() {
        assert_eq!(
            parse_input(&[STDIN, b'a']),
            Some(Input::Data(b"a".to_vec()))
        );
        assert_eq!(
            parse_input(&[RESIZE, 24, 0, 80, 0]),
            Some(Input::Resize(24, 80))
        );
        assert_eq!(parse_input(&[STDIN_EOF]), Some(Input::Eof));
        assert_eq!(parse_input(&[RESIZE, 1]), None);
        assert_eq!(parse_input(&[]), None);
    }

    #[test]
    fn hub_relays_between_clients_and_the_container() {
        let d = tempfile::tempdir().unwrap();
        let mut hub = Hub::listen(d.path()).unwrap();
        let (mine, theirs) = pair().unwrap();
        hub.add(mine);
        let late = connect_to(d.path()).unwrap();
        let ready = vec![true; hub.fds().len()];
        assert!(hub.handle(&ready).is_empty());
        assert_eq!(hub.fds().len(), 3);
        send(theirs.as_raw_fd(), &[RESIZE, 5, 0, 7, 0], MsgFlags::empty()).unwrap();
        let ready = vec![false, true, false];
        assert_eq!(hub.handle(&ready), vec![Input::Resize(5, 7)]);
        hub.broadcast(STDOUT, b"hi");
        let mut buf = [0u8; 8];
        for c in [&theirs, &late] {
            let n = recv(c.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
            assert_eq!(&buf[..n], b"\x01hi");
        }
        drop(late);
        let ready = vec![false, false, true];
        assert!(hub.handle(&ready).is_empty());
        assert_eq!(hub.fds().len(), 2);
        drop(hub);
        assert!(!d.path().join(SOCKET).exists());
    }
}
