//! The parent side of create: clone the child, put it in its cgroup before it can fork (on v1,
//! make the cgroup while the child sets up its namespaces and mounts on the other CPU), write
//! its id maps, run the hooks that belong to the runtime namespace, and wait for Ready. On any
//! failure the child is killed, so the caller only has to remove the cgroup and the state.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::channel::{self, ChannelError, InitFailure, Message};
use super::{init, Container};
use crate::cgroups::{self, Cgroup, Forked, Join};
use crate::hooks::{self, Kind};
use crate::userns;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("creating the container process: {0}")]
    Clone(nix::Error),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    IdMap(#[from] userns::IdMapError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("container init: {0}")]
    Init(InitFailure),
    #[error("mounts[{index}]: {message}")]
    MountSource { index: usize, message: String },
    #[error("container init exited before it was ready ({0})")]
    Died(String),
    #[error(transparent)]
    Channel(ChannelError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// The container's init, running and blocked on exec.fifo.
pub struct Spawned {
    pub pid: Pid,
}

/// Clones the container and drives it until it is Ready. `hook_state(pid)` renders the state
/// handed to the prestart and createRuntime hooks. `meanwhile` is the caller's work that
/// neither the clone nor init waits for: it runs while init sets up, once init has what it
/// needs from this side to go on, and is given init's pid when it is already known (init
/// does not fork into a pid namespace it joins).
pub fn spawn(
    c: &Container,
    cgroup: &Cgroup,
    hook_state: impl Fn(i32) -> Vec<u8>,
    meanwhile: impl FnOnce(Option<Pid>) -> Result<(), SpawnError>,
) -> Result<Spawned, SpawnError> {
    let (parent_end, child_end) = channel::pair(3 + c.preserve_fds).map_err(SpawnError::Clone)?;
    // The three steps are named as runc's debug log names them, for people who read both.
    crate::logging::debug(&format!(
        "nsexec container setup: cloning init with flags {:#x}",
        c.namespaces.clone_flags().bits()
    ));
    let child = match cgroups::fork(c.namespaces.clone_flags().bits() as u64, &c.cgroup_join)? {
        Forked::Child { born_in } => {
            drop(parent_end);
            init::run(c, child_end, born_in)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    crate::logging::debug(&format!("child process in init(): pid {child}"));

    let mut init_pid = child;
    let result = drive(
        c,
        cgroup,
        child,
        &mut init_pid,
        &parent_end,
        &hook_state,
        meanwhile,
    );
    match result {
        Ok(()) => Ok(Spawned { pid: init_pid }),
        Err(e) => {
            let _ = kill(init_pid, Signal::SIGKILL);
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            Err(e)
        }
    }
}

fn drive(
    c: &Container,
    cgroup: &Cgroup,
    child: Pid,
    init_pid: &mut Pid,
    ch: &channel::Channel,
    hook_state: &impl Fn(i32) -> Vec<u8>,
    meanwhile: impl FnOnce(Option<Pid>) -> Result<(), SpawnError>,
) -> Result<(), SpawnError> {
    // After every word to init the loop below reads again: an init that failed and went
    // meanwhile left its report there (or its exit status), which says more than EPIPE.
    let tell = |ch: &channel::Channel, msg: &Message, fds: &[std::os::fd::BorrowedFd]| match ch
        .send_fds(msg, fds)
    {
        Err(ChannelError::Io(Errno::EPIPE | Errno::ECONNRESET)) => Ok(()),
        r => r.map_err(SpawnError::Channel),
    };
    let proceed = |ch: &channel::Channel| tell(ch, &Message::Proceed, &[]);
    match c.cgroup_join {
        Join::ByParent => {
            cgroup.add(child)?;
            cgroup.apply_spec(c.spec())?;
            proceed(ch)?;
        }
        // Init sets up its namespaces and mounts meanwhile, and joins on this word.
        Join::BySelf {
            made_after_clone: true,
            ..
        } => {
            cgroup.make_after_clone(c.spec())?;
            let made = cgroup.hand_over(&c.cgroup_join, c.cgroupfs_ahead)?;
            let cgroupfs = made.cgroupfs.as_ref();
            let msg = Message::CgroupMade {
                tasks: made.tasks.len(),
                cgroupfs: cgroupfs.map(|fs| fs.binds.iter().map(|(n, _)| n.clone()).collect()),
            };
            let fds: Vec<_> = (made.tasks.iter())
                .chain(cgroupfs.map(|fs| &fs.tmpfs))
                .chain(
                    cgroupfs
                        .into_iter()
                        .flat_map(|fs| fs.binds.iter().map(|(_, b)| b)),
                )
                .map(AsFd::as_fd)
                .collect();
            tell(ch, &msg, &fds)?;
        }
        // A child that joins its cgroup by itself does not wait for this.
        Join::Outside | Join::BySelf { .. } => {}
    }
    meanwhile((!c.namespaces.init_forks()).then_some(child))?;
    loop {
        let (msg, fd) = match ch.recv_fd() {
            Ok(m) => m,
            Err(ChannelError::Closed) if *init_pid != child => {
                return Err(SpawnError::Died("killed or crashed".into()))
            }
            Err(ChannelError::Closed) => return Err(SpawnError::Died(exit_reason(child))),
            Err(e) => return Err(SpawnError::Channel(e)),
        };
        match msg {
            Message::WriteIdMaps => {
                userns::write_id_maps(child, c.spec(), c.unprivileged_parent)?;
                proceed(ch)?;
            }
            Message::InitPid(pid) => {
                *init_pid = Pid::from_raw(pid);
                // The intermediate process exits right after reporting its child.
                let _ = waitpid(child, None);
            }
            Message::MountSource(index) => {
                let fd =
                    crate::rootfs::sources::open_for(*init_pid, c.spec(), index, &c.bundle.dir)
                        .map_err(|message| SpawnError::MountSource { index, message })?;
                ch.send_fd(&Message::Proceed, std::os::fd::AsFd::as_fd(&fd))
                    .map_err(SpawnError::Channel)?;
            }
            Message::RunCreateHooks => {
                let state = hook_state(init_pid.as_raw());
                let here = hooks::Context::default();
                hooks::run(Kind::Prestart, c.spec().hooks().as_ref(), &state, &here)?;
                hooks::run(
                    Kind::CreateRuntime,
                    c.spec().hooks().as_ref(),
                    &state,
                    &here,
                )?;
                proceed(ch)?;
            }
            Message::SeccompListener => {
                let (Some(agent), Some(fd)) = (c.seccomp.as_ref().and_then(|s| s.agent()), fd)
                else {
                    return Err(SpawnError::Channel(ChannelError::Unexpected {
                        expected: "a seccomp listener for the profile's agent",
                        got: Message::SeccompListener,
                    }));
                };
                agent.send(fd, init_pid.as_raw(), &hook_state(init_pid.as_raw()))?;
            }
            Message::Ready => {
                crate::logging::debug(&format!(
                    "init: closing the pipe to signal completion: pid {init_pid} is ready"
                ));
                return Ok(());
            }
            Message::Failed(f) => return Err(SpawnError::Init(f)),
            got @ (Message::Proceed | Message::CgroupMade { .. }) => {
                return Err(SpawnError::Channel(ChannelError::Unexpected {
                    expected: "a request from init",
                    got,
                }))
            }
        }
    }
}

fn exit_reason(child: Pid) -> String {
    match waitpid(child, None) {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, sig, _)) => crate::syscall::signal_text(sig),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("wait: {e}"),
    }
}
