//! docker's image command tree and flags; each command lives in its own file and only
//! turns flags into calls into the library.

mod history;
mod images;
mod import;
mod inspect;
mod rmi;
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
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let root = cli.data_root;
    match cli.command {
        Command::Images(a)
        | Command::Image {
            command: ImageCommand::Ls(a),
        } => images::run(&root, a),
        Command::Tag(a)
        | Command::Image {
            command: ImageCommand::Tag(a),
        } => tag::run(&root, a),
        Command::Rmi(a)
        | Command::Image {
            command: ImageCommand::Rm(a),
        } => rmi::run(&root, a),
        Command::History(a)
        | Command::Image {
            command: ImageCommand::History(a),
        } => history::run(&root, a),
        Command::Import(a)
        | Command::Image {
            command: ImageCommand::Import(a),
        } => import::run(&root, a),
        Command::Image {
            command: ImageCommand::Inspect(a),
        } => inspect::run(&root, a),
        Command::Image {
            command: ImageCommand::Prune(a),
        } => rmi::prune(&root, a),
    }
}

fn open(root: &std::path::Path, access: Access) -> anyhow::Result<Context> {
    Context::open(root, access).with_context(|| format!("opening data root {}", root.display()))
}
