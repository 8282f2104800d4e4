//! `search TERM`: a registry's search results in docker's columns.

use serde_json::json;
use wharf::format::Format;
use wharf::operations::image;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    limit: usize,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Use plain HTTP for this registry (always used for loopback registries)
    #[arg(long)]
    insecure: bool,
    /// HOST/TEXT: the repositories of HOST whose names match TEXT
    term: String,
}

/// docker truncates a description to 45 characters in the table.
const DESCRIPTION_WIDTH: usize = 45;

/// docker's "[OK]" column: a mark when true, blank otherwise.
fn mark(b: bool) -> &'static str {
    if b {
        "[OK]"
    } else {
        ""
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let filters = image::SearchFilters::parse(&a.filter).map_err(super::daemon_error)?;
    let found =
        image::search(&a.term, a.limit, &filters, a.insecure).map_err(super::daemon_error)?;
    let fmt = Format::parse(
        a.format
            .as_deref()
            .unwrap_or("table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"),
    )?;
    let header = json!({"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                        "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"});
    let rows: Vec<_> = found
        .iter()
        .map(|f| {
            let one_line = f.description.replace(['\n', '\r'], " ");
            let description = if !a.no_trunc && one_line.chars().count() > DESCRIPTION_WIDTH {
                let mut d: String = one_line.chars().take(DESCRIPTION_WIDTH - 1).collect();
                d.push('…');
                d
            } else {
                one_line
            };
            json!({"Name": f.name, "Description": description,
                   "StarCount": f.star_count.to_string(), "IsOfficial": mark(f.is_official),
                   "IsAutomated": mark(f.is_automated)})
        })
        .collect();
    fmt.write_rows(&mut std::io::stdout().lock(), &header, &rows)?;
    Ok(())
}
