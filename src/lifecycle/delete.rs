//! `delete`: remove a stopped container, or a created one (killing its init, as containerd
//! expects), or with `--force` a running or paused one; then its cgroup, the poststop hooks and
//! the state directory. `--force` on a missing container succeeds.

use std::time::Duration;

use anyhow::bail;
use nix::unistd::Pid;
use oci_spec::runtime::Hooks;

use super::{saved_spec, status, Global};
use crate::cgroups::Cgroup;
use crate::hooks::{self, Kind};
use crate::logging;
use crate::state::{process_alive, ContainerDir, State, StateError, Status};
use crate::syscall;

pub fn delete(g: &Global, id: &str, force: bool) -> anyhow::Result<()> {
    let (dir, state) = match g.store().open(id) {
        Err(StateError::NotExist) if force => return Ok(()),
        r => r?,
    };
    let cgroup = Cgroup::open(
        &state.cgroup_path,
        g.systemd_cgroup || state.systemd_cgroup,
        id,
    )?;
    match status(&state, &dir.path) {
        Status::Stopped => {}
        Status::Created => kill_init(&state, None)?,
        Status::Running if force => kill_init(&state, None)?,
        Status::Paused if force => kill_init(&state, Some(&cgroup))?,
        s => bail!(
            "cannot delete container {id} that is not stopped: {}",
            s.as_str()
        ),
    }
    // The config as it was at create time; without it the container still goes.
    let spec = saved_spec(&dir.path)
        .map_err(|e| logging::warn(&format!("poststop hooks not run: {e:#}")))
        .ok();
    // Without a pid namespace of its own, the container's other processes outlive its init.
    if !spec.as_ref().is_some_and(super::own_pid_namespace) {
        kill_leftovers(&cgroup)?;
    }
    logging::debug(&format!(
        "delete {id}: removing cgroup {:?} and state",
        state.cgroup_path
    ));
    destroy(
        dir,
        &state,
        &cgroup,
        spec.as_ref().and_then(|s| s.hooks().as_ref()),
    )
}

/// SIGKILLs every process left in the cgroup and waits (bounded) until it is empty.
fn kill_leftovers(cgroup: &Cgroup) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pids = cgroup.pids().unwrap_or_default();
        if pids.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("processes {pids:?} of the container did not die after SIGKILL");
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILLs init and waits for it to die; a frozen cgroup (`thaw`) is thawed so that it can.
pub fn kill_init(state: &State, thaw: Option<&Cgroup>) -> anyhow::Result<()> {
    let Ok(pidfd) = syscall::pidfd_open(Pid::from_raw(state.pid)) else {
        return Ok(());
    };
    // The pid may have been reused between the status check and pidfd_open.
    if !process_alive(state.pid, state.start_time) {
        return Ok(());
    }
    let _ = syscall::pidfd_send_signal(&pidfd, libc::SIGKILL);
    if let Some(cg) = thaw {
        let _ = cg.freeze(false);
    }
    if !syscall::pidfd_wait_exit(&pidfd, Some(Duration::from_secs(10)))? {
        bail!("container init {} did not die after SIGKILL", state.pid);
    }
    Ok(())
}

/// Removes what the container made: cgroup (killing leftovers), poststop hooks, state.
pub fn destroy(
    dir: ContainerDir,
    state: &State,
    cgroup: &Cgroup,
    hooks: Option<&Hooks>,
) -> anyhow::Result<()> {
    let removed = cgroup.remove();
    hooks::run_warning(Kind::Poststop, hooks, &state.hook_state(Status::Stopped));
    dir.remove()?;
    removed?;
    Ok(())
}
