//! `exec`: runs a process in a running container through the runtime's `exec`, with
//! the container's environment, user resolution and docker's exit codes.

use std::path::Path;
use std::process::Stdio;

use wharf::bundle::user;
use wharf::container::{self, lookup, ops, rootfs::Layout};
use wharf::context::Access;

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
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let ctx = super::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, &a.container).map_err(super::run::fail)?;
    drop(ctx);
    if !c.is_running() {
        return Err(super::run::fail(format!(
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
    let mut cmd = rt.command(&[]);
    cmd.arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "exec"]);
    cmd.arg("--user").arg(format!("{}:{}", u.uid, u.gid));
    for g in &u.additional_gids {
        cmd.arg("--additional-gids").arg(g.to_string());
    }
    let cwd = a
        .workdir
        .clone()
        .unwrap_or_else(|| c.spec.config.working_dir.clone());
    if !cwd.is_empty() {
        cmd.arg("--cwd").arg(cwd);
    }
    for e in c.spec.config.env.iter().chain(a.env.iter()) {
        cmd.arg("--env").arg(e);
    }
    if a.tty {
        cmd.arg("--tty");
    }
    if a.detach {
        cmd.arg("--detach");
    }
    cmd.arg(&c.id).args(&a.command);
    if !a.interactive {
        cmd.stdin(Stdio::null());
    }
    let status = cmd.status().map_err(super::run::fail)?;
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
