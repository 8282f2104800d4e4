//! `ps`: the container's processes, as a bare JSON array of pids or as ps(1)'s table filtered to
//! the container's cgroup.

use std::process::Command;

use anyhow::{bail, Context as _};

use super::Global;

pub fn ps(g: &Global, id: &str, json: bool, ps_args: &[String]) -> anyhow::Result<String> {
    let state = g.store().peek(id)?;
    // A stopped container has no processes to list, which is no error (runc prints the header).
    let pids: Vec<i32> = super::container_cgroup(g, &state, id)?
        .pids()?
        .into_iter()
        .map(|p| p.as_raw())
        .collect();
    if json {
        return Ok(format!("{}\n", serde_json::to_string(&pids)?));
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    crate::pstable::filter(&String::from_utf8_lossy(&out.stdout), &pids)
        .context("ps output has no PID column")
}
