//! `save` and `load`.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use wharf::image::archive::Format;
use wharf::operations::image;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ArchiveFormat {
    /// docker's format (manifest.json) on top of an OCI layout
    DockerArchive,
    /// an OCI image layout only
    OciArchive,
}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value = "docker-archive")]
    format: ArchiveFormat,
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

pub fn save(root: &Path, a: SaveArgs) -> anyhow::Result<()> {
    let format = match a.format {
        ArchiveFormat::DockerArchive => Format::DockerArchive,
        ArchiveFormat::OciArchive => Format::OciArchive,
    };
    match &a.output {
        Some(path) => {
            // Write next to the target and rename, so a failed save leaves no partial file.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("failed to save image: creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(tmp.as_file_mut());
            image::save(root, &a.images, format, &mut out)?;
            out.flush()?;
            drop(out);
            tmp.persist(path)
                .with_context(|| format!("failed to save image: writing {}", path.display()))?;
        }
        None => {
            let out = std::io::stdout();
            if out.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = std::io::BufWriter::new(out.lock());
            image::save(root, &a.images, format, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

pub fn load(root: &Path, a: LoadArgs) -> anyhow::Result<()> {
    let input: Box<dyn Read + Send> = match &a.input {
        Some(p) => Box::new(File::open(p).with_context(|| format!("opening {}", p.display()))?),
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin())
        }
    };
    let loaded = image::load(root, input)?;
    if !a.quiet {
        for l in loaded {
            if l.names.is_empty() {
                println!("Loaded image ID: {}", l.image.id);
            }
            for n in l.names {
                println!("Loaded image: {}", n.familiar());
            }
        }
    }
    Ok(())
}
