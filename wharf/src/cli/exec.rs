//! `exec`: runs a process in a running container through the runtime's `exec`, with
//! the container's environment, user resolution and docker's exit codes. With `-t` the
//! runtime hands us the pty master over a console socket and we proxy our terminal to it.

use std::path::Path;
use std::process::Stdio;

use wharf::attach::{self, ClientOptions, Outcome, Remote};
use wharf::operations::exec::{self, ExecRequest};
use wharf::operations::{ErrorKind, OperationError};
use wharf::tty::detach;

use super::Exit;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = detach::DEFAULT)]
    detach_keys: String,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let keys = detach::parse(&a.detach_keys).map_err(super::run::fail)?;
    if !(a.tty && a.detach) {
        super::run::require_tty_stdin(a.tty, a.interactive)?;
    }
    let req = ExecRequest {
        container: a.container.clone(),
        command: a.command.clone(),
        tty: a.tty,
        env: a.env.clone(),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        detach: a.detach,
        runtime_proxies_tty: false,
    };
    // docker's client exits 1 for a missing, stopped or paused container, 125/126/127
    // once the exec itself fails.
    let refused = |e: OperationError| match e.kind() {
        ErrorKind::NotFound | ErrorKind::Conflict => super::daemon_error(e),
        _ => failed(e),
    };
    let mut prepared = exec::prepare(root, &req).map_err(refused)?;
    if a.tty {
        let exec::TtyProcess { master, pid } = prepared.start_tty().map_err(failed)?;
        let opts = ClientOptions {
            stdin: a.interactive,
            tty: true,
            detach_keys: keys,
        };
        if attach::run_client(&Remote::Master(master), &opts, None)? == Outcome::Detached {
            return Ok(());
        }
        return super::run::exit_with(exec::wait(pid).map_err(failed)?);
    }
    let cmd = prepared.command();
    if !a.interactive {
        cmd.stdin(Stdio::null());
    }
    let status = cmd.status().map_err(super::run::fail)?;
    super::run::exit_with(prepared.outcome(status).map_err(failed)?)
}

/// The runtime's failure to start the process: docker's 126/127 (125 otherwise).
fn failed(e: OperationError) -> anyhow::Error {
    match e {
        OperationError::Runtime { code, msg } => {
            eprintln!("wharf: Error response from daemon: {msg}");
            Exit(code).into()
        }
        e => super::run::fail(e),
    }
}
