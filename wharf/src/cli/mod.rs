//! docker's image command tree and flags; each command lives in its own file and only
//! turns flags into calls into the library.

mod history;
mod images;
mod import;
mod inspect;
mod progress;
mod pull;
mod rmi;
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let root = cli.data_root;
    // The top-level commands are docker's shorthands for `image <sub>`.
    let cmd = match cli.command {
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
