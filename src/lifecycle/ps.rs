//! `ps`: the container's processes, as a bare JSON array of pids or as ps(1)'s table filtered to
//! the container's cgroup.

use std::process::Command;

use anyhow::{bail, Context as _};

use super::{status, Global};
use crate::cgroups::Cgroup;
use crate::state::Status;

pub fn ps(g: &Global, id: &str, json: bool, ps_args: &[String]) -> anyhow::Result<String> {
    let state = g.store().peek(id)?;
    if status(&state, &g.store().dir(id)) == Status::Stopped {
        bail!("container not running");
    }
    let pids: Vec<i32> = Cgroup::open(&state.cgroup_path, state.systemd_cgroup, id)?
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
    filter(&String::from_utf8_lossy(&out.stdout), &pids)
}

/// Keeps ps's header and the lines whose PID column is one of `pids`.
fn filter(table: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_header_and_matching_pids() {
        let table = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 420 1 other\n";
        assert_eq!(
            super::filter(table, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
    }
}
