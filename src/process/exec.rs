//! The container side of `exec`: join every namespace of the container's init at once through
//! its pidfd, fork so the process is inside the pid (and time) namespace, then the same last
//! steps as init: limits, terminal, user, capabilities, seccomp, exec.

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{Linux, Process};

use super::channel::{Channel, InitFailure, Message, Step};
use super::finish;
use crate::capabilities::Plan;
use crate::cgroups::{self, Join};
use crate::seccomp::Program;
use crate::{rlimits, tty};

/// Everything the exec'd process needs, prepared by the parent before the fork.
pub struct ExecProcess<'a> {
    /// pidfd of the container's init: joining through it enters all namespaces atomically.
    pub init: &'a OwnedFd,
    /// The container's namespaces (those its config lists).
    pub namespaces: CloneFlags,
    pub process: &'a Process,
    /// The container's `linux` section (personality, cpuset).
    pub linux: Option<&'a Linux>,
    pub capabilities: Option<Plan>,
    pub seccomp: Option<Program>,
    pub console: Option<OwnedFd>,
    /// The caller proxies the terminal itself (no console socket of the user's).
    pub proxied_console: bool,
    pub preserve_fds: i32,
    pub in_userns: bool,
    /// How the process gets into the container's cgroup (before it joins any namespace).
    pub cgroup_join: &'a Join,
}

/// Runs in the forked child and never returns.
pub fn run(e: &ExecProcess, ch: Channel, born_in: bool) -> ! {
    let failure = match setup(e, &ch, born_in) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let _ = ch.send(&Message::Failed(failure));
    // SAFETY: _exit skips the parent's atexit handlers and buffers.
    unsafe { libc::_exit(1) }
}

fn setup(e: &ExecProcess, ch: &Channel, born_in: bool) -> Result<Infallible, InitFailure> {
    // Nothing in the container may ptrace this process or open its exe before exec
    // (CVE-2016-9962, CVE-2019-5736).
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) })
        .step("prctl(PR_SET_DUMPABLE)")?;
    // runc's "initial" CPUs: where this process runs until it is in the container's cgroup.
    if let Some(cpus) = e
        .process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().as_deref())
        .filter(|c| !c.is_empty())
    {
        crate::sched::set_affinity(Some(cpus)).step("process.execCPUAffinity.initial")?;
    }
    match e.cgroup_join {
        Join::BySelf { .. } => {
            cgroups::join_self(e.cgroup_join, born_in, Vec::new()).step("joining the cgroup")?
        }
        Join::Outside => {}
        Join::ByParent => ch.wait_proceed().step("waiting for the cgroup")?,
    }
    setns(e.init.as_fd(), e.namespaces).step("joining the container's namespaces")?;
    super::fork_reporting_pid(ch).step("forking into the pid namespace")?;
    rlimits::apply(e.process).step("process limits")?;
    if e.process.terminal() == Some(true) {
        let size = e
            .process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let pty = tty::open_pty(size).step("terminal")?;
        tty::make_controlling(&pty).step("terminal")?;
        // Before the master leaves: once exec'd, the process may write before the parent could
        // clear it, and its first `\n` would reach the caller as `\r\n`.
        if e.proxied_console {
            tty::clear_onlcr(pty.master.as_fd()).step("terminal")?;
        }
        let socket = e
            .console
            .as_ref()
            .expect("checked: a terminal has a console socket");
        tty::send_master(socket.as_fd(), &pty.name, pty.master.as_fd()).step("terminal")?;
    } else {
        tty::new_session().step("session")?;
    }
    let ready = finish::prepare(
        &finish::Steps {
            process: e.process,
            linux: e.linux,
            caps: e.capabilities.as_ref(),
            seccomp: e.seccomp.as_ref(),
            in_userns: e.in_userns,
            extra_env: &[],
            preserve_fds: e.preserve_fds,
            exec: true,
        },
        ch,
    )?;
    Err(ready.exec())
}
