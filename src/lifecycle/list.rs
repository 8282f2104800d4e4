//! `list`: every container under --root, as runc's table, JSON array or bare IDs.

use std::io::Write;

use super::{status, Global};
use crate::state::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

pub fn list(g: &Global, format: Format, quiet: bool) -> anyhow::Result<String> {
    // As runc: a missing default root means no containers yet; a --root that does not exist
    // is the caller's mistake.
    if g.root_given && !g.root.is_dir() {
        anyhow::bail!("--root {:?}: no such directory", g.root);
    }
    let store = g.store();
    let mut rows = Vec::new();
    for id in store.ids()? {
        // A container deleted while we list is simply not listed.
        let Ok(state) = store.peek(&id) else {
            continue;
        };
        let status = status(&state, &store.dir(&id));
        rows.push((state, status));
    }
    if quiet {
        return Ok(rows.iter().map(|(s, _)| format!("{}\n", s.id)).collect());
    }
    match format {
        Format::Json => {
            let reports: Vec<_> = rows.iter().map(|(s, st)| s.report(*st)).collect();
            Ok(format!("{}\n", serde_json::to_string(&reports)?))
        }
        Format::Table => {
            let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(9).padding(3);
            writeln!(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")?;
            for (s, st) in &rows {
                let pid = if *st == Status::Stopped { 0 } else { s.pid };
                writeln!(
                    tw,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    s.id,
                    pid,
                    st.as_str(),
                    s.bundle.display(),
                    s.created,
                    if s.owner.is_empty() { "root" } else { &s.owner }
                )?;
            }
            Ok(String::from_utf8(tw.into_inner()?)?)
        }
    }
}
