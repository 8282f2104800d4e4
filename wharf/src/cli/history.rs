//! `history` / `image history`.

use std::io::Write;
use std::path::Path;

use serde_json::json;
use wharf::format::{go_json, Format};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a Go template, "table", "table TEMPLATE" or "json"
    #[arg(long)]
    format: Option<String>,
    image: String,
}

const DEFAULT: &str = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let (_, rows) = wharf::operations::image::history(root, &a.image, a.no_trunc, a.human)?;
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or(""))?;
        }
        return Ok(());
    }
    if a.format.as_deref() == Some("json") {
        for r in &rows {
            writeln!(out, "{}", go_json(r))?;
        }
        return Ok(());
    }
    let src = match a.format.as_deref() {
        None | Some("table") => DEFAULT,
        Some(s) => s,
    };
    let header = json!({
        "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
    });
    Format::parse(src)?.write_rows(&mut out, &header, &rows)?;
    Ok(())
}
