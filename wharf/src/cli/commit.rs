//! `commit [-a AUTHOR] [-m MESSAGE] [-c CHANGE]... [-p=false] CONTAINER [REPOSITORY[:TAG]]`.

use std::path::Path;

use wharf::container::{commit, lookup};
use wharf::context::Access;
use wharf::image::reference::ImageRef;

use super::daemon_error as fail;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit
    // A switch as in docker (`-p CONTAINER` must not read the name as its value); `=false`
    // turns it off.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pause: bool,
    container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let name = a
        .reference
        .as_deref()
        .map(ImageRef::parse_tagged)
        .transpose()
        .map_err(fail)?;
    let mut ctx = super::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, &a.container).map_err(fail)?;
    let opts = commit::Options {
        author: a.author.as_deref(),
        message: a.message.as_deref(),
        changes: &a.change,
        pause: a.pause,
        name: name.as_ref(),
    };
    let img = commit::commit(&mut ctx, &c, &opts).map_err(fail)?;
    println!("{}", img.id);
    Ok(())
}
