//! docker's image command tree and flags; each command lives in its own file and only
//! turns flags into calls into the library.

mod container;
mod exec;
mod history;
mod images;
mod import;
mod inspect;
mod inspectish;
mod logs;
mod progress;
mod ps;
mod pull;
mod rmi;
mod run;
mod save;
mod tag;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use wharf::context::{Access, Context};

#[derive(Parser, Debug)]
#[command(
    name = "wharf",
    version,
    about = "A daemonless Docker-like container frontend"
)]
pub struct Cli {
    /// Root directory of persistent wharf state
    #[arg(
        long,
        env = "WHARF_ROOT",
        default_value = "/var/lib/wharf",
        global = true
    )]
    data_root: PathBuf,
    /// Runtime for containers: hull, runc, crun or a path to a runc-compatible binary
    #[arg(long, env = "WHARF_RUNTIME", default_value = "hull", global = true)]
    runtime: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::NamesArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Pause all processes within one or more containers
    Pause(container::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::NamesArgs),
    /// List containers
    Ps(ps::Args),
    /// Fetch the logs of a container
    Logs(logs::Args),
    /// Execute a command in a running container
    Exec(exec::Args),
    /// Return low-level information on Docker objects
    Inspect(inspect::Args),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(inspectish::DiffArgs),
    /// Display the running processes of a container
    Top(inspectish::TopArgs),
    /// Manage containers
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    #[command(name = "__monitor", hide = true)]
    Monitor(container::MonitorArgs),
    /// List images
    Images(images::Args),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::Args),
    /// Remove one or more images
    Rmi(rmi::Args),
    /// Show the history of an image
    History(history::Args),
    /// Import the contents from a tarball to create a filesystem image
    Import(import::Args),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(save::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(save::LoadArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(pull::PushArgs),
    /// Log in to a registry
    Login(pull::LoginArgs),
    /// Log out from a registry
    Logout(pull::LogoutArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(images::Args),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::Args),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(rmi::Args),
    /// Show the history of an image
    History(history::Args),
    /// Display detailed information on one or more images
    Inspect(inspect::Args),
    /// Remove unused images
    Prune(rmi::PruneArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(import::Args),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(save::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(save::LoadArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(pull::PushArgs),
}

#[derive(Subcommand, Debug)]
enum ContainerCommand {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Stop one or more running containers
    Stop(container::StopArgs),
    /// Restart one or more containers
    Restart(container::StopArgs),
    /// Kill one or more running containers
    Kill(container::KillArgs),
    /// Remove one or more containers
    Rm(container::RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::NamesArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Pause all processes within one or more containers
    Pause(container::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::NamesArgs),
    /// List containers
    #[command(visible_alias = "list", alias = "ps")]
    Ls(ps::Args),
    /// Fetch the logs of a container
    Logs(logs::Args),
    /// Execute a command in a running container
    Exec(exec::Args),
    /// Display detailed information on one or more containers
    Inspect(inspect::Args),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(inspectish::DiffArgs),
    /// Display the running processes of a container
    Top(inspectish::TopArgs),
}

/// A command's exit status when it is not 0 or 1; its message, if any, is printed already.
#[derive(Debug)]
pub struct Exit(pub i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn run_container(
    root: &std::path::Path,
    runtime: &str,
    cmd: ContainerCommand,
) -> anyhow::Result<()> {
    match cmd {
        ContainerCommand::Run(a) => run::run(root, runtime, a),
        ContainerCommand::Create(a) => run::create(root, runtime, a),
        ContainerCommand::Start(a) => container::start(root, a),
        ContainerCommand::Stop(a) => container::stop(root, a),
        ContainerCommand::Restart(a) => container::restart(root, a),
        ContainerCommand::Kill(a) => container::kill(root, a),
        ContainerCommand::Rm(a) => container::rm(root, a),
        ContainerCommand::Wait(a) => container::wait(root, a),
        ContainerCommand::Rename(a) => container::rename(root, a),
        ContainerCommand::Pause(a) => container::pause(root, a),
        ContainerCommand::Unpause(a) => container::unpause(root, a),
        ContainerCommand::Ls(a) => ps::run(root, a),
        ContainerCommand::Logs(a) => logs::run(root, a),
        ContainerCommand::Exec(a) => exec::run(root, a),
        ContainerCommand::Inspect(a) => inspect::run_kind(root, a, inspect::Kind::Container),
        ContainerCommand::Diff(a) => inspectish::diff(root, a),
        ContainerCommand::Top(a) => inspectish::top(root, a),
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let root = cli.data_root;
    let rt = cli.runtime.as_str();
    // The top-level commands are docker's shorthands for `image <sub>` and `container <sub>`.
    let cmd = match cli.command {
        Command::Run(a) => return run_container(&root, rt, ContainerCommand::Run(a)),
        Command::Create(a) => return run_container(&root, rt, ContainerCommand::Create(a)),
        Command::Start(a) => return run_container(&root, rt, ContainerCommand::Start(a)),
        Command::Stop(a) => return run_container(&root, rt, ContainerCommand::Stop(a)),
        Command::Restart(a) => return run_container(&root, rt, ContainerCommand::Restart(a)),
        Command::Kill(a) => return run_container(&root, rt, ContainerCommand::Kill(a)),
        Command::Rm(a) => return run_container(&root, rt, ContainerCommand::Rm(a)),
        Command::Wait(a) => return run_container(&root, rt, ContainerCommand::Wait(a)),
        Command::Rename(a) => return run_container(&root, rt, ContainerCommand::Rename(a)),
        Command::Pause(a) => return run_container(&root, rt, ContainerCommand::Pause(a)),
        Command::Unpause(a) => return run_container(&root, rt, ContainerCommand::Unpause(a)),
        Command::Ps(a) => return run_container(&root, rt, ContainerCommand::Ls(a)),
        Command::Logs(a) => return run_container(&root, rt, ContainerCommand::Logs(a)),
        Command::Exec(a) => return run_container(&root, rt, ContainerCommand::Exec(a)),
        Command::Inspect(a) => return inspect::run_kind(&root, a, inspect::Kind::Any),
        Command::Diff(a) => return run_container(&root, rt, ContainerCommand::Diff(a)),
        Command::Top(a) => return run_container(&root, rt, ContainerCommand::Top(a)),
        Command::Container { command } => return run_container(&root, rt, command),
        Command::Monitor(a) => return container::monitor(&root, a),
        Command::Image { command } => command,
        Command::Images(a) => ImageCommand::Ls(a),
        Command::Tag(a) => ImageCommand::Tag(a),
        Command::Rmi(a) => ImageCommand::Rm(a),
        Command::History(a) => ImageCommand::History(a),
        Command::Import(a) => ImageCommand::Import(a),
        Command::Save(a) => ImageCommand::Save(a),
        Command::Load(a) => ImageCommand::Load(a),
        Command::Pull(a) => ImageCommand::Pull(a),
        Command::Push(a) => ImageCommand::Push(a),
        Command::Login(a) => return pull::login(a),
        Command::Logout(a) => return pull::logout(a),
    };
    match cmd {
        ImageCommand::Ls(a) => images::run(&root, a),
        ImageCommand::Tag(a) => tag::run(&root, a),
        ImageCommand::Rm(a) => rmi::run(&root, a),
        ImageCommand::History(a) => history::run(&root, a),
        ImageCommand::Import(a) => import::run(&root, a),
        ImageCommand::Inspect(a) => inspect::run(&root, a),
        ImageCommand::Prune(a) => rmi::prune(&root, a),
        ImageCommand::Save(a) => save::save(&root, a),
        ImageCommand::Load(a) => save::load(&root, a),
        ImageCommand::Pull(a) => pull::pull(&root, a),
        ImageCommand::Push(a) => pull::push(&root, a),
    }
}

fn open(root: &std::path::Path, access: Access) -> anyhow::Result<Context> {
    Context::open(root, access).with_context(|| format!("opening data root {}", root.display()))
}
