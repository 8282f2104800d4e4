//! The process tree of a container. The parent (the hull command) prepares everything that can
//! fail without side effects, clones the child with the namespaces it can create at once, moves
//! it into its cgroup and answers its requests; the child becomes the container's init and
//! blocks on exec.fifo until `start`.

pub mod channel;
pub mod exec;
mod finish;
pub mod init;
pub mod parent;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigmaskHow, Signal};
use nix::sys::signalfd::SigSet;
use oci_spec::runtime::Spec;

use crate::capabilities;
use crate::namespaces;
use crate::seccomp;
use crate::spec::Bundle;

/// Everything the container's init needs, prepared by the parent before the clone so that the
/// child only does kernel work.
pub struct Container<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub namespaces: namespaces::Plan,
    pub capabilities: Option<capabilities::Plan>,
    pub seccomp: Option<seccomp::Program>,
    /// O_PATH fd of `<state>/exec.fifo`; init reopens it for writing to wait for `start`.
    pub fifo: OwnedFd,
    /// A connected console socket, when the process has a terminal.
    pub console: Option<OwnedFd>,
    pub no_pivot: bool,
    pub new_keyring: bool,
    /// fds 3..3+preserve_fds pass into the container (LISTEN_FDS included).
    pub preserve_fds: i32,
    /// Added to the process's environment (LISTEN_FDS, LISTEN_PID).
    pub extra_env: Vec<String>,
    /// How init gets into its cgroup, already created with its limits.
    pub cgroup_join: crate::cgroups::Join,
    /// The flags of the binds in init's v1 cgroupfs, when hull's side makes that mount
    /// ahead (`rootfs::cgroupfs_ahead`).
    pub cgroupfs_ahead: Option<crate::rootfs::options::Attrs>,
    /// The parent has no root: it may open init's map files only while init is dumpable.
    pub unprivileged_parent: bool,
    /// The runtime itself runs in a user namespace (rootless podman's), decided before clone
    /// where /proc is the caller's.
    pub runtime_in_userns: bool,
}

impl Container<'_> {
    pub fn spec(&self) -> &Spec {
        &self.bundle.spec
    }
}

/// Forks so that the caller goes on as the child, the first process of the namespaces that
/// apply only to children (pid, time); the intermediate reports the child's pid on `ch` and
/// exits. The child returns only once that report is on the channel - it waits for the
/// intermediate's end of a pipe to close - so the parent always reads InitPid before anything
/// the child sends. Without the wait, an intermediate preempted after fork let the child's
/// Ready arrive first, and create recorded the intermediate's pid: a zombie, so `start` said
/// "cannot start a container that has stopped" (seen with 20 concurrent runs).
pub fn fork_reporting_pid(ch: &channel::Channel) -> nix::Result<()> {
    let (reported, report) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: single-threaded; the intermediate only sends one message and exits.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop(report);
            let mut byte = [0u8; 1];
            while let Err(nix::errno::Errno::EINTR) =
                nix::unistd::read(reported.as_raw_fd(), &mut byte)
            {}
            Ok(())
        }
        nix::unistd::ForkResult::Parent { child } => {
            // The tests' way to be the preempted intermediate; not in release builds.
            #[cfg(debug_assertions)]
            if let Some(ms) = std::env::var("HULL_TEST_SLOW_INTERMEDIATE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            let code = ch.send(&channel::Message::InitPid(child.as_raw())).is_err() as i32;
            drop(report);
            // SAFETY: _exit skips the parent's atexit handlers and buffers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Duplicates `fd` to a number at or above `min` (close-on-exec), so the runtime's own fds never
/// sit among the preserved ones.
pub fn fd_at_least(fd: OwnedFd, min: RawFd) -> nix::Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    let new = fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: fcntl returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The signals that end a process by default and that a created container's init answers.
const ENDING: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// What Rust's start-up does that hull relies on, for a binary without it: standard fds
/// that the caller left closed are opened on /dev/null (or a file hull opens would take their
/// numbers and receive the container's output), and SIGPIPE is ignored, so that a write to a
/// caller that went away fails with EPIPE instead of killing hull halfway through a create.
/// std reads the arguments itself (glibc hands them to its `.init_array` hook).
pub fn as_rust_starts() {
    for fd in 0..3 {
        // The new fd takes the lowest free number, the closed one, and stays open for good.
        if fcntl(fd, FcntlArg::F_GETFD) == Err(nix::Error::EBADF)
            && nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDWR,
                nix::sys::stat::Mode::empty(),
            )
            .is_err()
        {
            std::process::abort();
        }
    }
    // SAFETY: ignoring a signal installs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// Restores the signal state a new program expects: Rust ignores SIGPIPE, `run` blocks the
/// signals it forwards and a waiting init handles the ending ones; none of it may leak into the
/// container or a hook.
pub fn reset_signals() {
    for s in ENDING.into_iter().chain([Signal::SIGPIPE]) {
        // SAFETY: setting the default disposition installs no handler code.
        let _ = unsafe { signal(s, SigHandler::SigDfl) };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

extern "C" fn end_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) }
}

/// While a created container waits for `start`, SIGTERM and the other ending signals end its
/// init, as they end runc's (a Go process with handlers): as pid 1 of its namespace, init would
/// otherwise ignore them, and a caller that signals it through a pidfd could not stop it.
pub fn end_on_ending_signals() -> nix::Result<()> {
    let mut set = SigSet::empty();
    for s in ENDING {
        // SAFETY: the handler only calls _exit.
        unsafe { signal(s, SigHandler::Handler(end_on_signal)) }?;
        set.add(s);
    }
    sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)
}
