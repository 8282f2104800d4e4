//! One of issue 19's figures as a line of `figures.jsonl`, the file `hull-benches --all` prints
//! its one table from. hull's benches and wharf's (which include this file) both write it.

use std::io::Write;
use std::path::Path;

/// Appends one figure to `file`: `value` measured against `anchor_value` of `anchor`, and the
/// largest ratio of the two that meets the issue.
pub fn append(
    file: &Path,
    name: &str,
    (value, unit): (f64, &str),
    (anchor, anchor_value): (&str, f64),
    target: f64,
) -> Result<(), String> {
    let line = serde_json::json!({
        "figure": name, "value": value, "unit": unit,
        "anchor": anchor, "anchor_value": anchor_value, "target": target,
    });
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| writeln!(f, "{line}"))
        .map_err(|e| format!("{}: {e}", file.display()))
}
