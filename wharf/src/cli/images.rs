//! `images` / `image ls`.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use wharf::format::{go_json, Format};
use wharf::inspect::image_rows;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output based on conditions provided (dangling=true|false, reference=PATTERN,
    /// before=IMAGE, since=IMAGE, label=KEY[=VALUE])
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template, "table", "table TEMPLATE" or "json"
    #[arg(long)]
    format: Option<String>,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

const DEFAULT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const WITH_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let images = wharf::operations::image::list(root, &a.filter, a.reference.as_deref(), a.all)?;
    let need_digests = a
        .format
        .as_deref()
        .is_some_and(|f| f.contains("{{.Digest}}"));
    let rows: Vec<Value> = images
        .iter()
        .flat_map(|img| image_rows(img, a.no_trunc, a.digests, need_digests))
        .collect();
    let mut out = std::io::stdout().lock();
    if a.quiet {
        let mut seen = HashSet::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or("").to_string();
            if seen.insert(id.clone()) {
                writeln!(out, "{id}")?;
            }
        }
        return Ok(());
    }
    match a.format.as_deref() {
        Some("json") => {
            for r in &rows {
                writeln!(out, "{}", go_json(r))?;
            }
            Ok(())
        }
        other => {
            let src = match other {
                None | Some("table") if a.digests => WITH_DIGESTS,
                None | Some("table") => DEFAULT,
                Some(s) => s,
            };
            let f = Format::parse(src)?;
            f.write_rows(&mut out, &header(), &rows)?;
            Ok(())
        }
    }
}

fn header() -> Value {
    json!({
        "Containers": "CONTAINERS",
        "CreatedAt": "CREATED AT",
        "CreatedSince": "CREATED",
        "Digest": "DIGEST",
        "ID": "IMAGE ID",
        "Repository": "REPOSITORY",
        "SharedSize": "SHARED SIZE",
        "Size": "SIZE",
        "Tag": "TAG",
        "UniqueSize": "UNIQUE SIZE",
        "VirtualSize": "VIRTUAL SIZE",
    })
}
