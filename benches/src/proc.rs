//! Process plumbing: timing one command from spawn to reap, and waiting for container
//! processes that are not our children until the runtime exits and they are reparented to us
//! (the bench is a subreaper, as containerd's shim is, so no container is left for the slow
//! reaper at PID 1).

use std::fs::File;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one command cost.
pub struct Outcome {
    pub elapsed: Duration,
    pub exit_code: i32,
    /// The process's pid, for finding it in a trace.
    pub pid: libc::pid_t,
    /// CLOCK_MONOTONIC in microseconds before the spawn and after the reaping: the window
    /// of the process in a trace taken with tracefs' `mono` clock.
    pub window_us: (f64, f64),
}

/// CLOCK_MONOTONIC in nanoseconds (the clock of `Instant`, read raw to compare with a trace).
fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Makes this process the reaper of orphaned descendants.
pub fn become_subreaper() -> Result<(), String> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(format!("PR_SET_CHILD_SUBREAPER: {}", errno()));
    }
    Ok(())
}

/// Spawns `cmd` with stdin/stdout on /dev/null and stderr appended to `log`, and reaps it with
/// waitpid. Stdout is never a pipe: a detached container inherits it and would hold it open.
pub fn run_timed(mut cmd: Command, log: &File) -> Result<Outcome, String> {
    let stderr = log.try_clone().map_err(|e| format!("dup log: {e}"))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let started = monotonic_ns();
    let child = cmd
        .spawn()
        .map_err(|e| format!("spawn {:?}: {e}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    loop {
        // SAFETY: a valid pointer to a local; the pid is our child, not yet reaped.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        if errno() != libc::EINTR {
            return Err(format!("waitpid {pid}: {}", errno()));
        }
    }
    let reaped = monotonic_ns();
    let exit_code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Outcome {
        elapsed: Duration::from_nanos(reaped - started),
        exit_code,
        pid,
        window_us: (started as f64 / 1e3, reaped as f64 / 1e3),
    })
}

/// Waits up to `timeout` for `pid` to exit, then reaps it if it is our child. A pidfd works
/// whoever the parent is, so this is also right while an intermediate runtime process lives.
pub fn wait_exit(pid: libc::pid_t, timeout: Duration) -> Result<(), String> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    if fd < 0 {
        // Already reaped by someone else (or never existed): nothing left to wait for.
        return if errno() == libc::ESRCH {
            Ok(())
        } else {
            Err(format!("pidfd_open {pid}: {}", errno()))
        };
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = Instant::now() + timeout;
    let ready = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int) };
        if rc > 0 {
            break true;
        }
        if rc == 0 || errno() != libc::EINTR {
            break false;
        }
    };
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd) };
    if !ready {
        return Err(format!("process {pid} did not exit within {timeout:?}"));
    }
    let mut status = 0;
    // SAFETY: reaps `pid` only if it is our (zombie) child; ECHILD otherwise, which is fine.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    Ok(())
}

/// Reaps every exited child that nobody waits for (container processes reparented to us).
/// Called only when no `run_timed` is in flight, so it never steals a status we need.
pub fn reap_orphans() {
    let mut status = 0;
    // SAFETY: WNOHANG waitpid on any child; stops at 0 (none exited) or -1 (no children).
    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Turns SIGINT, SIGTERM and SIGHUP into a flag that the benchmark loops check, so that an
/// interrupted run still unwinds through its guards (containers, mounts, temp dirs).
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// An error once an interrupt arrived.
pub fn check_interrupted() -> Result<(), String> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err("interrupted; cleaning up".into());
    }
    Ok(())
}
