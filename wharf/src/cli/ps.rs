//! `ps` / `container ls`: docker's columns, status wording, filters and templates.

use std::path::Path;

use serde_json::{json, Value};
use wharf::container::{self, Container};
use wharf::context::Access;
use wharf::format::{go_time, human_duration, human_size, Format};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
}

/// docker's COMMAND: arguments with a space in single quotes, cut to 20 characters.
fn command(c: &Container, trunc: bool) -> String {
    let mut cmd = c.command_text();
    if trunc && cmd.chars().count() > 20 {
        cmd = cmd.chars().take(19).collect::<String>() + "…";
    }
    format!("\"{cmd}\"")
}

fn image_name(c: &Container, trunc: bool) -> String {
    let img = &c.spec.config.image;
    if trunc {
        if let Some(hex) = img.strip_prefix("sha256:") {
            return hex.chars().take(12).collect();
        }
    }
    img.clone()
}

/// docker's SIZE: the writable layer, and with the image's layers ("virtual").
fn size_text(root: &Path, c: &Container, image_size: u64) -> String {
    let upper = container::rootfs::Layout::new(&container::dir(root, &c.id)).upper;
    let rw = container::prune::dir_size(&upper);
    format!(
        "{} (virtual {})",
        human_size(rw),
        human_size(rw + image_size)
    )
}

pub(super) fn row(c: &Container, trunc: bool) -> Value {
    let labels: Vec<String> = c
        .spec
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    json!({
        "ID": if trunc { c.short_id().to_string() } else { c.id.clone() },
        "Image": image_name(c, trunc),
        "Command": command(c, trunc),
        "CreatedAt": go_time(Some(&c.created)),
        "RunningFor": format!("{} ago", human_duration(container::secs_since(Some(&c.created)))),
        "Ports": if c.is_running() {
            let exposed: Vec<String> = c.spec.config.exposed_ports.keys().cloned().collect();
            wharf::network::ports::display(&c.state.ports, &exposed)
        } else {
            String::new()
        },
        "State": c.effective_status().as_str(),
        "Status": c.status_text(),
        "Size": "",
        "Names": c.name,
        "Labels": labels.join(","),
        "Mounts": c.spec.mounts.iter().map(|m| m.source.clone()).collect::<Vec<_>>().join(","),
        "Networks": wharf::network::mode_name(&c.spec.host.network_mode),
    })
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let last = if a.latest { 1 } else { a.last.max(0) as usize };
    let list = wharf::operations::container::list(
        root,
        &wharf::operations::container::ListOptions {
            all: a.all,
            last,
            filters: a.filter.clone(),
        },
    )?;
    let ctx = super::open(root, Access::Shared)?;
    let trunc = !a.no_trunc;
    let mut out = std::io::stdout().lock();
    if a.quiet && a.format.is_none() {
        for c in &list {
            use std::io::Write;
            writeln!(out, "{}", if trunc { c.short_id() } else { &c.id })?;
        }
        return Ok(());
    }
    let default = if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let fmt = Format::parse(a.format.as_deref().unwrap_or(default))?;
    let header = json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
        "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
        "Networks": "NETWORKS",
    });
    let mut rows: Vec<Value> = list.iter().map(|c| row(c, trunc)).collect();
    if a.size {
        for (r, c) in rows.iter_mut().zip(&list) {
            let image_size = wharf::image::digest::Digest::parse(&c.image_id)
                .ok()
                .and_then(|id| ctx.db.image(&id).ok().flatten())
                .map_or(0, |i| i.size);
            r["Size"] = json!(size_text(root, c, image_size));
        }
    }
    fmt.write_rows(&mut out, &header, &rows)?;
    Ok(())
}
