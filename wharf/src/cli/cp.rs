//! `cp [-a] [-L] CONTAINER:SRC_PATH DEST_PATH|-` and `cp [-a] [-L] SRC_PATH|- CONTAINER:DEST_PATH`.

use std::path::Path;

use wharf::container::{cp, lookup};
use wharf::context::Access;

use super::daemon_error as fail;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    #[arg(value_name = "SRC")]
    src: String,
    #[arg(value_name = "DEST")]
    dest: String,
}

/// docker's split: `NAME:PATH` names a container unless the text starts like a local
/// path (`/`, `.`) or has a `/` before the colon.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (name, path) = arg.split_once(':')?;
    (!name.contains('/')).then_some((name, path))
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let opts = cp::Options {
        archive: a.archive,
        follow: a.follow_link,
    };
    let ctx = super::open(root, Access::Shared)?;
    match (split(&a.src), split(&a.dest)) {
        (Some(_), Some(_)) => Err(fail("copying between containers is not supported")),
        (None, None) => Err(fail("must specify at least one container source")),
        (Some((name, path)), None) => {
            let c = lookup::find(&ctx.db, name).map_err(fail)?;
            drop(ctx);
            let dest = (a.dest != "-").then_some(Path::new(&a.dest));
            let mut out = std::io::stdout().lock();
            cp::copy_out(root, &c, path, dest, &mut out, &opts).map_err(fail)
        }
        (None, Some((name, path))) => {
            let c = lookup::find(&ctx.db, name).map_err(fail)?;
            drop(ctx);
            let src = (a.src != "-").then_some(Path::new(&a.src));
            let mut input = std::io::stdin().lock();
            cp::copy_in(root, &c, src, &mut input, path, &opts).map_err(fail)
        }
    }
}
