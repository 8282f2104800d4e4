//! The lifecycle commands: start, stop, kill, restart, rm, wait, rename, pause, unpause.
//! Each acts on every named container and reports failures docker's way: the names
//! that worked on stdout, one error line each for the rest, exit status 1.

use std::path::Path;

use wharf::container::{lookup, names, ops, Container};
use wharf::context::Access;

use super::Exit;

/// Runs `f` for each name; prints the name on success.
fn each(
    root: &Path,
    names: &[String],
    mut f: impl FnMut(&mut wharf::context::Context, &Container) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    each_printing(root, names, |ctx, c, n| f(ctx, c).map(|()| n.to_string()))
}

/// Runs `f` for each named container and prints what it returns; one error line per
/// failure, exit 1.
fn each_printing(
    root: &Path,
    names: &[String],
    mut f: impl FnMut(&mut wharf::context::Context, &Container, &str) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let mut ctx = super::open(root, Access::Shared)?;
    super::for_each_name(names, |n| {
        let c = lookup::find(&ctx.db, n)?;
        f(&mut ctx, &c, n).map(Some)
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

fn start_one(root: &Path, c: &Container) -> anyhow::Result<()> {
    if c.is_running() {
        return Ok(());
    }
    let mut pipe = ops::start_monitor(root, c, false, None)?;
    pipe.wait_started(&c.id)?;
    Ok(())
}

pub fn start(root: &Path, a: StartArgs) -> anyhow::Result<()> {
    if a.attach || a.interactive {
        let [name] = a.containers.as_slice() else {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        };
        let c = {
            let ctx = super::open(root, Access::Shared)?;
            lookup::find(&ctx.db, name)?
        };
        if c.is_running() {
            anyhow::bail!("container {} is already running", c.id);
        }
        let keys = wharf::tty::detach::parse(&a.detach_keys)?;
        return super::run::attach_session(root, &c, a.interactive, keys);
    }
    each(root, &a.containers, |_, c| start_one(root, c))
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
    each(root, &a.containers, |ctx, c| {
        Ok(ops::stop(root, &mut ctx.db, c, a.time)?)
    })
}

pub fn restart(root: &Path, a: StopArgs) -> anyhow::Result<()> {
    each(root, &a.containers, |ctx, c| {
        ops::stop(root, &mut ctx.db, c, a.time)?;
        let c = lookup::find(&ctx.db, &c.id)?;
        start_one(root, &c)
    })
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
    let signal = wharf::container::parse::signal(&a.signal).map_err(super::daemon_error)?;
    each(root, &a.containers, |ctx, c| {
        ops::kill(root, &mut ctx.db, c, signal)
            .map_err(|e| anyhow::anyhow!("Cannot kill container: {}: {e}", c.name))
    })
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
    each(root, &a.containers, |ctx, c| {
        ops::remove(root, &mut ctx.db, c, a.force)?;
        if a.volumes {
            wharf::volume::remove_anonymous_of(&mut ctx.db, root, c)?;
        }
        Ok(())
    })
}

#[derive(clap::Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

pub fn pause(root: &Path, a: NamesArgs) -> anyhow::Result<()> {
    each(root, &a.containers, |ctx, c| {
        Ok(ops::pause(root, &mut ctx.db, c)?)
    })
}

pub fn unpause(root: &Path, a: NamesArgs) -> anyhow::Result<()> {
    each(root, &a.containers, |ctx, c| {
        Ok(ops::unpause(root, &mut ctx.db, c)?)
    })
}

/// `wait`: prints each container's exit code once it stops. A `--rm` container that is
/// already gone is still found by its full id, whose code its monitor kept.
pub fn wait(root: &Path, a: NamesArgs) -> anyhow::Result<()> {
    let ctx = super::open(root, Access::Shared)?;
    super::for_each_name(&a.containers, |n| {
        let code = match lookup::find(&ctx.db, n) {
            Ok(c) => ops::wait(&ctx.db, &c)?,
            Err(e) => ctx.db.removed_exit(n)?.ok_or(e)?,
        };
        Ok(Some(code.to_string()))
    })
}

#[derive(clap::Args, Debug)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

pub fn rename(root: &Path, a: RenameArgs) -> anyhow::Result<()> {
    let mut ctx = super::open(root, Access::Shared)?;
    let r = (|| -> anyhow::Result<()> {
        let c = lookup::find(&ctx.db, &a.container)?;
        let new = names::validate(&a.new_name)?;
        if new == c.name {
            anyhow::bail!("Renaming a container with the same name as its current name");
        }
        ctx.db.rename_container(&c.id, new)?;
        Ok(())
    })();
    r.map_err(|e| {
        eprintln!("Error response from daemon: {e}");
        Exit(1).into()
    })
}

/// The hidden `__monitor` entry: never returns.
#[derive(clap::Args, Debug)]
pub struct MonitorArgs {
    /// Descriptor of the status pipe to the starter
    #[arg(long)]
    status_fd: Option<i32>,
    /// Hand our stdin to the container
    #[arg(long)]
    stdin: bool,
    /// Descriptor of the starter's attach socket
    #[arg(long)]
    attach_fd: Option<i32>,
    id: String,
}

pub fn monitor(root: &Path, a: MonitorArgs) -> anyhow::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: the starter passed this descriptor to us for our exclusive use.
    let status = a.status_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: stdin is ours to give away; nothing else in the monitor reads it.
    let stdin = a.stdin.then(|| unsafe { OwnedFd::from_raw_fd(0) });
    // SAFETY: the starter passed this descriptor to us for our exclusive use.
    let client = a.attach_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let root = std::path::absolute(root)?;
    wharf::monitor::run(&root, &a.id, status, stdin, client)
}
