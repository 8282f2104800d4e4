//! OCI hooks: each runs as a child process with the container state on stdin, and a `timeout`
//! enforced by polling a pidfd (hull has no threads to spare for timers). A hook's stdout and
//! stderr are kept (in memory files, which never fill up as a pipe would) for the error that
//! reports its failure, in runc's words: `error running prestart hook #1: exit status 1,
//! stdout: ..., stderr: ...`.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2, execve, fork, pipe2, ForkResult};
use oci_spec::runtime::{Hook, Hooks};

use crate::syscall::{pidfd_open, pidfd_wait_exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    #[allow(deprecated)] // prestart is deprecated in runtime-spec but still run by every runtime
    pub fn of(self, hooks: &Hooks) -> &[Hook] {
        match self {
            Kind::Prestart => hooks.prestart().as_deref(),
            Kind::CreateRuntime => hooks.create_runtime().as_deref(),
            Kind::CreateContainer => hooks.create_container().as_deref(),
            Kind::StartContainer => hooks.start_container().as_deref(),
            Kind::Poststart => hooks.poststart().as_deref(),
            Kind::Poststop => hooks.poststop().as_deref(),
        }
        .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("error running {kind} hook #{index}: {message} (hook {path})")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        message: String,
    },
}

/// Where hooks run and what environment a hook without its own `env` gets. As in runc, that is
/// the runtime's own environment for the hooks the runtime runs, and the container process's
/// for those that init runs (createContainer, startContainer).
#[derive(Debug, Default)]
pub struct Context<'a> {
    /// The working directory: the container's rootfs for createContainer hooks, which run
    /// before pivot_root (hook libraries are copied in with relative paths).
    pub cwd: Option<&'a Path>,
    pub env: Option<Vec<String>>,
}

/// Runs the hooks of `kind` in order; the first failure stops the rest.
pub fn run(
    kind: Kind,
    hooks: Option<&Hooks>,
    state: &[u8],
    ctx: &Context,
) -> Result<(), HookError> {
    let Some(hooks) = hooks else { return Ok(()) };
    for (index, hook) in kind.of(hooks).iter().enumerate() {
        run_one(hook, state, ctx).map_err(|message| HookError::Failed {
            kind: kind.name(),
            index,
            path: hook.path().display().to_string(),
            message,
        })?;
    }
    Ok(())
}

/// Runs every hook of `kind`, logging a warning for each that fails: runtime-spec's rule for
/// poststart and poststop, whose failures must not change the lifecycle.
pub fn run_warning(kind: Kind, hooks: Option<&Hooks>, state: &[u8]) {
    let Some(hooks) = hooks else { return };
    for (index, hook) in kind.of(hooks).iter().enumerate() {
        if let Err(message) = run_one(hook, state, &Context::default()) {
            crate::logging::warn(
                &HookError::Failed {
                    kind: kind.name(),
                    index,
                    path: hook.path().display().to_string(),
                    message,
                }
                .to_string(),
            );
        }
    }
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, String> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} contains a NUL byte")))
        .collect()
}

fn run_one(hook: &Hook, state: &[u8], ctx: &Context) -> Result<(), String> {
    let path = CString::new(hook.path().as_os_str().as_encoded_bytes())
        .map_err(|_| "path contains a NUL byte".to_string())?;
    let args = match hook.args().as_deref() {
        Some(a) if !a.is_empty() => cstrings(a)?,
        _ => vec![path.clone()],
    };
    let env = match (hook.env(), &ctx.env) {
        (Some(env), _) | (None, Some(env)) => cstrings(env)?,
        (None, None) => cstrings(
            &std::env::vars_os()
                .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
                .collect::<Vec<_>>(),
        )?,
    };
    let cwd = ctx
        .cwd
        .map(|d| CString::new(d.as_os_str().as_encoded_bytes()))
        .transpose()
        .map_err(|_| "working directory contains a NUL byte".to_string())?;
    let (read, write): (OwnedFd, OwnedFd) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let out = memfd("hook-stdout")?;
    let err = memfd("hook-stderr")?;

    // SAFETY: hull is single-threaded; the child only calls async-signal-safe functions
    // before execve.
    let child = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let _ = dup2(read.as_raw_fd(), 0);
            let _ = dup2(out.as_raw_fd(), 1);
            let _ = dup2(err.as_raw_fd(), 2);
            if let Some(dir) = &cwd {
                // SAFETY: chdir with a valid C string; async-signal-safe.
                if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
                    // SAFETY: _exit is always safe.
                    unsafe { libc::_exit(126) }
                }
            }
            crate::process::reset_signals();
            let _ = execve(&path, &args, &env);
            // SAFETY: _exit is always safe; nothing of the parent's may run here.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(read);
    let with_output = |reason: String| {
        format!(
            "{reason}, stdout: {}, stderr: {}",
            contents(&out).trim_end(),
            contents(&err).trim_end()
        )
    };
    let pidfd = pidfd_open(child).map_err(|e| format!("pidfd_open: {e}"))?;
    // The state is far below a pipe's capacity, so this never blocks; a hook that does not
    // read it gets EPIPE, which is its business.
    let _ = std::fs::File::from(write).write_all(state);

    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let exited = pidfd_wait_exit(&pidfd, timeout).map_err(|e| format!("waiting: {e}"))?;
    if !exited {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(with_output(format!(
            "timed out after {}s",
            timeout.unwrap_or_default().as_secs()
        )));
    }
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(WaitStatus::Exited(_, 127)) => {
                return Err(with_output(
                    "could not be executed (exit status 127)".into(),
                ))
            }
            Ok(WaitStatus::Exited(_, code)) => {
                return Err(with_output(format!("exit status {code}")))
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Err(with_output(crate::syscall::signal_text(sig)))
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting: {e}")),
        }
    }
}

/// An anonymous in-memory file for a hook's output.
fn memfd(name: &str) -> Result<OwnedFd, String> {
    let cname = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: memfd_create with a valid C string; the fd is ours.
    let fd = Errno::result(unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) })
        .map_err(|e| format!("memfd_create: {e}"))?;
    // SAFETY: memfd_create returned a new fd.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// What a hook wrote to `fd`, at most 4 KiB of it.
fn contents(fd: &OwnedFd) -> String {
    use std::io::{Read, Seek};
    let mut bytes = Vec::new();
    if let Ok(mut f) = fd.try_clone().map(std::fs::File::from) {
        if f.seek(std::io::SeekFrom::Start(0)).is_ok() {
            let _ = f.take(4096).read_to_end(&mut bytes);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
