//! `images` / `image ls`.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::bail;
use serde_json::{json, Value};
use wharf::context::Access;
use wharf::format::{go_json, Format};
use wharf::image::reference::ImageRef;
use wharf::inspect::image_rows;
use wharf::store::ImageRow;

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
    /// Filter output based on conditions provided (dangling=true|false, reference=PATTERN)
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template, "table", "table TEMPLATE" or "json"
    #[arg(long)]
    format: Option<String>,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

struct Filters {
    dangling: Option<bool>,
    references: Vec<String>,
}

fn parse_filters(a: &Args) -> anyhow::Result<Filters> {
    let mut f = Filters {
        dangling: None,
        references: Vec::new(),
    };
    for raw in &a.filter {
        let Some((k, v)) = raw.split_once('=') else {
            bail!("bad format of filter (expected name=value)");
        };
        match k {
            "dangling" => match v {
                "true" | "1" => f.dangling = Some(true),
                "false" | "0" => f.dangling = Some(false),
                _ => bail!("invalid filter 'dangling={v}'"),
            },
            "reference" => f.references.push(v.to_string()),
            _ => bail!("invalid filter '{k}'"),
        }
    }
    if let Some(r) = &a.reference {
        f.references.push(r.clone());
    }
    Ok(f)
}

/// Go's path.Match for the patterns docker's reference filter uses (`*`, `?`).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], name)
                || (!name.is_empty() && name[0] != b'/' && glob(pattern, &name[1..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(c)) if p == c => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// docker matches the pattern against the familiar name, with and without the tag.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let Ok(r) = ImageRef::parse(tag) else {
        return false;
    };
    let repo = r.familiar_repository();
    let full = r.familiar();
    [repo.as_str(), full.as_str()]
        .iter()
        .any(|n| glob(pattern.as_bytes(), n.as_bytes()))
        || ImageRef::parse(pattern)
            .is_ok_and(|p| p.tagged_name() == r.tagged_name() && !pattern.contains('*'))
}

/// Untagged images whose layers are a strict prefix of another image's: docker's
/// intermediate images, hidden unless `-a`.
fn intermediate(
    ctx: &wharf::context::Context,
    images: &[ImageRow],
) -> anyhow::Result<HashSet<String>> {
    let mut stacks = Vec::new();
    for i in images {
        let chain: Vec<String> = ctx
            .db
            .layers(&i.id)?
            .into_iter()
            .map(|l| l.chain_id.to_string())
            .collect();
        stacks.push(chain);
    }
    let mut out = HashSet::new();
    for (i, img) in images.iter().enumerate() {
        if !img.tags.is_empty() || !img.repo_digests.is_empty() {
            continue;
        }
        let mine = &stacks[i];
        if stacks
            .iter()
            .any(|s| s.len() > mine.len() && s.starts_with(mine))
        {
            out.insert(img.id.to_string());
        }
    }
    Ok(out)
}

const DEFAULT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const WITH_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let filters = parse_filters(&a)?;
    let ctx = super::open(root, Access::Shared)?;
    let images = ctx.db.images()?;
    let hidden = if a.all || filters.dangling.is_some() {
        HashSet::new()
    } else {
        intermediate(&ctx, &images)?
    };
    let mut rows = Vec::new();
    for img in &images {
        if hidden.contains(img.id.as_str()) {
            continue;
        }
        let dangling = img.tags.is_empty();
        if filters.dangling.is_some_and(|d| d != dangling) {
            continue;
        }
        if !filters.references.is_empty() {
            let keep = img
                .tags
                .iter()
                .any(|t| filters.references.iter().all(|p| reference_matches(p, t)));
            if !keep {
                continue;
            }
        }
        for r in image_rows(img, a.no_trunc) {
            // With a reference filter only matching tags are listed, as docker does.
            let name = format!(
                "{}:{}",
                r["Repository"].as_str().unwrap_or(""),
                r["Tag"].as_str().unwrap_or("")
            );
            if !filters.references.is_empty()
                && !filters
                    .references
                    .iter()
                    .all(|p| reference_matches(p, &name))
            {
                continue;
            }
            rows.push(r);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_patterns() {
        let t = "docker.io/library/alpine:latest";
        assert!(reference_matches("alpine", t));
        assert!(reference_matches("alp*", t));
        assert!(reference_matches("alpine:latest", t));
        assert!(reference_matches("*:latest", t));
        assert!(!reference_matches("busybox", t));
        assert!(!reference_matches("alpine:edge", t));
        assert!(reference_matches("localhost:5000/*", "localhost:5000/x:1"));
        assert!(!reference_matches("*", "user/app:1"));
    }
}
