//! `top`: the host's ps(1) output cut down to a container's processes, as docker does it:
//! the runtime lists the pids, hull's `pstable` keeps their rows.

use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error("Error running ps: {0}")]
    Spawn(std::io::Error),
    #[error("ps: {0}")]
    Failed(String),
    #[error("Couldn't find PID field in ps output")]
    NoPidColumn,
}

/// Runs `ps OPTIONS` and keeps the header and the rows whose PID is one of `pids`.
pub fn run(options: &[String], pids: &[i32]) -> Result<String, TopError> {
    let out = Command::new("ps")
        .args(options)
        .output()
        .map_err(TopError::Spawn)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(TopError::Failed(err.trim().to_string()));
    }
    hull::pstable::filter(&String::from_utf8_lossy(&out.stdout), pids).ok_or(TopError::NoPidColumn)
}
