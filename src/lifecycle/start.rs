//! `start`: release a created container's init by opening exec.fifo, wait until it has run the
//! startContainer hooks and exec'd, then run the poststart hooks.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{saved_spec, status, Global};
use oci_spec::runtime::Hooks;

use crate::hooks::{self, Kind};
use crate::state::{ContainerDir, State, Status};
use crate::syscall;

pub fn start(g: &Global, id: &str) -> anyhow::Result<()> {
    let (dir, state) = g.store().open(id)?;
    match status(&state, &dir.path) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        _ => bail!("cannot start an already running container"),
    }
    let spec = saved_spec(&dir.path)?;
    release(&dir, &state, None)?;
    crate::logging::debug(&format!(
        "start {id}: init {} exec'd the process",
        state.pid
    ));
    poststart(&state, spec.hooks().as_ref())
}

/// Opens exec.fifo for reading, which lets init's open for writing return; init then reports
/// "0" once its startContainer hooks passed, or "1<error>", and the fifo closes at its exec.
/// `reader` is the fifo already opened (non-blocking) before init reached it.
pub fn release(dir: &ContainerDir, state: &State, reader: Option<File>) -> anyhow::Result<()> {
    let pidfd = syscall::pidfd_open(nix::unistd::Pid::from_raw(state.pid))
        .context("the container's init is gone")?;
    let mut fifo = match reader {
        Some(f) => f,
        None => open_reader(&dir.fifo())?,
    };
    let mut report = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.context("waiting for the container's init")?,
        };
        let fifo_ready = fds[0].any().unwrap_or(false);
        let init_gone = fds[1].any().unwrap_or(false);
        if fifo_ready {
            match fifo.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => report.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("reading exec.fifo"),
            }
        } else if init_gone {
            break;
        }
    }
    let _ = std::fs::remove_file(dir.fifo());
    match report.split_first() {
        Some((b'0', _)) => Ok(()),
        Some((b'1', msg)) => Err(anyhow!("{}", String::from_utf8_lossy(msg))),
        _ => Err(anyhow!(
            "the container's init exited before starting the process"
        )),
    }
}

/// exec.fifo opened for reading, non-blocking: the open never waits for init.
pub fn open_reader(fifo: &Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .with_context(|| format!("opening {fifo:?} for reading"))
}

/// Poststart hooks. A failure kills the container and fails the command, as runc does (engines
/// rely on it: runtime-spec's "warn and run on" would leave running a container whose set-up
/// hook failed); the stopped container stays for `delete`.
pub fn poststart(state: &State, hooks: Option<&Hooks>) -> anyhow::Result<()> {
    let ran = hooks::run(
        Kind::Poststart,
        hooks,
        &state.hook_state(Status::Running),
        &hooks::Context::default(),
    );
    if let Err(e) = ran {
        super::delete::kill_init(state, None)?;
        return Err(e.into());
    }
    Ok(())
}
