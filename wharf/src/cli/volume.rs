//! `volume create|ls|inspect|rm|prune`: docker's `local` volumes.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use wharf::format::{human_size, Format};
use wharf::operations::volume as opvol;

use super::{daemon_error, Exit};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long)]
    opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", conflicts_with = "volume")]
    name: Option<String>,
    volume: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    volumes: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    volumes: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter")]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn run(root: &Path, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(a) => create(root, a),
        Command::Ls(a) => ls(root, a),
        Command::Inspect(a) => inspect(root, a),
        Command::Rm(a) => rm(root, a),
        Command::Prune(a) => prune(root, a),
    }
}

fn create(root: &Path, a: CreateArgs) -> anyhow::Result<()> {
    let name = a.name.or(a.volume);
    let v = opvol::create(
        root,
        name.as_deref(),
        &a.driver,
        &super::key_values(&a.opt),
        super::key_values(&a.label),
    )
    .map_err(daemon_error)?;
    println!("{}", v.row.name);
    Ok(())
}

fn ls(root: &Path, a: LsArgs) -> anyhow::Result<()> {
    let list = opvol::list(root, &a.filter)?;
    let mut out = std::io::stdout().lock();
    if a.quiet && a.format.is_none() {
        for l in &list {
            writeln!(out, "{}", l.volume.row.name)?;
        }
        return Ok(());
    }
    let fmt = Format::parse(
        a.format
            .as_deref()
            .unwrap_or("table {{.Driver}}\t{{.Name}}"),
    )?;
    let header = json!({
        "Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS", "Scope": "SCOPE", "Links": "LINKS", "Size": "SIZE",
        "CreatedAt": "CREATED AT",
    });
    let mut rows = Vec::with_capacity(list.len());
    for l in &list {
        let v = &l.volume;
        let labels: Vec<String> = v.labels().iter().map(|(k, x)| format!("{k}={x}")).collect();
        rows.push(json!({
            "Driver": "local", "Name": v.row.name, "Mountpoint": v.mountpoint,
            "Labels": labels.join(","), "Scope": "local",
            "Links": l.users.to_string(),
            "Size": "N/A", "CreatedAt": v.row.created,
        }));
    }
    fmt.write_rows(&mut out, &header, &rows)?;
    Ok(())
}

fn inspect(root: &Path, a: InspectArgs) -> anyhow::Result<()> {
    let template = a.format.as_deref().map(Format::parse).transpose()?;
    let mut found: Vec<Value> = Vec::new();
    let mut failed = false;
    for name in &a.volumes {
        match opvol::inspect(root, name) {
            Ok(v) => found.push(v.inspect()),
            Err(e) => {
                failed = true;
                eprintln!("Error response from daemon: {e}");
            }
        }
    }
    super::print_inspected(&found, template.as_ref())?;
    if failed {
        Err(Exit(1).into())
    } else {
        Ok(())
    }
}

fn rm(root: &Path, a: RmArgs) -> anyhow::Result<()> {
    super::for_each_name(&a.volumes, |name| {
        // -f: a volume that is not there is what was asked for.
        Ok(opvol::remove(root, name, a.force)?.then(|| name.to_string()))
    })
}

/// The volumes a prune removes; `--filter label=..` / `label!=..` narrow it as in docker.
pub fn prune_volumes(
    root: &Path,
    all: bool,
    filters: &[String],
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let pruned = opvol::prune(root, all, filters)?;
    if !pruned.names.is_empty() {
        writeln!(out, "Deleted Volumes:")?;
        for n in &pruned.names {
            writeln!(out, "{n}")?;
        }
        writeln!(out)?;
    }
    Ok(pruned.reclaimed)
}

fn prune(root: &Path, a: PruneArgs) -> anyhow::Result<()> {
    let which = if a.all {
        "all local volumes"
    } else {
        "anonymous local volumes"
    };
    let warning = format!("WARNING! This will remove {which} not used by at least one container.");
    if !a.force && !super::system::confirm(&warning)? {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let reclaimed = prune_volumes(root, a.all, &a.filter, &mut out)?;
    writeln!(out, "Total reclaimed space: {}", human_size(reclaimed))?;
    Ok(())
}
