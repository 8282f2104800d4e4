//! `pause` and `resume`: freeze and thaw every process of the container through the freezer.

use anyhow::bail;

use super::{status, Global};
use crate::state::Status;

pub fn pause(g: &Global, id: &str) -> anyhow::Result<()> {
    let (dir, state) = g.store().open(id)?;
    match status(&state, &dir.path) {
        Status::Running | Status::Created => {}
        Status::Paused => bail!("container already paused"),
        _ => bail!("container not running"),
    }
    super::container_cgroup(g, &state, id)?.freeze(true)?;
    Ok(())
}

pub fn resume(g: &Global, id: &str) -> anyhow::Result<()> {
    let (dir, state) = g.store().open(id)?;
    if status(&state, &dir.path) != Status::Paused {
        bail!("container not paused");
    }
    super::container_cgroup(g, &state, id)?.freeze(false)?;
    Ok(())
}
