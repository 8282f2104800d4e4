//! `tag SOURCE TARGET`.

use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct Args {
    source: String,
    target: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    wharf::operations::image::tag(root, &a.source, &a.target)?;
    Ok(())
}
