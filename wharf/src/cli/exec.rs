//! `exec`: runs a process in a running container through the runtime's `exec`, with
//! the container's environment, user resolution and docker's exit codes. With `-t` the
//! runtime hands us the pty master over a console socket and we proxy our terminal to it.

use std::path::Path;
use std::process::Stdio;

use nix::sys::wait::WaitStatus;

use wharf::attach::{self, ClientOptions, Outcome, Remote};
use wharf::bundle::{self, user};
use wharf::container::{self, lookup, ops, rootfs::Layout};
use wharf::context::Access;
use wharf::tty::{console::ConsoleSocket, detach};

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
    if a.tty && a.detach {
        // Nobody would hold the terminal of a detached exec: there is no monitor for it.
        return Err(super::run::fail(
            "exec with both -t and -d is not supported: nothing would hold the terminal",
        ));
    }
    super::run::require_tty_stdin(a.tty, a.interactive)?;
    let ctx = super::open(root, Access::Shared)?;
    // docker's client exits 1 for these, 125/126/127 only once the exec itself fails.
    let c = lookup::find(&ctx.db, &a.container).map_err(super::daemon_error)?;
    let link_env = wharf::network::link_env(&ctx.db, &c).map_err(super::daemon_error)?;
    drop(ctx);
    if c.effective_status() == container::Status::Paused {
        return Err(super::daemon_error(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        )));
    }
    if !c.is_running() {
        return Err(super::daemon_error(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let cdir = container::dir(root, &c.id);
    let user_spec = a.user.clone().unwrap_or_else(|| c.spec.config.user.clone());
    let u = user::resolve(&Layout::new(&cdir).merged, &user_spec).map_err(super::run::fail)?;
    let rt = ops::runtime(root, &c);
    let log = cdir.join("exec.log");
    let _ = std::fs::remove_file(&log);
    let cwd = a
        .workdir
        .clone()
        .unwrap_or_else(|| c.spec.config.working_dir.clone());
    let extra_env: Vec<String> = a
        .env
        .iter()
        .filter_map(|e| wharf::container::parse::env_entry(e))
        .collect();
    let process = bundle::exec_process(
        &cdir.join("bundle"),
        &bundle::ExecProcess {
            args: &a.command,
            env: bundle::process_env(&c, a.tty, &link_env, &extra_env),
            cwd: &cwd,
            user: &u,
            terminal: a.tty,
        },
    )
    .map_err(super::run::fail)?;
    let process_file = ProcessFile::write(&cdir, &process).map_err(super::run::fail)?;
    let mut cmd = rt.command(&[]);
    cmd.arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "exec", "--process"])
        .arg(&process_file.0);
    let pid_file = cdir.join(format!("exec-{}.pid", std::process::id()));
    let console = if a.tty {
        let console = ConsoleSocket::bind(&cdir, &format!("exec-{}.sock", std::process::id()))
            .map_err(super::run::fail)?;
        // runc's contract: a console socket only with --detach. The process then
        // reparents to us as a subreaper, so we still collect its exit status.
        nix::sys::prctl::set_child_subreaper(true).map_err(super::run::fail)?;
        cmd.args(["--detach", "--console-socket"])
            .arg(console.path())
            .arg("--pid-file")
            .arg(&pid_file);
        Some(console)
    } else {
        if a.detach {
            cmd.arg("--detach");
        }
        None
    };
    cmd.arg(&c.id);
    if !a.interactive || console.is_some() {
        cmd.stdin(Stdio::null());
    }
    let status = cmd.status().map_err(super::run::fail)?;
    if let (Some(console), true) = (console, status.success()) {
        let master = console.receive(|| false).map_err(super::run::fail)?;
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        let _ = std::fs::remove_file(&pid_file);
        let pid = pid.ok_or_else(|| super::run::fail("the runtime wrote no pid file"))?;
        let opts = ClientOptions {
            stdin: a.interactive,
            tty: true,
            detach_keys: keys,
        };
        if attach::run_client(&Remote::Master(master), &opts, None)? == Outcome::Detached {
            return Ok(());
        }
        let code = match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => code,
            Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i32,
            other => return Err(super::run::fail(format!("waiting for the exec: {other:?}"))),
        };
        return if code == 0 {
            Ok(())
        } else {
            Err(Exit(code).into())
        };
    }
    let code = status.code().unwrap_or(125);
    if code == 255 {
        // The runtime failed to start the process: docker's 126/127 from its message.
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().rev().find(|l| l.contains("\"error\"")) {
            let msg = wharf::runtime::error_line(l);
            eprintln!("wharf: Error response from daemon: {msg}");
            return Err(Exit(wharf::monitor::start_failure_code(&msg).max(126)).into());
        }
    }
    if code == 0 {
        Ok(())
    } else {
        Err(Exit(code).into())
    }
}

/// The exec's process.json in the container's directory, removed when the exec is done.
struct ProcessFile(std::path::PathBuf);

impl ProcessFile {
    fn write(cdir: &Path, process: &serde_json::Value) -> std::io::Result<Self> {
        let path = cdir.join(format!("exec-{}.json", std::process::id()));
        std::fs::write(&path, serde_json::to_vec(process).unwrap_or_default())?;
        Ok(Self(path))
    }
}

impl Drop for ProcessFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
