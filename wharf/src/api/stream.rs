//! Hijacked connections (attach, exec start): the `101 UPGRADED` answer, docker's 8-byte
//! multiplexed framing for streams without a terminal, and the relays between the
//! client's connection and a container's monitor (its attach socket) or a process's
//! pipes and terminal.

use std::os::fd::{AsRawFd, OwnedFd};

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::attach::{STDERR, STDIN, STDIN_EOF, STDOUT};

pub type Conn = TokioIo<Upgraded>;

/// docker's answer to an upgrade request: raw stream from here on.
pub fn upgraded(tty: bool) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    let kind = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    r
}

/// One frame of docker's multiplexed stream: stream type (1 stdout, 2 stderr), three
/// zero bytes, the length (big endian), the data.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Relays between the client and a monitor's attach socket until the container's output
/// ends (the monitor closes the socket when the container exits), the client goes, or
/// the client types the detach keys. Without a terminal the output is framed; the
/// client's input goes to the container when `stdin` was asked for.
pub async fn monitor(conn: Conn, sock: OwnedFd, tty: bool, stdin: bool, detach_keys: Vec<u8>) {
    if set_nonblocking(&sock).is_err() {
        return;
    }
    // SAFETY: the OwnedFd is a valid descriptor the AsyncFd owns and nothing replaces.
    let Ok(sock) = (unsafe { AsyncFd::register(sock) }) else {
        return;
    };
    let (mut rd, mut wr) = tokio::io::split(conn);
    let output = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = loop {
                let Ok(mut guard) = sock.readable().await else {
                    return;
                };
                match guard.try_io(|s| {
                    nix::sys::socket::recv(
                        s.as_raw_fd(),
                        &mut buf,
                        nix::sys::socket::MsgFlags::empty(),
                    )
                    .map_err(std::io::Error::from)
                }) {
                    Ok(Ok(n)) => break n,
                    Ok(Err(_)) => return,
                    Err(_would_block) => continue,
                }
            };
            if n == 0 {
                return;
            }
            let (kind, data) = (buf[0], &buf[1..n]);
            let out = match (tty, kind) {
                (true, _) => data.to_vec(),
                (false, STDERR) => frame(2, data),
                (false, _) => frame(STDOUT, data),
            };
            if wr.write_all(&out).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
    };
    let mut keys = crate::tty::detach::Matcher::new(detach_keys);
    let input = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = rd.read(&mut buf).await.unwrap_or(0);
            let msg: Vec<u8> = if n == 0 {
                vec![STDIN_EOF]
            } else if stdin {
                // The detach keys end this client's attach and never reach the container.
                let (pass, detached) = keys.feed(&buf[..n]);
                if detached {
                    return;
                }
                if pass.is_empty() {
                    continue;
                }
                let mut m = Vec::with_capacity(pass.len() + 1);
                m.push(STDIN);
                m.extend_from_slice(&pass);
                m
            } else {
                continue;
            };
            loop {
                let Ok(mut guard) = sock.writable().await else {
                    return;
                };
                match guard.try_io(|s| {
                    nix::sys::socket::send(s.as_raw_fd(), &msg, nix::sys::socket::MsgFlags::empty())
                        .map_err(std::io::Error::from)
                }) {
                    Ok(_) => break,
                    Err(_would_block) => continue,
                }
            }
            if n == 0 {
                // The client's side is done; the output goes on until the container ends.
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
    let _ = wr.shutdown().await;
}
