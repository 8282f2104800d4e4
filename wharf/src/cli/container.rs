//! The lifecycle commands: start, stop, kill, restart, rm, wait, rename, update, pause,
//! unpause.
//! Each acts on every named container and reports failures docker's way: the names
//! that worked on stdout, one error line each for the rest, exit status 1.

use std::path::Path;

use wharf::operations::container as op;

use super::Exit;

/// Runs `f` on every named container, printing the name as given when it worked.
fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> Result<(), wharf::operations::OperationError>,
) -> anyhow::Result<()> {
    super::for_each_name(names, |n| {
        f(n)?;
        Ok(Some(n.to_string()))
    })
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = wharf::tty::detach::DEFAULT)]
    detach_keys: String,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

pub fn start(root: &Path, a: StartArgs) -> anyhow::Result<()> {
    if a.attach || a.interactive {
        let [name] = a.containers.as_slice() else {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        };
        let c = op::find(root, name)?;
        if c.is_running() {
            anyhow::bail!("container {} is already running", c.id);
        }
        let keys = wharf::tty::detach::parse(&a.detach_keys)?;
        return super::run::attach_session(root, &c, a.interactive, keys);
    }
    each(&a.containers, |n| op::start_named(root, n).map(drop))
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container (-1: wait without limit)
    #[arg(short = 't', long, alias = "timeout", allow_negative_numbers = true)]
    time: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

pub fn stop(root: &Path, a: StopArgs) -> anyhow::Result<()> {
    each(&a.containers, |n| op::stop(root, n, a.time).map(drop))
}

pub fn restart(root: &Path, a: StopArgs) -> anyhow::Result<()> {
    each(&a.containers, |n| op::restart(root, n, a.time).map(drop))
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

pub fn kill(root: &Path, a: KillArgs) -> anyhow::Result<()> {
    wharf::container::parse::signal(&a.signal).map_err(super::daemon_error)?;
    each(&a.containers, |n| op::kill(root, n, &a.signal).map(drop))
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

pub fn rm(root: &Path, a: RmArgs) -> anyhow::Result<()> {
    each(&a.containers, |n| {
        op::remove(root, n, a.force, a.volumes).map(drop)
    })
}

#[derive(clap::Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

pub fn pause(root: &Path, a: NamesArgs) -> anyhow::Result<()> {
    each(&a.containers, |n| op::pause(root, n).map(drop))
}

pub fn unpause(root: &Path, a: NamesArgs) -> anyhow::Result<()> {
    each(&a.containers, |n| op::unpause(root, n).map(drop))
}

/// `wait`: prints each container's exit code once it stops.
pub fn wait(root: &Path, a: NamesArgs) -> anyhow::Result<()> {
    super::for_each_name(&a.containers, |n| Ok(Some(op::wait(root, n)?.to_string())))
}

#[derive(clap::Args, Debug)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

pub fn rename(root: &Path, a: RenameArgs) -> anyhow::Result<()> {
    op::rename(root, &a.container, &a.new_name).map_err(|e| {
        eprintln!("Error response from daemon: {e}");
        Exit(1).into()
    })
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    resources: super::resources::ResourceFlags,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// `update`: new limits or restart policy for each container.
pub fn update(root: &Path, a: UpdateArgs) -> anyhow::Result<()> {
    let mut req = a.resources.update()?;
    req.restart_policy = a
        .restart
        .as_deref()
        .map(wharf::container::parse::restart_policy)
        .transpose()?;
    if req.is_empty() {
        anyhow::bail!("you must provide one or more flags when using this command");
    }
    each(&a.containers, |n| op::update(root, n, &req))
}
