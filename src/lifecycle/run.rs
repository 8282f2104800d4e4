//! `run`: create + start. Detached, it returns once the process runs. In the foreground hull
//! stays as a subreaper: it forwards signals to the container, proxies the terminal when it owns
//! the pty, reaps, deletes the container when the process exits, and returns its exit status
//! (128+N when killed by signal N).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::Context as _;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigprocmask, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SigSet, SignalFd};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create_container, CreateOptions};
use super::delete::destroy;
use super::start::{poststart, release};
use super::Global;
use crate::tty;

const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// `keep` leaves the stopped container (state, cgroup) for a later `delete`, as runc's --keep.
pub fn run(g: &Global, o: &CreateOptions, detach: bool, keep: bool) -> anyhow::Result<i32> {
    let (ours, theirs) = if !detach && o.console_socket.is_none() {
        let (a, b) = console_pair()?;
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let signals = forwarded_signals();
    if !detach {
        become_supervisor(&signals)?;
    }
    let mut created = create_container(g, o, theirs, true)?;
    let terminal = created
        .bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        == Some(true);
    let pid = created.init.pid;
    let id = created.state.id.clone();
    // init sent the master during create. The window size must be ours before the process
    // starts, or its first terminal query races the resize.
    let take_master = || -> anyhow::Result<Option<OwnedFd>> {
        let (true, Some(sock)) = (terminal, &ours) else {
            return Ok(None);
        };
        let m = tty::recv_master(sock.as_fd())?;
        tty::clear_onlcr(m.as_fd())?;
        if let Some((rows, cols)) = tty::size_of(0) {
            tty::resize(m.as_fd(), rows, cols)?;
        }
        Ok(Some(m))
    };
    // The config is the one create just loaded: no second read of the saved copy.
    let hooks = created.bundle.spec.hooks().as_ref();
    let reader = created.reader.take();
    let master = match take_master()
        .and_then(|m| release(&created.dir, &created.state, reader).map(|()| m))
    {
        Ok(m) => m,
        Err(e) => {
            let _ = super::delete::kill_init(&created.state, None);
            let _ = destroy(created.dir, &created.state, &created.cgroup, hooks);
            return Err(e);
        }
    };
    if let Err(e) = poststart(&created.state, hooks) {
        let _ = destroy(created.dir, &created.state, &created.cgroup, hooks);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    // Other commands (state, kill, exec) must be able to lock the container while it runs.
    drop(created.dir);
    let code = supervise(pid, &signals, master)?;
    if !keep {
        let (dir, state) = g.store().open(&id)?;
        destroy(dir, &state, &created.cgroup, hooks)?;
    }
    Ok(code)
}

/// A socket pair on which the runtime receives the pty master it proxies.
pub fn console_pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Prepares a foreground run or exec: a subreaper, so the process is ours to wait for after
/// any intermediate fork exits, with the forwarded signals blocked before the fork so none is
/// lost (the child unblocks them before exec).
pub fn become_supervisor(signals: &SigSet) -> anyhow::Result<()> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
        .context("becoming a subreaper")?;
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(signals), None)?;
    Ok(())
}

/// The signals a foreground run or exec forwards, plus SIGCHLD to notice the exit.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Forwards signals and terminal traffic until `init` exits; returns its exit status.
pub fn supervise(init: Pid, signals: &SigSet, master: Option<OwnedFd>) -> anyhow::Result<i32> {
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC)?;
    let stdin_tty = master.is_some() && nix::unistd::isatty(0).unwrap_or(false);
    let _raw = stdin_tty.then(|| tty::RawMode::enter(0)).flatten();
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut exit = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(code) = exit {
            if !master_open {
                return Ok(code);
            }
        }
        let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            if master_open {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open && exit.is_none() {
                fds.push(PollFd::new(stdin, PollFlags::POLLIN));
            }
        }
        // Once init is gone, drain the pty without blocking forever on a held-open slave.
        let timeout = if exit.is_some() {
            PollTimeout::from(100u8)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Ok(0) => return Ok(exit.unwrap_or(0)),
            r => r?,
        };
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        if ready[0] {
            if let Some(info) = sfd.read_signal()? {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    exit = exit.or(reap(init));
                } else if sig == libc::SIGWINCH {
                    if let (Some(m), Some((rows, cols))) = (&master, tty::size_of(0)) {
                        let _ = tty::resize(m.as_fd(), rows, cols);
                    }
                } else {
                    // SAFETY: kill with integer arguments.
                    unsafe { libc::kill(init.as_raw(), sig) };
                }
            }
        }
        let Some(m) = &master else { continue };
        let mut idx = 1;
        if master_open {
            if ready.get(idx).copied().unwrap_or(false) {
                match nix::unistd::read(m.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(Errno::EIO) => master_open = false,
                    Ok(n) => {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(&buf[..n]);
                        let _ = out.flush();
                    }
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            idx += 1;
        }
        if stdin_open && exit.is_none() && ready.get(idx).copied().unwrap_or(false) {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = nix::unistd::write(m, &buf[..n]);
                }
            }
        }
    }
}

/// Reaps every exited child; returns init's exit status once it is among them.
fn reap(init: Pid) -> Option<i32> {
    let mut status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => status = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => status = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return status,
            Ok(_) => {}
        }
    }
}
