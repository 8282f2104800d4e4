//! `import [-c CHANGE]... [-m MESSAGE] file|- [REPOSITORY[:TAG]]`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wharf::context::Access;
use wharf::image::import::{self, Options};
use wharf::image::reference::ImageRef;
use wharf::image::undo::Undo;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// A tarball (plain, gzip, xz or zstd) or - for standard input
    file: PathBuf,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let name = a
        .reference
        .as_deref()
        .map(ImageRef::parse_tagged)
        .transpose()?;
    let input: Box<dyn Read + Send> = if a.file == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        let s = a.file.to_string_lossy();
        if s.contains("://") {
            anyhow::bail!("importing from a URL is not supported: {s}");
        }
        Box::new(File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?)
    };
    let ctx = super::open(root, Access::Shared)?;
    let opts = Options {
        changes: &a.change,
        message: a.message.as_deref(),
        name: name.as_ref(),
    };
    let img = Undo::guard(ctx, |ctx| import::import(ctx, input, &opts))?;
    println!("{}", img.id);
    Ok(())
}
