//! `exec`: run another process in a running container, with runc's flags. The process joins
//! the container's cgroup before it can fork, all its namespaces, and its capability and seccomp
//! limits (unless a process.json says otherwise). Foreground, hull forwards signals, proxies a
//! terminal it owns, and exits with the process's status.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, LinuxNamespaceType, Process, Spec};

use super::run::{become_supervisor, console_pair, forwarded_signals, supervise};
use super::{saved_spec, status, Global};
use crate::cgroups::{self, ExecCgroups, Forked, Join};
use crate::process::channel::{self, ChannelError, Message};
use crate::process::exec::ExecProcess;
use crate::process::fd_at_least;
use crate::state::{process_alive, write_atomic, Status};
use crate::{capabilities, namespaces, seccomp, syscall, tty};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub id: String,
    pub process: Option<PathBuf>,
    pub command: Vec<String>,
    pub tty: bool,
    pub detach: bool,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// A unix socket that receives a pidfd of the process.
    pub pidfd_socket: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: i32,
    pub cgroup: Vec<String>,
    pub ignore_paused: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

/// The process to run: a process.json as given, or the container's process with the
/// command and the flags applied (as runc does).
fn build_process(spec: &Spec, o: &ExecOptions) -> anyhow::Result<Process> {
    if let Some(path) = &o.process {
        let bytes = std::fs::read(path).with_context(|| format!("reading --process {path:?}"))?;
        // runc runs a process.json without a user as root.
        let mut v: serde_json::Value = crate::spec::parse_json(path, &bytes)?;
        if v.get("user").is_none() {
            v["user"] = serde_json::json!({"uid": 0, "gid": 0});
        }
        return Ok(crate::spec::parse_json(path, &serde_json::to_vec(&v)?)?);
    }
    if o.command.is_empty() {
        bail!("exec: a command is required (or --process)");
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(o.command.clone()));
    p.set_terminal(Some(o.tty));
    // A terminal hull proxies starts at the size of hull's own, set by the process itself
    // before it execs (a resize from here could come after its first query).
    let size = (o.tty && o.console_socket.is_none())
        .then(|| tty::size_of(0))
        .flatten()
        .map(|(rows, cols)| {
            oci_spec::runtime::BoxBuilder::default()
                .height(u64::from(rows))
                .width(u64::from(cols))
                .build()
        })
        .transpose()?;
    p.set_console_size(size);
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(o.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut user = p.user().clone();
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (u.as_str(), None),
        };
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u:?}: uid must be a number"))?,
        );
        if let Some(gid) = gid {
            user.set_gid(
                gid.parse()
                    .with_context(|| format!("--user {u:?}: gid must be a number"))?,
            );
        }
    }
    if !o.additional_gids.is_empty() {
        user.set_additional_gids(Some(o.additional_gids.clone()));
    }
    p.set_user(user);
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &o.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &o.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let mut bounding = caps.bounding().clone().unwrap_or_default();
        let mut effective = caps.effective().clone().unwrap_or_default();
        let mut permitted = caps.permitted().clone().unwrap_or_default();
        // As runc: ambient too where the config has an inheritable set. The kernel raises an
        // ambient capability only if it is inheritable already, so this grants nothing the
        // config did not.
        let mut ambient = caps
            .inheritable()
            .is_some()
            .then(|| caps.ambient().clone().unwrap_or_default());
        for name in &o.caps {
            let canonical = if name.starts_with("CAP_") {
                name.clone()
            } else {
                format!("CAP_{name}")
            };
            let cap: Capability = serde_json::from_value(serde_json::Value::String(canonical))
                .map_err(|_| anyhow::anyhow!("--cap: unknown capability {name:?}"))?;
            // Never inheritable (CVE-2022-29162): that would pass the capability on through
            // every exec of a program with file capabilities.
            for set in [&mut bounding, &mut effective, &mut permitted] {
                set.insert(cap);
            }
            if let Some(a) = ambient.as_mut() {
                a.insert(cap);
            }
        }
        if ambient.is_some() {
            caps.set_ambient(ambient);
        }
        caps.set_bounding(Some(bounding));
        caps.set_effective(Some(effective));
        caps.set_permitted(Some(permitted));
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

pub fn exec(g: &Global, o: &ExecOptions) -> anyhow::Result<i32> {
    let (dir, state) = g.store().open(&o.id)?;
    match status(&state, &dir.path) {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Paused if !o.ignore_paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        _ => {}
    }
    let spec = saved_spec(&dir.path)?;
    // Other commands (kill, pause, delete) must not wait for a long exec.
    drop(dir);
    let process = build_process(&spec, o)?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("exec: process.args must name the program to run");
    }
    if !process.cwd().is_absolute() {
        bail!("exec: cwd {:?} is not an absolute path", process.cwd());
    }
    let terminal = process.terminal() == Some(true);
    if terminal && o.detach && o.console_socket.is_none() {
        bail!("cannot allocate a tty for a detached exec without --console-socket");
    }
    let capabilities = match process.capabilities() {
        Some(c) => Some(capabilities::Plan::from_spec(c)?),
        None => None,
    };
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(seccomp::compile(s)?),
        None => None,
    };
    let mut flags = nix::sched::CloneFlags::empty();
    let mut in_userns = g.in_userns;
    for ns in namespaces::listed(&spec) {
        flags |= namespaces::clone_flag(ns.typ());
        in_userns |= ns.typ() == LinuxNamespaceType::User;
    }
    let min_fd = 3 + o.preserve_fds;
    let init = syscall::pidfd_open(Pid::from_raw(state.pid)).context("container not running")?;
    let init = fd_at_least(init, min_fd)?;
    if !process_alive(state.pid, state.start_time) {
        bail!("container not running");
    }
    let container_dir = crate::cgroups::fs_dir(&state.cgroup_path, state.systemd_cgroup)?;
    let cgroup_join = ExecCgroups::parse(&o.cgroup)?.plan(&container_dir, g.rootless)?;

    let (ours, theirs) = match (&o.console_socket, terminal) {
        (Some(path), true) => (None, Some(tty::connect(path)?)),
        (None, true) => {
            let (a, b) = console_pair()?;
            (Some(a), Some(b))
        }
        _ => (None, None),
    };
    let signals = forwarded_signals();
    if !o.detach {
        become_supervisor(&signals)?;
    }
    let agent = seccomp.as_ref().and_then(|s| s.agent()).cloned();
    let e = ExecProcess {
        init: &init,
        namespaces: flags,
        process: &process,
        linux: spec.linux().as_ref(),
        capabilities,
        seccomp,
        console: theirs.map(|c| fd_at_least(c, min_fd)).transpose()?,
        proxied_console: ours.is_some(),
        preserve_fds: o.preserve_fds,
        in_userns,
        cgroup_join: &cgroup_join,
    };
    let (parent_end, child_end) = channel::pair(min_fd)?;
    let child = match cgroups::fork(0, &cgroup_join).context("forking the exec process")? {
        Forked::Child { born_in } => {
            drop(parent_end);
            crate::process::exec::run(&e, child_end, born_in)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    drop(e);
    let to_agent = |listener, pid: Pid| match &agent {
        Some(a) => Ok(a.send(listener, pid.as_raw(), &state.hook_state(Status::Running))?),
        None => bail!("exec: a seccomp listener but no agent in the profile"),
    };
    let pid = match start(&cgroup_join, child, &parent_end, to_agent) {
        Ok(pid) => pid,
        Err(err) => {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(child, None);
            return Err(err);
        }
    };
    if let Some(pid_file) = &o.pid_file {
        write_atomic(pid_file, pid.to_string().as_bytes())
            .with_context(|| format!("writing --pid-file {pid_file:?}"))?;
    }
    if let Some(socket) = &o.pidfd_socket {
        super::send_pidfd(socket, pid, "setns")?;
    }
    if o.detach {
        return Ok(0);
    }
    let master: Option<OwnedFd> = match &ours {
        Some(sock) => Some(tty::recv_master(sock.as_fd())?),
        None => None,
    };
    supervise(pid, &signals, master)
}

/// Places the child in the cgroup unless it joins by itself, hands a seccomp listener to the
/// agent, and waits until its process has exec'd (the channel closes at exec) or failed.
fn start(
    cgroup_join: &Join,
    child: Pid,
    ch: &channel::Channel,
    to_agent: impl Fn(OwnedFd, Pid) -> anyhow::Result<()>,
) -> anyhow::Result<Pid> {
    // A child that joins by itself does not wait for Proceed.
    match cgroup_join {
        Join::BySelf { .. } | Join::Outside => {}
        Join::ByParent => ch.send(&Message::Proceed)?,
    }
    let pid = match ch.recv()? {
        Message::InitPid(p) => Pid::from_raw(p),
        Message::Failed(f) => bail!("exec failed: {f}"),
        other => bail!("exec: unexpected message {other:?}"),
    };
    let _ = waitpid(child, None);
    loop {
        match ch.recv_fd() {
            Err(ChannelError::Closed) => return Ok(pid),
            Ok((Message::SeccompListener, Some(fd))) => {
                if let Err(e) = to_agent(fd, pid) {
                    // Without its agent the process must not run at all.
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    return Err(e);
                }
            }
            Ok((Message::Failed(f), _)) => bail!("exec failed: {f}"),
            Ok((other, _)) => bail!("exec: unexpected message {other:?}"),
            Err(e) => return Err(e.into()),
        }
    }
}
