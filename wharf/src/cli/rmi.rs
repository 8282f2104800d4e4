//! `rmi` / `image rm` and `image prune`.

use std::io::{BufRead, Write};
use std::path::Path;

use wharf::format::human_size;
use wharf::image::remove;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    let mut out = std::io::stdout().lock();
    for img in &a.images {
        match wharf::operations::image::remove(root, img, a.force) {
            Ok(r) => {
                for u in r.untagged {
                    writeln!(out, "Untagged: {u}")?;
                }
                for d in r.deleted {
                    writeln!(out, "Deleted: {d}")?;
                }
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(failed.join("\n"))
    }
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn prune(root: &Path, a: PruneArgs) -> anyhow::Result<()> {
    if !a.force {
        let what = if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let r = wharf::operations::image::prune(root, a.all)?;
    let mut out = std::io::stdout().lock();
    write_pruned(&mut out, &r)?;
    writeln!(out, "Total reclaimed space: {}", human_size(r.reclaimed))?;
    Ok(())
}

/// docker's "Deleted Images:" section of a prune, when it removed any.
pub(super) fn write_pruned(out: &mut impl Write, r: &remove::Report) -> std::io::Result<()> {
    if !r.deleted.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for u in &r.untagged {
            writeln!(out, "untagged: {u}")?;
        }
        for d in &r.deleted {
            writeln!(out, "deleted: {d}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
