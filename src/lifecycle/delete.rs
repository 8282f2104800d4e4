//! `delete`: remove a stopped container, or a created one (killing its init, as containerd
//! expects), or with `--force` a running or paused one; then its cgroup, the poststop hooks and
//! the state directory. `--force` on a missing container succeeds.

use std::time::Duration;

use anyhow::bail;
use nix::unistd::Pid;

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
    match status(&state, &dir.path) {
        Status::Stopped => {}
        Status::Created => kill_init(&state, false)?,
        s @ (Status::Running | Status::Paused) if force => kill_init(&state, s == Status::Paused)?,
        s => bail!(
            "cannot delete container {id} that is not stopped: {}",
            s.as_str()
        ),
    }
    logging::debug(&format!(
        "delete {id}: removing cgroup {:?} and state",
        state.cgroup_path
    ));
    destroy(g, dir, &state)
}

/// SIGKILLs init and waits for it to die; a frozen cgroup is thawed so that it can.
pub fn kill_init(state: &State, paused: bool) -> anyhow::Result<()> {
    let Ok(pidfd) = syscall::pidfd_open(Pid::from_raw(state.pid)) else {
        return Ok(());
    };
    // The pid may have been reused between the status check and pidfd_open.
    if !process_alive(state.pid, state.start_time) {
        return Ok(());
    }
    let _ = syscall::pidfd_send_signal(&pidfd, libc::SIGKILL);
    if paused {
        if let Ok(cg) = Cgroup::open(&state.cgroup_path, state.systemd_cgroup, &state.id) {
            let _ = cg.freeze(false);
        }
    }
    if !syscall::pidfd_wait_exit(&pidfd, Some(Duration::from_secs(10)))? {
        bail!("container init {} did not die after SIGKILL", state.pid);
    }
    Ok(())
}

/// Removes what the container made: cgroup (killing leftovers), poststop hooks, state.
pub fn destroy(g: &Global, dir: ContainerDir, state: &State) -> anyhow::Result<()> {
    let cgroup = Cgroup::open(
        &state.cgroup_path,
        g.systemd_cgroup || state.systemd_cgroup,
        &state.id,
    )
    .and_then(|cg| cg.remove());
    match saved_spec(&dir.path) {
        Ok(spec) => {
            if let Err(e) = hooks::run(
                Kind::Poststop,
                spec.hooks().as_ref(),
                &state.hook_state(Status::Stopped),
            ) {
                logging::warn(&e.to_string());
            }
        }
        Err(e) => logging::warn(&format!("poststop hooks not run: {e:#}")),
    }
    dir.remove()?;
    cgroup?;
    Ok(())
}
