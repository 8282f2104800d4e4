//! `state`: the container's state as runtime-spec defines it, in runc's JSON shape.

use super::{status, Global};

pub fn state(g: &Global, id: &str) -> anyhow::Result<String> {
    let (dir, state) = g.store().open(id)?;
    let report = state.report(status(&state, &dir.path));
    Ok(serde_json::to_string_pretty(&report)?)
}
