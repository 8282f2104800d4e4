//! `top`: the host's ps(1) output cut down to a container's processes, as docker does it
//! (the runtime only lists pids; the columns are whatever the ps options ask for).

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
    filter(&String::from_utf8_lossy(&out.stdout), pids)
}

/// The header and the rows of `ps_output` whose PID column is one of `pids`.
pub fn filter(ps_output: &str, pids: &[i32]) -> Result<String, TopError> {
    let mut lines = ps_output.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or(TopError::NoPidColumn)?;
    let mut kept = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_header_and_the_container_rows() {
        let ps = "UID  PID  PPID  CMD\nroot 1 0 init\nroot 42 1 sleep 9\nroot 43 42 sh\n";
        assert_eq!(
            filter(ps, &[42]).unwrap(),
            "UID  PID  PPID  CMD\nroot 42 1 sleep 9\n"
        );
    }

    #[test]
    fn needs_a_pid_column() {
        assert!(matches!(
            filter("UID CMD\nroot sh\n", &[1]),
            Err(TopError::NoPidColumn)
        ));
    }
}
