//! `kill`: send a signal (name or number, with or without SIG) to the container's init, or with
//! `--all` to every process in its cgroup.

use anyhow::{bail, Context as _};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{status, Global};
use crate::state::Status;
use crate::syscall;

/// Parses `9`, `KILL`, `SIGKILL`, `sigkill`, `RTMIN+3`.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        // 0 sends nothing and only checks that the process exists, as with kill(1).
        if (0..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        bail!("unknown signal {s:?}");
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let n = if rest.is_empty() {
            0
        } else {
            rest.parse::<i32>().unwrap_or(-1000)
        };
        let sig = libc::SIGRTMIN() + n;
        if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig) {
            return Ok(sig);
        }
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        let n = if rest.is_empty() {
            0
        } else {
            rest.parse::<i32>().unwrap_or(1000)
        };
        let sig = libc::SIGRTMAX() + n;
        if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig) {
            return Ok(sig);
        }
    } else if let Ok(sig) = format!("SIG{name}").parse::<Signal>() {
        return Ok(sig as i32);
    }
    bail!("unknown signal {s:?}")
}

pub fn kill(g: &Global, id: &str, signal: &str, all: bool) -> anyhow::Result<()> {
    let sig = parse_signal(signal)?;
    let (dir, state) = g.store().open(id)?;
    let status = status(&state, &dir.path);
    // Without a pid namespace of its own, the kernel does not take the container's other
    // processes down with its init: SIGKILL goes to every process of the cgroup, as runc
    // does, even when init is already gone.
    let all = all
        || (sig == libc::SIGKILL
            && !super::saved_spec(&dir.path).is_ok_and(|s| super::own_pid_namespace(&s)));
    if all {
        match super::container_cgroup(g, &state, id) {
            Ok(cgroup) => {
                for pid in cgroup.pids()? {
                    // SAFETY: kill with integer arguments.
                    unsafe { libc::kill(pid.as_raw(), sig) };
                }
                return Ok(());
            }
            // A rootless container without a cgroup: its processes cannot be found, so
            // init alone gets the signal, as runc does, and the user is told.
            Err(e) if g.rootless => {
                crate::logging::warn(&format!("{e}: signalling its init only"));
            }
            Err(e) => return Err(e),
        }
    }
    if status == Status::Stopped {
        bail!("container not running");
    }
    let pidfd = syscall::pidfd_open(Pid::from_raw(state.pid)).context("container not running")?;
    syscall::pidfd_send_signal(&pidfd, sig).with_context(|| format!("sending signal {sig}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_forms() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert!(parse_signal("-1").is_err());
        assert!(parse_signal("RTMIN+99").is_err());
    }
}
