//! `system df`: docker's disk usage summary (images, containers, local volumes, build
//! cache) and its `-v` listing, from `operations::system::disk_usage`.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use wharf::format::{human_size, human_size_with, since, Format};
use wharf::operations::system::{self, DiskUsage};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
}

/// docker's `units.HumanSize`.
fn size(n: u64) -> String {
    human_size_with(n, 4)
}

/// "SIZE (PERCENT%)" of a total, as docker prints what could be reclaimed.
fn reclaimable(n: u64, total: u64) -> String {
    match (n * 100).checked_div(total) {
        Some(percent) => format!("{} ({percent}%)", size(n)),
        None => size(n),
    }
}

/// The four summary rows.
fn summary(du: &DiskUsage) -> Vec<Value> {
    let active_images = du.images.iter().filter(|i| i.containers > 0).count();
    let containers_size: u64 = du.containers.iter().map(|(_, s)| s).sum();
    let idle_containers: u64 = du
        .containers
        .iter()
        .filter(|(c, _)| !c.is_running())
        .map(|(_, s)| s)
        .sum();
    let volumes_size: u64 = du.volumes.iter().map(|(_, s, _)| s).sum();
    let idle_volumes: u64 = du
        .volumes
        .iter()
        .filter(|(_, _, users)| *users == 0)
        .map(|(_, s, _)| s)
        .sum();
    let cache_size: u64 = du.build_cache.iter().map(|b| b.size).sum();
    let cache_idle: u64 = du
        .build_cache
        .iter()
        .filter(|b| !b.in_use)
        .map(|b| b.size)
        .sum();
    let row = |kind: &str, total: usize, active: usize, sz: String, rec: String| {
        json!({"Type": kind, "TotalCount": total.to_string(), "Active": active.to_string(),
               "Size": sz, "Reclaimable": rec})
    };
    vec![
        row(
            "Images",
            du.images.len(),
            active_images,
            size(du.images_size),
            reclaimable(du.images_reclaimable, du.images_size),
        ),
        row(
            "Containers",
            du.containers.len(),
            du.containers.iter().filter(|(c, _)| c.is_running()).count(),
            size(containers_size),
            reclaimable(idle_containers, containers_size),
        ),
        row(
            "Local Volumes",
            du.volumes.len(),
            du.volumes.iter().filter(|(_, _, u)| *u > 0).count(),
            size(volumes_size),
            reclaimable(idle_volumes, volumes_size),
        ),
        row(
            "Build Cache",
            du.build_cache.len(),
            du.build_cache.iter().filter(|b| b.in_use).count(),
            size(cache_size),
            size(cache_idle),
        ),
    ]
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let du = system::disk_usage(root)?;
    let mut out = std::io::stdout().lock();
    if a.verbose {
        if a.format.is_some() {
            anyhow::bail!("--format cannot be combined with --verbose");
        }
        return verbose(&mut out, &du);
    }
    let fmt =
        Format::parse(a.format.as_deref().unwrap_or(
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        ))?;
    let header = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE",
                        "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
    fmt.write_rows(&mut out, &header, &summary(&du))?;
    Ok(())
}

fn section(
    out: &mut impl Write,
    format: &str,
    header: Value,
    rows: &[Value],
) -> anyhow::Result<()> {
    Format::parse(format)?.write_rows(out, &header, rows)?;
    Ok(())
}

/// `-v`: each image, container, volume and cache record, under docker's headings.
fn verbose(out: &mut impl Write, du: &DiskUsage) -> anyhow::Result<()> {
    writeln!(out, "Images space usage:\n")?;
    let images: Vec<Value> = du
        .images
        .iter()
        .map(|i| {
            let (repo, tag) = i
                .row
                .tags
                .first()
                .and_then(|t| wharf::image::reference::ImageRef::parse(t).ok())
                .map(|r| {
                    let tag = r.tag.clone().unwrap_or_else(|| "<none>".into());
                    (r.familiar_repository(), tag)
                })
                .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
            json!({
                "Repository": repo, "Tag": tag, "ID": i.row.id.short(),
                "CreatedSince": since(i.row.created.as_deref()),
                "Size": human_size(i.row.size),
                "SharedSize": size(i.shared_size),
                "UniqueSize": size(i.row.size.saturating_sub(i.shared_size)),
                "Containers": i.containers.to_string(),
            })
        })
        .collect();
    section(
        out,
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        json!({"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
               "Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
               "Containers": "CONTAINERS"}),
        &images,
    )?;
    writeln!(out, "\nContainers space usage:\n")?;
    let containers: Vec<Value> = du
        .containers
        .iter()
        .map(|(c, sz)| {
            let mut r = super::ps::row(c, true);
            r["LocalVolumes"] = json!(c
                .spec
                .mounts
                .iter()
                .filter(|m| m.kind == "volume")
                .count()
                .to_string());
            r["Size"] = json!(size(*sz));
            r
        })
        .collect();
    section(
        out,
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        json!({"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
               "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE", "RunningFor": "CREATED",
               "Status": "STATUS", "Names": "NAMES"}),
        &containers,
    )?;
    writeln!(out, "\nLocal Volumes space usage:\n")?;
    let volumes: Vec<Value> = du
        .volumes
        .iter()
        .map(|(v, sz, users)| json!({"Name": v.row.name, "Links": users.to_string(), "Size": size(*sz)}))
        .collect();
    section(
        out,
        "table {{.Name}}\t{{.Links}}\t{{.Size}}",
        json!({"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}),
        &volumes,
    )?;
    let cache_size: u64 = du.build_cache.iter().map(|b| b.size).sum();
    writeln!(out, "\nBuild cache usage: {}\n", size(cache_size))?;
    let cache: Vec<Value> = du
        .build_cache
        .iter()
        .map(|b| {
            json!({"ID": b.id.short(), "CacheType": "regular", "Size": size(b.size),
                   "CreatedSince": since(b.created.as_deref()),
                   "LastUsedSince": since(Some(&b.last_used)),
                   "UsageCount": b.usage_count.to_string(), "Shared": "false"})
        })
        .collect();
    section(
        out,
        "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
        json!({"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
               "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}),
        &cache,
    )?;
    Ok(())
}
