//! `export [-o FILE] CONTAINER`: the container's filesystem as a tar stream.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wharf::container::{export, lookup};
use wharf::context::Access;

use super::daemon_error as fail;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
    container: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let c = {
        let ctx = super::open(root, Access::Shared)?;
        lookup::find(&ctx.db, &a.container).map_err(fail)?
    };
    match &a.output {
        Some(path) => {
            // Written beside the target and renamed, so a failure leaves no partial file.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
                .with_context(|| format!("creating {}", path.display()))?;
            export::export(root, &c, &mut tmp)?;
            tmp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                anyhow::bail!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                );
            }
            let mut out = std::io::stdout().lock();
            export::export(root, &c, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}
