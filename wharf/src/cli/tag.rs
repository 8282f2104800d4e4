//! `tag SOURCE TARGET`.

use std::path::Path;

use wharf::context::Access;
use wharf::image::{layout, lookup, reference::ImageRef};

#[derive(clap::Args, Debug)]
pub struct Args {
    source: String,
    target: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let target = ImageRef::parse_tagged(&a.target)?;
    let mut ctx = super::open(root, Access::Shared)?;
    let (id, _) = lookup::find(&ctx.db, &a.source)?;
    let name = target.tagged_name().unwrap_or_default();
    ctx.db.tag(&name, &id)?;
    layout::write_index(&ctx)?;
    Ok(())
}
