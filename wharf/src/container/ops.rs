//! Lifecycle operations the commands share: starting a monitor and waiting for its
//! verdict, stop (signal, then SIGKILL), kill, remove and wait, all by polling the
//! store with deadlines since the monitor, not the caller, owns the container's process.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::rootfs::{remove_dir, Layout};
use super::{Container, ContainerError, Status};
use crate::runtime::{Runtime, RuntimeError};
use crate::store::Db;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("You cannot remove a running container {0}. Stop the container before attempting removal or force remove")]
    RemoveRunning(String),
    #[error("Container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    #[error("starting the monitor: {0}")]
    Monitor(std::io::Error),
    #[error("wharf's container monitor, {MONITOR}, is neither in {0} (next to wharf) nor in $PATH: install it with wharf (cargo install --path wharf installs both)")]
    NoMonitor(String),
    #[error("the monitor of {0} exited without reporting")]
    MonitorLost(String),
    /// The container could not start; `code` is docker's 125/126/127.
    #[error("{msg}")]
    Start { code: i32, msg: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Rootfs(#[from] super::rootfs::RootfsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Sys(#[from] nix::Error),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
}

pub fn runtime(root: &Path, c: &Container) -> Runtime {
    Runtime::new(root, &c.spec.runtime_path)
}

/// The monitor's status pipe, read line by line.
pub struct StatusPipe {
    file: File,
    buf: Vec<u8>,
}

impl StatusPipe {
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// The next line, waiting at most `timeout`; Ok(None) on timeout, an empty line at
    /// end of file (the monitor is gone).
    pub fn line(&mut self, timeout: Option<Duration>) -> Result<Option<String>, OpsError> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(Some(String::from_utf8_lossy(&l[..i]).into_owned()));
            }
            let t = match timeout {
                Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, t) {
                Ok(0) => return Ok(None),
                Err(nix::errno::Errno::EINTR) => return Ok(None),
                r => r?,
            };
            let mut chunk = [0u8; 512];
            let n = self.file.read(&mut chunk).map_err(OpsError::Monitor)?;
            if n == 0 {
                return Ok(Some(String::new()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Waits for `started` or an error line.
    pub fn wait_started(&mut self, id: &str) -> Result<(), OpsError> {
        let line = self.line(None)?.unwrap_or_default();
        parse_start(&line, id)
    }
}

fn parse_start(line: &str, id: &str) -> Result<(), OpsError> {
    if line == "started" {
        return Ok(());
    }
    if let Some(rest) = line.strip_prefix("error ") {
        let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        return Err(OpsError::Start {
            code: code.parse().unwrap_or(125),
            msg: msg.to_string(),
        });
    }
    Err(OpsError::MonitorLost(id.to_string()))
}

/// The monitor's program (`src/bin/wharf-monitor.rs`), which cargo builds and installs
/// beside wharf.
const MONITOR: &str = "wharf-monitor";

/// Starts the monitor for `c`; with `attach_stdin` the monitor gets our stdin for
/// the container, with `client` the monitor end of an attach socket pair. Returns the
/// status pipe once the monitor has detached.
pub fn start_monitor(
    root: &Path,
    c: &Container,
    attach_stdin: bool,
    client: Option<OwnedFd>,
) -> Result<StatusPipe, OpsError> {
    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let exe = crate::runtime::resolve(MONITOR).map_err(|_| {
        let beside = std::env::current_exe().ok();
        OpsError::NoMonitor(
            beside
                .as_deref()
                .and_then(Path::parent)
                .map_or_else(|| "wharf's directory".into(), |d| d.display().to_string()),
        )
    })?;
    let wfd = w.as_raw_fd();
    let cfd = client.as_ref().map(|c| c.as_raw_fd());
    let mut cmd = Command::new(exe);
    cmd.arg("--data-root")
        .arg(root)
        .arg("--status-fd")
        .arg(wfd.to_string());
    if let Some(cfd) = cfd {
        cmd.arg("--attach-fd").arg(cfd.to_string());
    }
    cmd.arg(&c.id).stdout(Stdio::null()).stderr(Stdio::null());
    let user = std::env::var_os("GLIBC_TUNABLES");
    for (name, value) in crate::monitor::monitor_environment(user.as_deref()) {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    if attach_stdin {
        cmd.arg("--stdin");
    } else {
        cmd.stdin(Stdio::null());
    }
    // SAFETY: only fcntl, which is async-signal-safe, runs between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            for fd in std::iter::once(wfd).chain(cfd) {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // The monitor forks and its first process exits at once: reap it here.
    let status = cmd.status().map_err(OpsError::Monitor)?;
    drop(w);
    drop(client);
    if !status.success() {
        return Err(OpsError::MonitorLost(c.id.clone()));
    }
    Ok(StatusPipe {
        file: File::from(r),
        buf: Vec::new(),
    })
}

/// Polls the store until `done` holds for the container (or it is gone) or `timeout`
/// passes; returns the last container seen.
pub fn poll_until(
    db: &Db,
    id: &str,
    timeout: Option<Duration>,
    done: impl Fn(&Container) -> bool,
) -> Result<Option<Container>, OpsError> {
    let start = Instant::now();
    loop {
        let c = super::load(db, id)?;
        match &c {
            None => return Ok(None),
            Some(c) if done(c) => return Ok(Some(c.clone())),
            _ => {}
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Ok(c);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stopped(c: &Container) -> bool {
    !c.is_running()
}

/// A record that says running while its monitor is gone: the process may still run, and
/// nobody but the caller will record its exit.
fn orphaned(c: &Container) -> bool {
    c.effective_status() == Status::Dead && c.state.status != Status::Dead
}

/// Waits until `c` is down or `timeout` passes (None: no limit); true when it is down.
/// An orphaned container's store record is updated by nobody, so the runtime is asked.
fn wait_down(
    db: &Db,
    rt: &Runtime,
    c: &Container,
    timeout: Option<Duration>,
) -> Result<bool, OpsError> {
    if !orphaned(c) {
        let last = poll_until(db, &c.id, timeout, stopped)?;
        return Ok(last.is_none_or(|c| !c.is_running()));
    }
    let start = Instant::now();
    loop {
        if rt
            .state(&c.id)
            .map(|s| s.status == "stopped")
            .unwrap_or(true)
        {
            return Ok(true);
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// docker's stop: the stop signal, then SIGKILL after `timeout` seconds (never when
/// negative, at once when 0).
pub fn stop(root: &Path, db: &mut Db, c: &Container, timeout: Option<i64>) -> Result<(), OpsError> {
    super::update(db, &c.id, |s| s.stop_requested = true)?;
    if !c.is_running() && !orphaned(c) {
        return Ok(());
    }
    let rt = runtime(root, c);
    let secs = timeout.or(c.spec.config.stop_timeout).unwrap_or(10);
    if c.state.status == Status::Paused {
        let _ = rt.resume(&c.id);
    }
    let grace = (secs > 0).then(|| Duration::from_secs(secs as u64));
    let down = secs != 0
        && rt.kill(&c.id, &c.spec.config.stop_signal).is_ok()
        && wait_down(db, &rt, c, grace)?;
    if !down {
        let _ = rt.kill(&c.id, "KILL");
        wait_down(db, &rt, c, Some(Duration::from_secs(10)))?;
    }
    settle_dead(root, db, &c.id)?;
    crate::events::container(db, c, "stop", &[]);
    Ok(())
}

/// A container whose monitor died cannot record its own exit; once the runtime says
/// the process is gone, record it here so `ps -a` tells the truth.
fn settle_dead(root: &Path, db: &mut Db, id: &str) -> Result<(), OpsError> {
    let Some(c) = super::load(db, id)? else {
        return Ok(());
    };
    if c.effective_status() != Status::Dead || c.state.status == Status::Dead {
        return Ok(());
    }
    let rt = runtime(root, &c);
    let gone = rt.state(id).map(|s| s.status == "stopped").unwrap_or(true);
    if gone {
        let _ = rt.delete_force(id);
        Layout::new(&super::dir(root, id)).umount()?;
        super::update(db, id, |s| {
            s.status = Status::Exited;
            s.exit_code = 137;
            s.pid = 0;
            s.finished_at = Some(super::now());
        })?;
    }
    Ok(())
}

/// Whether process `pid` has a handler for `sig` (SigCgt in /proc/PID/status).
fn catches(pid: i32, sig: nix::sys::signal::Signal) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1 << (sig as i32 - 1)) != 0)
}

/// A signal sent to an attached session without a terminal (docker's sig-proxy) goes to
/// the container. The kernel drops a signal that a pid namespace's first process has no
/// handler for, so such a container (a plain `sleep` as PID 1) is stopped instead: CTRL-C
/// always ends a foreground run, and a container that traps SIGINT still gets it.
pub fn proxy_signal(
    root: &Path,
    db: &mut Db,
    c: &Container,
    sig: nix::sys::signal::Signal,
) -> Result<(), OpsError> {
    if !c.is_running() {
        return Ok(());
    }
    let dropped = c.spec.host.pid_mode != "host" && !catches(c.state.pid, sig);
    if dropped {
        return stop(root, db, c, None);
    }
    runtime(root, c).kill(&c.id, sig.as_str())?;
    Ok(())
}

/// `kill -s SIGNAL`. Like docker, a SIGKILL returns only once the container is down, so
/// `kill X && rm X` works; other signals return at once.
pub fn kill(root: &Path, db: &mut Db, c: &Container, signal: i32) -> Result<(), OpsError> {
    if !c.is_running() && !orphaned(c) {
        return Err(OpsError::NotRunning(c.id.clone()));
    }
    super::update(db, &c.id, |s| s.stop_requested = true)?;
    let rt = runtime(root, c);
    rt.kill(&c.id, &signal.to_string())?;
    crate::events::container(db, c, "kill", &[("signal", &signal.to_string())]);
    if signal == libc::SIGKILL {
        wait_down(db, &rt, c, Some(Duration::from_secs(10)))?;
        settle_dead(root, db, &c.id)?;
    }
    Ok(())
}

/// `rm [-f]`: refuses a running container without force; with force kills it, stops
/// its monitor and removes the runtime state, the mounts, the directory and the record.
pub fn remove(root: &Path, db: &mut Db, c: &Container, force: bool) -> Result<(), OpsError> {
    if c.is_running() && !force {
        return Err(OpsError::RemoveRunning(c.id.clone()));
    }
    super::update(db, &c.id, |s| {
        s.status = Status::Removing;
        s.stop_requested = true;
    })?;
    crate::fault::at(crate::fault::Step::RmMarked);
    let rt = runtime(root, c);
    if c.is_running() {
        let _ = rt.resume(&c.id);
        let _ = rt.kill(&c.id, "KILL");
    }
    // The monitor exits once it has seen the container go; do not wait forever for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.monitor_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if c.monitor_alive() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.state.monitor_pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    crate::fault::at(crate::fault::Step::RmKilled);
    let _ = rt.delete_force(&c.id);
    crate::fault::at(crate::fault::Step::RmRuntimeDeleted);
    crate::network::release(root, db, c)?;
    crate::fault::at(crate::fault::Step::RmNetworkReleased);
    let cdir = super::dir(root, &c.id);
    Layout::new(&cdir).umount()?;
    crate::fault::at(crate::fault::Step::RmUnmounted);
    // Files first: once the record is gone, `ps -a` says the container is gone.
    remove_dir(&cdir)?;
    crate::fault::at(crate::fault::Step::RmDirRemoved);
    db.remove_container(&c.id, &[crate::events::container_event(c, "destroy", &[])])?;
    Ok(())
}

/// `wait`: blocks until the container is not running; returns its exit code.
pub fn wait(db: &Db, c: &Container) -> Result<i32, OpsError> {
    match poll_until(db, &c.id, None, stopped)? {
        Some(last) => Ok(last.state.exit_code),
        // Removed on exit (--rm): its monitor kept the code.
        None => Ok(db.removed_exit(&c.id)?.unwrap_or(c.state.exit_code)),
    }
}

pub fn pause(root: &Path, db: &mut Db, c: &Container) -> Result<(), OpsError> {
    match c.effective_status() {
        Status::Paused => return Err(OpsError::AlreadyPaused(c.id.clone())),
        Status::Running => {}
        _ => return Err(OpsError::NotRunning(c.id.clone())),
    }
    runtime(root, c).pause(&c.id)?;
    super::update_reporting(
        db,
        &c.id,
        |s| {
            if s.status == Status::Running {
                s.status = Status::Paused
            }
        },
        &[crate::events::container_event(c, "pause", &[])],
    )?;
    Ok(())
}

pub fn unpause(root: &Path, db: &mut Db, c: &Container) -> Result<(), OpsError> {
    if c.effective_status() != Status::Paused {
        return Err(OpsError::NotPaused(c.id.clone()));
    }
    runtime(root, c).resume(&c.id)?;
    super::update_reporting(
        db,
        &c.id,
        |s| {
            if s.status == Status::Paused {
                s.status = Status::Running
            }
        },
        &[crate::events::container_event(c, "unpause", &[])],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_parse() {
        assert!(parse_start("started", "x").is_ok());
        match parse_start("error 127 exec: not found", "x") {
            Err(OpsError::Start { code, msg }) => {
                assert_eq!(code, 127);
                assert_eq!(msg, "exec: not found");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_start("", "x"),
            Err(OpsError::MonitorLost(_))
        ));
    }
}
