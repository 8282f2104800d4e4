//! `build` (and `image build`) and `builder prune`: docker's flags and classic-builder
//! output over the library's build operation.

use std::io::Write;
use std::path::{Path, PathBuf};

use wharf::build::Options;
use wharf::context::Access;
use wharf::format::human_size;
use wharf::operations::build as opbuild;

use super::Exit;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short, long = "tag", value_name = "list")]
    tag: Vec<String>,
    /// Name of the Dockerfile (Default is 'PATH/Dockerfile')
    #[arg(short, long)]
    file: Option<PathBuf>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list")]
    build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Set metadata for an image
    #[arg(long, value_name = "list")]
    label: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    network: String,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Always remove intermediate containers (a failed step's container always goes)
    #[arg(long)]
    force_rm: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// The build context: a directory, or `-` for a tar archive (or a lone Dockerfile) on stdin
    context: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
pub enum BuilderCommand {
    /// Remove build cache
    Prune(PruneArgs),
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn run(root: &Path, runtime: &str, a: Args) -> anyhow::Result<()> {
    if let Some(p) = a.platform.as_deref().filter(|p| *p != "linux/amd64") {
        eprintln!("wharf builds linux/amd64 images only, not {p}");
        return Err(Exit(1).into());
    }
    if a.context == Path::new("-") && a.file.as_deref() == Some(Path::new("-")) {
        eprintln!("invalid argument: can't use stdin for both build context and dockerfile");
        return Err(Exit(1).into());
    }
    // `-`: the context comes as a tar on stdin (or stdin is the Dockerfile, with an empty
    // context), unpacked into a directory of the data root for the build's time.
    let unpacked = if a.context == Path::new("-") {
        Some(opbuild::unpack(root, std::io::stdin())?)
    } else {
        None
    };
    let context = match &unpacked {
        Some(u) => u.path().to_path_buf(),
        None => a.context.clone(),
    };
    let labels = super::key_values(&a.label);
    let o = Options {
        context,
        dockerfile: a.file.clone().filter(|f| f != Path::new("-")),
        tags: a.tag.clone(),
        build_args: a.build_arg.clone(),
        target: a.target.clone(),
        no_cache: a.no_cache,
        labels,
        network: a.network.clone(),
        runtime_path: wharf::runtime::resolve(runtime)?,
        pull: a.pull,
        keep_intermediates: !a.rm && !a.force_rm,
        dockerfile_text: match unpacked.as_ref().and_then(|u| u.dockerfile_text.clone()) {
            Some(t) => Some(t),
            None => match a.file.as_deref() {
                Some(f) if f == Path::new("-") => {
                    let mut t = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)?;
                    Some(t)
                }
                _ => None,
            },
        },
    };
    let mut stdout = std::io::stdout().lock();
    let quiet = a.quiet;
    let mut sink = |line: &str| {
        if !quiet {
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    };
    match opbuild::run(root, &o, &mut sink) {
        Ok(id) => {
            if a.quiet {
                println!("{id}");
            }
            if let Some(f) = &a.iidfile {
                std::fs::write(f, id.to_string())?;
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            Err(Exit(1).into())
        }
    }
}

pub fn builder(root: &Path, cmd: BuilderCommand) -> anyhow::Result<()> {
    match cmd {
        BuilderCommand::Prune(a) => {
            let warning = if a.all {
                "WARNING! This will remove all build cache."
            } else {
                "WARNING! This will remove all dangling build cache."
            };
            if !a.force && !super::system::confirm(warning)? {
                return Ok(());
            }
            let mut ctx = super::open(root, Access::Exclusive)?;
            let r = wharf::image::remove::prune_build_cache(&mut ctx)?;
            let mut out = std::io::stdout().lock();
            if !r.deleted.is_empty() {
                writeln!(out, "Deleted build cache objects:")?;
                for d in &r.deleted {
                    writeln!(out, "{}", d.hex())?;
                }
                writeln!(out)?;
            }
            writeln!(out, "Total reclaimed space: {}", human_size(r.reclaimed))?;
            Ok(())
        }
    }
}
