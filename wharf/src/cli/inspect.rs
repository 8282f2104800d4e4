//! `image inspect [--format T] IMAGE...`.

use std::path::Path;

use wharf::context::Access;
use wharf::format::Format;
use wharf::image::lookup;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Format output using a Go template or "json"
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true, value_name = "NAME")]
    images: Vec<String>,
}

/// What `inspect` looks at: docker's `inspect` tries containers first, then images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Container,
    Any,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    run_kind(root, a, Kind::Image)
}

pub fn run_kind(root: &Path, a: Args, kind: Kind) -> anyhow::Result<()> {
    let ctx = super::open(root, Access::Shared)?;
    let template = match a.format.as_deref() {
        None | Some("json") => None,
        Some(s) => Some(Format::parse(s)?),
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &a.images {
        if kind != Kind::Image {
            match wharf::container::lookup::find(&ctx.db, name) {
                Ok(c) => {
                    found.push(wharf::inspect::container(root, &ctx.db, &c)?);
                    continue;
                }
                Err(wharf::container::ContainerError::NotFound(_)) if kind == Kind::Any => {}
                Err(e) => {
                    missing.push(e.to_string());
                    continue;
                }
            }
        }
        match lookup::find(&ctx.db, name) {
            Ok((id, _)) => match ctx.db.image(&id)? {
                Some(img) => found.push(serde_json::to_value(wharf::inspect::image(&ctx, &img)?)?),
                None => missing.push(format!("No such image: {name}")),
            },
            Err(lookup::LookupError::NotFound(n)) if kind == Kind::Any => {
                missing.push(format!("No such object: {n}"))
            }
            Err(lookup::LookupError::NotFound(n)) => missing.push(format!("No such image: {n}")),
            Err(e) => missing.push(e.to_string()),
        }
    }
    super::print_inspected(&found, template.as_ref())?;
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(missing.join("\n"))
    }
}
