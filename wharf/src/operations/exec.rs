//! `exec`: a process in a running container through the runtime's `exec`, with the
//! container's environment and link variables, its user resolved in its own files, and
//! docker's exit codes (126/127 when the runtime could not start the process). The caller
//! chooses the process's stdio: its own (the CLI), pipes or a terminal (the API).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use nix::sys::wait::WaitStatus;

use super::OperationError;
use crate::bundle::{self, user};
use crate::container::{self, lookup, ops, rootfs::Layout, Container};
use crate::context::{Access, Context};
use crate::tty::console::ConsoleSocket;

/// What to run, as `docker exec` and `POST /containers/{id}/exec` give it.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub container: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// Run in the background: nobody waits for the process.
    pub detach: bool,
    /// With `tty`: the runtime proxies the terminal over its own stdio (runc's contract for
    /// a terminal with neither `--detach` nor a console socket), which the caller makes a
    /// terminal, instead of handing the pty over (the API service: a process
    /// that must not become a subreaper of the exec'd processes).
    pub runtime_proxies_tty: bool,
}

/// A process ready to start: the runtime's command line and the files it needs, which go
/// with it.
pub struct Prepared {
    pub container: Container,
    command: Command,
    log: PathBuf,
    pid_file: PathBuf,
    console: Option<ConsoleSocket>,
    _process: ProcessFile,
}

/// A process started with a terminal: the pty master and the process to wait for.
pub struct TtyProcess {
    pub master: OwnedFd,
    pub pid: i32,
}

/// Checks the container, resolves the user and writes the process file.
pub fn prepare(root: &Path, req: &ExecRequest) -> Result<Prepared, OperationError> {
    if req.tty && req.detach {
        // Nobody would hold the terminal of a detached exec: there is no monitor for it.
        return Err(OperationError::Invalid(
            "exec with both -t and -d is not supported: nothing would hold the terminal".into(),
        ));
    }
    let ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, &req.container)?;
    let link_env = crate::network::link_env(&ctx.db, &c)?;
    drop(ctx);
    if c.effective_status() == container::Status::Paused {
        return Err(OperationError::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        )));
    }
    if !c.is_running() {
        return Err(OperationError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let cdir = container::dir(root, &c.id);
    let user_spec = req
        .user
        .clone()
        .unwrap_or_else(|| c.spec.config.user.clone());
    let u = user::resolve(&Layout::new(&cdir).merged, &user_spec)
        .map_err(|e| OperationError::Invalid(e.to_string()))?;
    // One set of files per exec: several may run at once in the same container.
    let tag = format!(
        "exec-{}",
        &container::random_id().map_err(OperationError::Io)?[..16]
    );
    let log = cdir.join(format!("{tag}.log"));
    let cwd = req
        .workdir
        .clone()
        .unwrap_or_else(|| c.spec.config.working_dir.clone());
    let extra_env: Vec<String> = req
        .env
        .iter()
        .filter_map(|e| container::parse::env_entry(e))
        .collect();
    let process = bundle::exec_process(
        &cdir.join("bundle"),
        &bundle::ExecProcess {
            args: &req.command,
            env: bundle::process_env(&c, req.tty, &link_env, &extra_env),
            cwd: &cwd,
            user: &u,
            terminal: req.tty,
        },
    )
    .map_err(|e| OperationError::Invalid(e.to_string()))?;
    let process_file = ProcessFile::write(&cdir.join(format!("{tag}.json")), &process)?;
    let mut command = ops::runtime(root, &c).command(&[]);
    command
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "exec", "--process"])
        .arg(&process_file.0);
    let pid_file = cdir.join(format!("{tag}.pid"));
    let console = if req.tty && !req.runtime_proxies_tty {
        let console = ConsoleSocket::bind(&cdir, &format!("{tag}.sock"))?;
        // runc's contract: a console socket only with --detach. The process then
        // reparents to us as a subreaper, so we still collect its exit status.
        nix::sys::prctl::set_child_subreaper(true)?;
        command
            .args(["--detach", "--console-socket"])
            .arg(console.path())
            .arg("--pid-file")
            .arg(&pid_file);
        Some(console)
    } else {
        if req.detach {
            command.arg("--detach");
        }
        None
    };
    command.arg(&c.id);
    Ok(Prepared {
        container: c,
        command,
        log,
        pid_file,
        console,
        _process: process_file,
    })
}

impl Prepared {
    /// The runtime's command, for the caller to give it stdio and run it (without `tty`).
    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    /// With `tty`: runs the runtime, which starts the process and hands over its pty.
    pub fn start_tty(mut self) -> Result<TtyProcess, OperationError> {
        let Some(console) = self.console.take() else {
            return Err(OperationError::Invalid("the exec has no terminal".into()));
        };
        self.command.stdin(std::process::Stdio::null());
        let status = self.command.status()?;
        if !status.success() {
            return Err(self.failure(status));
        }
        let master = console.receive(|| false)?;
        let pid = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        let _ = std::fs::remove_file(&self.pid_file);
        let pid = pid.ok_or_else(|| OperationError::Runtime {
            code: 126,
            msg: "the runtime wrote no pid file".into(),
        })?;
        Ok(TtyProcess { master, pid })
    }

    /// The process's exit code from the runtime's status (without `tty`): the runtime's
    /// own failure (255) becomes docker's 126/127 with the runtime's message.
    pub fn outcome(&self, status: ExitStatus) -> Result<i32, OperationError> {
        match status.code() {
            Some(255) => Err(self.failure(status)),
            Some(code) => Ok(code),
            None => Ok(125),
        }
    }

    fn failure(&self, status: ExitStatus) -> OperationError {
        match crate::runtime::logged_error(&self.log) {
            Some(msg) => OperationError::Runtime {
                code: crate::monitor::start_failure_code(&msg).max(126),
                msg,
            },
            None => OperationError::Runtime {
                code: status.code().unwrap_or(125),
                msg: format!("the runtime's exec failed: {status}"),
            },
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Waits for an exec'd process with a terminal (a child of ours as subreaper); its exit
/// code, 128+signal when killed.
pub fn wait(pid: i32) -> Result<i32, OperationError> {
    match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)? {
        WaitStatus::Exited(_, code) => Ok(code),
        WaitStatus::Signaled(_, sig, _) => Ok(128 + sig as i32),
        other => Err(OperationError::Runtime {
            code: 125,
            msg: format!("waiting for the exec: {other:?}"),
        }),
    }
}

struct ProcessFile(PathBuf);

impl ProcessFile {
    fn write(path: &Path, process: &serde_json::Value) -> std::io::Result<Self> {
        std::fs::write(path, serde_json::to_vec(process).unwrap_or_default())?;
        Ok(Self(path.to_path_buf()))
    }
}

impl Drop for ProcessFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
