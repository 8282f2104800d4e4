//! docker's command tree and flags; each command lives in its own file and only
//! turns flags into calls into the library.

mod attach;
mod build;
mod commit;
mod compose;
mod container;
mod cp;
mod df;
mod exec;
mod export;
mod history;
mod images;
mod import;
mod inspect;
mod inspectish;
mod logs;
mod network;
mod progress;
mod ps;
mod pull;
mod resources;
mod rmi;
mod run;
mod save;
mod search;
mod stats;
mod system;
mod tag;
mod volume;

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
    #[command(flatten)]
    Container(Box<ContainerCommand>),
    /// List containers
    Ps(ps::Args),
    /// Return low-level information on Docker objects
    Inspect(inspect::Args),
    /// Manage containers
    #[command(name = "container")]
    ContainerGroup {
        #[command(subcommand)]
        command: ContainerGroup,
    },
    /// Manage wharf's data
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Show the wharf version information
    Version(system::VersionArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Get real time events from wharf's containers, images, networks and volumes
    Events(system::EventsArgs),
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
    /// Search a registry's catalog for images
    Search(search::Args),
    /// Log out from a registry
    Logout(pull::LogoutArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: volume::Command,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        command: network::Command,
    },
    /// Build an image from a Dockerfile
    Build(build::Args),
    /// Run docker-compose against wharf (an API socket served for the command's time)
    Compose(compose::Args),
    /// Manage builds
    Builder {
        #[command(subcommand)]
        command: build::BuilderCommand,
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
    /// Build an image from a Dockerfile
    Build(build::Args),
}

/// The container commands docker has both at the top level and under `container`;
/// each is defined here once.
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
    /// Update configuration of one or more containers
    Update(container::UpdateArgs),
    /// Pause all processes within one or more containers
    Pause(container::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(container::NamesArgs),
    /// Fetch the logs of a container
    Logs(logs::Args),
    /// Execute a command in a running container
    Exec(exec::Args),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(inspectish::DiffArgs),
    /// Display the running processes of a container
    Top(inspectish::TopArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(attach::Args),
    /// Create a new image from a container's changes
    Commit(commit::Args),
    /// Export a container's filesystem as a tar archive
    Export(export::Args),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::Args),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::Args),
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
}

/// `container` subcommands that differ from their top-level form.
#[derive(Subcommand, Debug)]
enum ContainerGroup {
    #[command(flatten)]
    Shared(Box<ContainerCommand>),
    /// List containers
    #[command(visible_alias = "list", alias = "ps")]
    Ls(ps::Args),
    /// Display detailed information on one or more containers
    Inspect(inspect::Args),
    /// Remove all stopped containers
    Prune(system::ContainerPruneArgs),
}

#[derive(Subcommand, Debug)]
enum SystemCommand {
    /// Remove unused data
    Prune(system::SystemPruneArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Serve the Docker Engine API (for the docker CLI, docker-compose and the SDKs)
    Service(system::ServiceArgs),
    /// Show docker disk usage
    Df(df::Args),
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

/// docker's way with a list of names: `f` runs for each, what it returns is printed, each
/// failure gets an error line, and the command exits 1 if any failed.
/// `KEY=VALUE` flags (`--label`, `--opt`) as a map; a bare `KEY` has an empty value.
fn key_values(list: &[String]) -> std::collections::BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Prints inspected objects as docker does: one JSON array, or each through `--format`.
fn print_inspected(
    found: &[serde_json::Value],
    template: Option<&wharf::format::Format>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match template {
        None => writeln!(out, "{}", wharf::format::pretty_json(&found))?,
        Some(t) => {
            for obj in found {
                writeln!(out, "{}", t.render(obj)?)?;
            }
        }
    }
    Ok(())
}

fn for_each_name(
    names: &[String],
    mut f: impl FnMut(&str) -> anyhow::Result<Option<String>>,
) -> anyhow::Result<()> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(e) => {
                failed = true;
                eprintln!("Error response from daemon: {e}");
            }
        }
    }
    if failed {
        Err(Exit(1).into())
    } else {
        Ok(())
    }
}

/// Prints a failure the way docker's CLI prints daemon errors for commands that exit 1.
pub fn daemon_error(e: impl std::fmt::Display) -> anyhow::Error {
    eprintln!("Error response from daemon: {e}");
    Exit(1).into()
}

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
        ContainerCommand::Update(a) => container::update(root, a),
        ContainerCommand::Pause(a) => container::pause(root, a),
        ContainerCommand::Unpause(a) => container::unpause(root, a),
        ContainerCommand::Logs(a) => logs::run(root, a),
        ContainerCommand::Exec(a) => exec::run(root, a),
        ContainerCommand::Diff(a) => inspectish::diff(root, a),
        ContainerCommand::Top(a) => inspectish::top(root, a),
        ContainerCommand::Attach(a) => attach::run(root, a),
        ContainerCommand::Commit(a) => commit::run(root, a),
        ContainerCommand::Export(a) => export::run(root, a),
        ContainerCommand::Cp(a) => cp::run(root, a),
        ContainerCommand::Stats(a) => stats::run(root, a),
        ContainerCommand::Port(a) => network::port(root, a),
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let root = cli.data_root;
    let rt = cli.runtime.as_str();
    // The top-level image commands are docker's shorthands for `image <sub>`.
    let cmd = match cli.command {
        Command::Container(c) => return run_container(&root, rt, *c),
        Command::Ps(a) => return ps::run(&root, a),
        Command::Inspect(a) => return inspect::run_kind(&root, a, inspect::Kind::Any),
        Command::ContainerGroup { command } => {
            return match command {
                ContainerGroup::Shared(c) => run_container(&root, rt, *c),
                ContainerGroup::Ls(a) => ps::run(&root, a),
                ContainerGroup::Inspect(a) => inspect::run_kind(&root, a, inspect::Kind::Container),
                ContainerGroup::Prune(a) => system::container_prune(&root, a),
            }
        }
        Command::System { command } => {
            return match command {
                SystemCommand::Prune(a) => system::system_prune(&root, a),
                SystemCommand::Info(a) => system::info(&root, rt, a),
                SystemCommand::Service(a) => system::service(&root, rt, a),
                SystemCommand::Df(a) => df::run(&root, a),
            }
        }
        Command::Version(a) => return system::version(rt, a),
        Command::Info(a) => return system::info(&root, rt, a),
        Command::Events(a) => return system::events(&root, a),
        Command::Volume { command } => return volume::run(&root, command),
        Command::Network { command } => return network::run(&root, command),
        Command::Build(a) => return build::run(&root, rt, a),
        Command::Compose(a) => return compose::run(&root, rt, a),
        Command::Builder { command } => return build::builder(&root, command),
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
        Command::Search(a) => return search::run(a),
        Command::Logout(a) => return pull::logout(a),
    };
    match cmd {
        ImageCommand::Ls(a) => images::run(&root, a),
        ImageCommand::Build(a) => build::run(&root, rt, a),
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
