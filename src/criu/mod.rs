//! CRIU driven over its RPC, for `checkpoint` and `restore`: hull starts `criu swrk 3` with one
//! end of a SOCK_SEQPACKET pair as its fd 3, sends one request, answers each notification
//! (CRIU waits for the answer, which is how hooks, the console and the state are done at the
//! right moment), and reads the final response. The RPC, unlike criu's command line, can hand
//! a restored terminal's master back (`orphan-pts-master`) and takes cgroup roots and
//! namespaces to join, which a runc-compatible restore needs.

pub mod mounts;
pub mod options;
pub mod rpc;

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::errno::Errno;
use nix::sys::socket::{shutdown, socketpair, AddressFamily, Shutdown, SockFlag, SockType};
use prost::Message as _;

use rpc::{Req, ReqType, Resp};

#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("{}", not_found(.0))]
    NotFound(String),
    #[error("starting criu: {0}")]
    Spawn(std::io::Error),
    #[error("talking to criu: {0}")]
    Socket(Errno),
    #[error("decoding criu's answer: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("criu closed the connection without an answer ({0})")]
    Eof(String),
    #[error("criu failed: type {kind} errno {errno}{message}")]
    Failed {
        kind: String,
        errno: i32,
        message: String,
    },
    #[error("handling criu's {script:?} notification: {message}")]
    Notify { script: String, message: String },
    #[error("criu failed: {0}")]
    Exit(String),
    #[error("criu is missing features: {0}")]
    Missing(String),
}

/// A notification from CRIU: the action script it stands for (`post-dump`, `setup-namespaces`,
/// `post-restore`, `orphan-pts-master`, ...), the restored init's pid where it applies, and the
/// fd it carried (the pty master of `orphan-pts-master`).
pub struct Notification {
    pub script: String,
    pub pid: Option<i32>,
    pub fd: Option<OwnedFd>,
}

/// A running `criu swrk`.
pub struct Swrk {
    child: Child,
    sock: OwnedFd,
}

/// Go's words for a missing program: looked up in PATH, or a path that is not there.
fn not_found(binary: &str) -> String {
    if binary.contains('/') {
        format!("fork/exec {binary}: no such file or directory")
    } else {
        format!("exec: {binary:?}: executable file not found in $PATH")
    }
}

impl Swrk {
    /// Starts CRIU with `stdio` as its fds 0-2 and `extra` as its fds 4, 5, ... (CRIU's own
    /// numbers, which inherit_fd entries name).
    pub fn start(binary: &Path, stdio: [Stdio; 3], extra: &[RawFd]) -> Result<Swrk, CriuError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(CriuError::Socket)?;
        let mut sources = vec![theirs.as_raw_fd()];
        sources.extend_from_slice(extra);
        // Allocated here: the child between fork and exec only makes system calls.
        let mut high = vec![0; sources.len()];
        let [stdin, stdout, stderr] = stdio;
        let mut cmd = Command::new(binary);
        cmd.args(["swrk", "3"])
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        // SAFETY: hull is single-threaded; the closure only makes fcntl and dup2 calls.
        unsafe {
            cmd.pre_exec(move || {
                // First above every target, so that no dup2 overwrites a source still to move.
                for (h, fd) in high.iter_mut().zip(&sources) {
                    *h = Errno::result(libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 64))?;
                }
                for (i, h) in high.iter().enumerate() {
                    Errno::result(libc::dup2(*h, 3 + i as RawFd))?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CriuError::NotFound(binary.display().to_string()),
            _ => CriuError::Spawn(e),
        })?;
        drop(theirs);
        Ok(Swrk { child, sock: ours })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn send(&self, req: &Req) -> Result<(), CriuError> {
        let bytes = req.encode_to_vec();
        loop {
            match nix::unistd::write(&self.sock, &bytes) {
                Err(Errno::EINTR) => continue,
                r => return r.map(drop).map_err(CriuError::Socket),
            }
        }
    }

    /// Sends `req`, answers notifications with `on_notify` (an error there fails the call and
    /// leaves CRIU to undo its work), and returns CRIU's final response once it has exited.
    pub fn call(
        mut self,
        req: &Req,
        mut on_notify: impl FnMut(Notification) -> Result<(), String>,
    ) -> Result<Resp, CriuError> {
        self.send(req)?;
        let result = loop {
            let Some((resp, fd)) = recv_resp(self.sock.as_fd())? else {
                break Err(CriuError::Eof(self.finish()));
            };
            if !resp.success {
                let kind = ReqType::try_from(resp.r#type).map_or_else(
                    |_| resp.r#type.to_string(),
                    |t| format!("{t:?}").to_uppercase(),
                );
                let message = resp
                    .cr_errmsg
                    .as_deref()
                    .filter(|m| !m.is_empty())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                break Err(CriuError::Failed {
                    kind,
                    errno: resp.cr_errno.unwrap_or(0),
                    message,
                });
            }
            if resp.r#type != ReqType::Notify as i32 {
                break Ok(resp);
            }
            let note = resp.notify.unwrap_or_default();
            let script = note.script.unwrap_or_default();
            on_notify(Notification {
                script: script.clone(),
                pid: note.pid,
                fd,
            })
            .map_err(|message| CriuError::Notify { script, message })?;
            self.send(&Req {
                r#type: ReqType::Notify as i32,
                notify_success: Some(true),
                ..Default::default()
            })?;
        };
        let status = self.finish();
        match result {
            // A pre-dump's CRIU waits for a next request and exits non-zero when there is none.
            Ok(resp) if status.is_empty() || req.r#type == ReqType::PreDump as i32 => Ok(resp),
            Ok(_) => Err(CriuError::Exit(status)),
            Err(e) => Err(e),
        }
    }

    /// Ends the conversation and waits for CRIU (only for it: a restored init is hull's child
    /// too); "" when it exited 0, else how it ended.
    fn finish(&mut self) -> String {
        let _ = shutdown(self.sock.as_raw_fd(), Shutdown::Write);
        match self.child.wait() {
            Ok(s) if s.success() => String::new(),
            Ok(s) => s.to_string(),
            Err(e) => format!("waiting for criu: {e}"),
        }
    }
}

/// CRIU's next message and the fd it carried, or `None` once CRIU has closed its end, read
/// whole however long it is.
fn recv_resp(sock: std::os::fd::BorrowedFd) -> Result<Option<(Resp, Option<OwnedFd>)>, CriuError> {
    let Some((bytes, fds)) = crate::fdpass::recv_message(sock).map_err(CriuError::Socket)? else {
        return Ok(None);
    };
    Ok(Some((Resp::decode(&bytes[..])?, fds.into_iter().next())))
}

/// Asks CRIU whether it can do what `features` names; the names of what it cannot.
pub fn check_features(binary: &Path, features: rpc::Features) -> Result<(), CriuError> {
    let want = features.clone();
    let resp = Swrk::start(binary, [Stdio::null(), Stdio::null(), Stdio::null()], &[])?.call(
        &Req {
            r#type: ReqType::FeatureCheck as i32,
            features: Some(features),
            ..Default::default()
        },
        |_| Ok(()),
    )?;
    let got = resp.features.unwrap_or_default();
    let mut missing = Vec::new();
    if want.mem_track == Some(true) && got.mem_track != Some(true) {
        missing.push("MemTrack");
    }
    if want.lazy_pages == Some(true) && got.lazy_pages != Some(true) {
        missing.push("LazyPages");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CriuError::Missing(format!("{missing:?}")))
    }
}

/// After a failure, CRIU's own account: each line of its log that says `Error`, with the few
/// lines before it, as warnings (runc quotes the log the same way).
pub fn quote_log(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut shown = 0;
    crate::logging::warn(&format!("--- Quoting {log:?}"));
    for (i, line) in lines.iter().enumerate() {
        if !line.contains("Error") {
            continue;
        }
        let from = i.saturating_sub(5).max(shown);
        if from > shown && shown > 0 {
            crate::logging::warn("...");
        }
        for (n, l) in lines.iter().enumerate().take(i + 1).skip(from) {
            crate::logging::warn(&format!("{}:{l}", n + 1));
        }
        shown = i + 1;
    }
    crate::logging::warn("---");
}

#[cfg(test)]
mod tests {
    use super::rpc::*;
    use prost::Message as _;

    #[test]
    fn requests_encode_with_criu_field_numbers() {
        let req = Req {
            r#type: ReqType::Dump as i32,
            opts: Some(Opts {
                images_dir_fd: 5,
                ..Default::default()
            }),
            ..Default::default()
        };
        // type (field 1, varint 1), opts (field 2, 2 bytes: images_dir_fd = field 1, 5).
        assert_eq!(req.encode_to_vec(), [0x08, 1, 0x12, 2, 0x08, 5]);
        let resp = Resp::decode(&[0x08u8, 6, 0x10, 1, 0x2a, 4, 0x10, 42, 0x0a, 0][..]).unwrap();
        assert_eq!(resp.r#type, ReqType::Notify as i32);
        assert!(resp.success);
        let note = resp.notify.unwrap();
        assert_eq!(note.pid, Some(42));
        assert_eq!(note.script.as_deref(), Some(""));
    }

    #[test]
    fn an_answer_longer_than_64_kib_arrives_whole_with_its_fd() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        use std::os::fd::AsFd;
        let (ours, criu) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let long = "x".repeat(100 * 1024);
        let sent = Resp {
            r#type: ReqType::Dump as i32,
            success: false,
            cr_errmsg: Some(long.clone()),
            ..Default::default()
        };
        let devnull = std::fs::File::open("/dev/null").unwrap();
        crate::fdpass::send(criu.as_fd(), &sent.encode_to_vec(), devnull.as_fd()).unwrap();
        let (got, fd) = super::recv_resp(ours.as_fd()).unwrap().expect("a message");
        assert_eq!(got.cr_errmsg.as_deref(), Some(long.as_str()));
        assert!(fd.is_some());
        drop(criu);
        assert!(super::recv_resp(ours.as_fd()).unwrap().is_none());
    }
}
