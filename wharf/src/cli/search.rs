//! `search TERM`: a registry's catalog filtered by the term, in docker's columns.

use serde_json::json;
use wharf::format::Format;
use wharf::operations::image;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    limit: usize,
    /// Pretty-print search using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Use plain HTTP for this registry (always used for loopback registries)
    #[arg(long)]
    insecure: bool,
    /// HOST/TEXT: the repositories of HOST whose names contain TEXT
    term: String,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let found = image::search(&a.term, a.limit, a.insecure).map_err(super::daemon_error)?;
    let fmt = Format::parse(a.format.as_deref().unwrap_or(
        "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}\t{{.IsAutomated}}",
    ))?;
    let header = json!({"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                        "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"});
    let rows: Vec<_> = found
        .iter()
        .map(|f| {
            json!({"Name": f.name, "Description": "", "StarCount": "0", "IsOfficial": "",
                   "IsAutomated": ""})
        })
        .collect();
    fmt.write_rows(&mut std::io::stdout().lock(), &header, &rows)?;
    Ok(())
}
