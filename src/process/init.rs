//! The container side, top to bottom as runtime-spec orders it: join the cgroup (or, on v1,
//! once the parent has made it, while the mounts are under way), enter the namespaces, become
//! pid 1, build the rootfs (with the create hooks), pivot_root, finish the filesystem, set up
//! the terminal, limits, user, capabilities and seccomp, report Ready, wait on exec.fifo, run
//! the startContainer hooks and exec the process.

use std::convert::Infallible;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::channel::{Channel, InitFailure, Message, Step};
use super::finish;
use super::Container;
use crate::cgroups::{self, Join};
use crate::hooks::{self, Kind};
use crate::state::{HookState, Status, OCI_VERSION};
use crate::{keyring, namespaces, rlimits, rootfs, sysctl, tty};

/// Runs in the cloned child and never returns: it execs the container's process or exits after
/// reporting what failed.
pub fn run(c: &Container, ch: Channel, born_in: bool) -> ! {
    let failure = match setup(c, &ch, born_in) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let _ = ch.send(&Message::Failed(failure));
    // SAFETY: _exit skips the parent's atexit handlers and buffers, which belong to the parent.
    unsafe { libc::_exit(1) }
}

fn setup(c: &Container, ch: &Channel, born_in: bool) -> Result<Infallible, InitFailure> {
    let spec = c.spec();
    let process = spec.process().as_ref().expect("validated: process exists");

    // Until exec, nothing in the container may ptrace or open /proc/<pid>/exe of this process,
    // which is still the hull binary (CVE-2016-9962, CVE-2019-5736).
    set_dumpable(false)?;
    // In the cgroup before anything can fork: by itself, or once the parent has moved it. A
    // cgroup the parent makes after the clone is joined later (`join_late`), and the cgroup
    // namespace, rooted where init is when it is made, with it.
    let late = matches!(
        c.cgroup_join,
        Join::BySelf {
            made_after_clone: true,
            ..
        }
    );
    match &c.cgroup_join {
        Join::BySelf {
            made_after_clone: false,
            ..
        } => cgroups::join_self(&c.cgroup_join, born_in, Vec::new()).step("joining the cgroup")?,
        Join::ByParent => ch.wait_proceed().step("waiting for the cgroup")?,
        Join::BySelf { .. } | Join::Outside => {}
    }
    let joined = std::cell::Cell::new(!late);
    let cgroupfs = std::cell::RefCell::new(None);
    let join_late = || -> Result<(), String> {
        if joined.get() {
            return Ok(());
        }
        let (tasks, mut fds, names) = match ch.recv_fds() {
            Ok((Message::CgroupMade { tasks, cgroupfs }, fds)) => (tasks, fds, cgroupfs),
            Ok((other, _)) => return Err(format!("waiting for the cgroup: got {other:?}")),
            Err(e) => return Err(format!("waiting for the cgroup: {e}")),
        };
        let expected = tasks + names.as_ref().map_or(0, |n| n.len() + 1);
        if fds.len() != expected {
            return Err(format!(
                "waiting for the cgroup: {} fds came with it, {expected} expected",
                fds.len()
            ));
        }
        let made = fds.split_off(tasks);
        cgroups::join_self(&c.cgroup_join, born_in, fds)
            .map_err(|e| format!("joining the cgroup: {e}"))?;
        if let Some(names) = names {
            let mut made = made.into_iter();
            cgroupfs.replace(made.next().map(|tmpfs| cgroups::CgroupFs {
                tmpfs,
                binds: names.into_iter().zip(made).collect(),
            }));
        }
        if c.namespaces.creates(LinuxNamespaceType::Cgroup) {
            namespaces::create(CloneFlags::CLONE_NEWCGROUP).map_err(|e| e.to_string())?;
        }
        joined.set(true);
        Ok(())
    };

    enter_namespaces(c, ch, late)?;
    let in_userns = c.namespaces.creates(LinuxNamespaceType::User)
        || c.namespaces.joins(LinuxNamespaceType::User)
        || c.runtime_in_userns;
    namespaces::set_uts_names(spec).step("uts namespace")?;
    if c.new_keyring {
        keyring::join_new(c.id).step("keyring")?;
    }
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    let source = |index: usize| {
        // The parent answers only once it has said the cgroup is ready.
        join_late()?;
        ch.send(&Message::MountSource(index))
            .map_err(|e| e.to_string())?;
        match ch.recv_fd() {
            Ok((Message::Proceed, Some(fd))) => Ok(fd),
            Ok((other, _)) => Err(format!("expected a mount source, got {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    };
    let host_mntns = !c.namespaces.creates(LinuxNamespaceType::Mount)
        && !c.namespaces.joins(LinuxNamespaceType::Mount);
    let ctx = rootfs::Context {
        rootfs: &c.bundle.rootfs,
        bundle: &c.bundle.dir,
        in_userns,
        new_cgroupns: c.namespaces.creates(LinuxNamespaceType::Cgroup),
        host_mntns,
        joined_mntns: c.namespaces.joins(LinuxNamespaceType::Mount),
        cgroupfs: &cgroupfs,
        source: &source,
        join_cgroup: &join_late,
    };
    rootfs::prepare(spec, &ctx).step("rootfs")?;
    // At the latest here: next come the hooks, the first processes of the container.
    join_late().step("cgroup")?;
    // After the rootfs: its set-up holds fds (mount sources) that a low RLIMIT_NOFILE meant
    // for the process would not leave room for. The create hooks run under the limits.
    rlimits::apply(process).step("process limits")?;
    let hook_state = |status: Status| {
        serde_json::to_vec(&HookState {
            oci_version: OCI_VERSION,
            id: c.id,
            status: status.as_str(),
            pid: host_pid,
            bundle: &c.bundle.dir,
            annotations: &spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        })
        .expect("state serialises")
    };
    if let Some(h) = spec.hooks() {
        if !Kind::Prestart.of(h).is_empty() || !Kind::CreateRuntime.of(h).is_empty() {
            ch.send(&Message::RunCreateHooks).step("create hooks")?;
            ch.wait_proceed().step("create hooks")?;
        }
    }
    let process_env: Vec<String> = process
        .env()
        .iter()
        .flatten()
        .chain(&c.extra_env)
        .cloned()
        .collect();
    hooks::run(
        Kind::CreateContainer,
        spec.hooks().as_ref(),
        &hook_state(Status::Created),
        &hooks::Context {
            cwd: Some(&c.bundle.rootfs),
            env: Some(process_env),
        },
    )
    .step("hooks")?;

    if host_mntns {
        rootfs::chroot_into(&c.bundle.rootfs).step("rootfs")?;
    } else if c.no_pivot {
        rootfs::move_root(&c.bundle.rootfs).step("rootfs")?;
    } else {
        rootfs::pivot_root(&c.bundle.rootfs).step("rootfs")?;
    }
    if !host_mntns {
        rootfs::apply_root_propagation(spec).step("rootfs")?;
    }
    if rootfs::needs_dev_setup(spec) {
        rootfs::reopen_dev_null().step("rootfs")?;
    }
    if process.terminal() == Some(true) {
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let pty = tty::open_pty(size).step("terminal")?;
        tty::attach(&pty).step("terminal")?;
        let socket = c
            .console
            .as_ref()
            .expect("validated: a terminal has a console socket");
        tty::send_master(socket.as_fd(), &pty.name, pty.master.as_fd()).step("terminal")?;
    } else {
        tty::new_session().step("session")?;
    }
    // Before the read-only paths: /proc/sys is usually one of them.
    sysctl::apply(spec).step("sysctl")?;
    // Masks and read-only paths in the host's mount namespace would be the host's mounts.
    if !host_mntns {
        rootfs::finish(spec).step("rootfs")?;
    }

    let ready = finish::prepare(
        &finish::Steps {
            process,
            linux: spec.linux().as_ref(),
            caps: c.capabilities.as_ref(),
            seccomp: c.seccomp.as_ref(),
            in_userns,
            extra_env: &c.extra_env,
            preserve_fds: c.preserve_fds,
            exec: false,
        },
        ch,
    )?;
    // While it waits for `start`, init holds only the channel, exec.fifo and the fds it
    // passes on: nothing hull or its caller had open (a log, a lock, a state dir).
    crate::syscall::close_from_except(
        3 + c.preserve_fds as u32,
        &[ch.as_raw_fd(), c.fifo.as_raw_fd()],
    )
    .step("closing fds")?;
    super::end_on_ending_signals().step("signal handlers")?;
    ch.send(&Message::Ready).step("reporting ready")?;
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(rootfs::fd_path(c.fifo.as_raw_fd()))
        .step("opening exec.fifo")?;
    if let Err(e) = hooks::run(
        Kind::StartContainer,
        spec.hooks().as_ref(),
        &hook_state(Status::Created),
        &hooks::Context {
            cwd: None,
            env: Some(ready.env()),
        },
    ) {
        let _ = write!(fifo, "1{e}");
        return Err(e).step("hooks");
    }
    fifo.write_all(b"0").step("writing exec.fifo")?;
    let failure = ready.exec();
    // `start` has returned and nobody reads the channel any more: as runc's init does, the
    // process's own stderr says why it never ran, in one line, and the status is 255.
    let _ = writeln!(std::io::stderr(), "{failure}");
    // SAFETY: _exit skips the parent's atexit handlers and buffers.
    unsafe { libc::_exit(255) }
}

/// Joins and creates namespaces; when a pid or time namespace only applies to children, forks
/// so that init is the first process inside them.
/// `late`: the cgroup namespace waits for `join_late`.
fn enter_namespaces(c: &Container, ch: &Channel, late: bool) -> Result<(), InitFailure> {
    let plan = &c.namespaces;
    plan.join_all().step("namespaces")?;
    let mut pending = plan.new - plan.clone_flags();
    if late {
        pending -= CloneFlags::CLONE_NEWCGROUP;
    }
    namespaces::create(pending).step("namespaces")?;
    // Before becoming the user namespace's root: this process is not dumpable, so its /proc
    // files belong to host root, who may write them and the namespace's root may not.
    if plan.creates(LinuxNamespaceType::Time) {
        write_time_offsets(c)?;
    }
    if plan.creates(LinuxNamespaceType::User) {
        // A parent without root may open this process's map files only while it is dumpable
        // (a non-dumpable process's /proc files belong to root), as in runc. Nothing of the
        // container runs yet, and the window closes before anything does. A root parent
        // needs no window, and gets none: the new namespace's owner is host root, and every
        // root process of the host could then ptrace this one.
        if c.unprivileged_parent {
            set_dumpable(true)?;
        }
        ch.send(&Message::WriteIdMaps).step("user namespace")?;
        ch.wait_proceed().step("user namespace")?;
        if c.unprivileged_parent {
            set_dumpable(false)?;
        }
    }
    // In a user namespace, made or joined, init works as its root: host root is not mapped
    // there, and what it creates must belong to the namespace's root.
    if plan.creates(LinuxNamespaceType::User) || plan.joins(LinuxNamespaceType::User) {
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .step("becoming root in the user namespace")?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .step("becoming root in the user namespace")?;
    }
    // As init, in the user namespace that owns the new network namespace.
    if plan.creates(LinuxNamespaceType::Network) {
        crate::loopback::up().step("bringing up the loopback device")?;
    }
    if plan.init_forks() {
        super::fork_reporting_pid(ch).step("forking into the pid namespace")?;
    }
    Ok(())
}

fn write_time_offsets(c: &Container) -> Result<(), InitFailure> {
    let Some(offsets) = c
        .spec()
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let text: String = offsets
        .iter()
        .map(|(clock, o)| {
            format!(
                "{clock} {} {}\n",
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0)
            )
        })
        .collect();
    std::fs::write("/proc/self/timens_offsets", text).step("linux.timeOffsets")
}

fn set_dumpable(on: bool) -> Result<(), InitFailure> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) })
        .map(drop)
        .step("prctl(PR_SET_DUMPABLE)")
}
