//! `events`: runc's JSON lines about a container: `{"type":"stats",...}` every interval (or once
//! with --stats) and `{"type":"oom",...}` when the kernel kills a process for memory. Ends when
//! the container is gone.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::bail;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::json;

use super::{status, Global};
use crate::cgroups::OomWatch;
use crate::state::Status;

pub fn events(g: &Global, id: &str, stats_once: bool, interval: Duration) -> anyhow::Result<()> {
    let store = g.store();
    let state = store.peek(id)?;
    if status(&state, &store.dir(id)) == Status::Stopped {
        bail!("container with id {id} is not running");
    }
    let cgroup = super::container_cgroup(g, &state, id)?;
    let emit = |kind: &str, data: serde_json::Value| -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        // runc leaves out an empty data (`{"type":"oom","id":"..."}`); callers match the line.
        let line = if data.is_null() {
            json!({"type": kind, "id": id})
        } else {
            json!({"type": kind, "id": id, "data": data})
        };
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(())
    };
    if stats_once {
        return emit("stats", cgroup.stats()?);
    }
    let mut oom = OomWatch::new(cgroup.dir())?;
    let timeout = PollTimeout::try_from(interval).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(oom.fd.as_fd(), PollFlags::POLLIN)];
        let ready = match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r?,
        };
        // An OOM kill of PID 1 also stops the container: report it before ending.
        if ready > 0 && oom.took_oom() {
            emit("oom", serde_json::Value::Null)?;
        }
        if status(&state, &store.dir(id)) == Status::Stopped {
            return Ok(());
        }
        if ready == 0 {
            emit("stats", cgroup.stats()?)?;
        }
    }
}

/// Parses Go-style durations as runc's --interval takes them: `5s`, `250ms`, `1m`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("invalid duration {s:?}"),
    };
    if secs <= 0.0 {
        bail!("duration {s:?} must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
