//! `create`: validate the bundle, prepare everything that can fail without side effects, then
//! make the state directory, clone the container and wait until its init blocks on exec.fifo.
//! Any failure after the first side effect undoes all of them.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, Pid};
use oci_spec::runtime::LinuxNamespaceType;

use super::Global;
use crate::cgroups::{self, Cgroup};
use crate::process::parent::{self, Spawned};
use crate::process::{fd_at_least, Container};
use crate::spec::Bundle;
use crate::state::{read_stat, write_atomic, ContainerDir, State, Status, CONFIG_FILE};
use crate::{capabilities, logging, namespaces, seccomp, syscall, tty};

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// A unix socket that receives a pidfd of the container's init.
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
}

/// A created container, still blocked on exec.fifo.
pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    pub init: Spawned,
    pub bundle: Bundle,
    /// Kept so that a foreground run removes it without building the manager again.
    pub cgroup: Cgroup,
    /// exec.fifo, opened for reading before the clone when the process may start as soon as
    /// init is ready (`create_container`'s `at_once`).
    pub reader: Option<std::fs::File>,
}

pub fn create(g: &Global, o: &CreateOptions) -> anyhow::Result<()> {
    create_container(g, o, None, false)?;
    Ok(())
}

/// Undoes a half-made container unless disarmed.
struct Undo<'a> {
    dir: Option<PathBuf>,
    cgroup: Option<&'a Cgroup>,
    init: Option<Pid>,
}

impl Undo<'_> {
    fn disarm(mut self) {
        self.dir = None;
        self.cgroup = None;
        self.init = None;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.init {
            if let Ok(pidfd) = syscall::pidfd_open(pid) {
                let _ = syscall::pidfd_send_signal(&pidfd, libc::SIGKILL);
                let _ = syscall::pidfd_wait_exit(&pidfd, Some(std::time::Duration::from_secs(5)));
            }
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.remove();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `console` is the socket a foreground `run` reads the pty from when the process has a terminal
/// and no --console-socket is given; it is unused otherwise. `at_once` (a `run`) lets init go
/// on from Ready to the process without waiting for this side, when nothing this side does
/// after Ready has to come before the process: no terminal to size, no pid file or pidfd for
/// the caller.
pub fn create_container(
    g: &Global,
    o: &CreateOptions,
    console: Option<OwnedFd>,
    at_once: bool,
) -> anyhow::Result<Created> {
    let store = g.store();
    crate::state::validate_id(&o.id)?;
    let bundle = Bundle::load(&o.bundle)?;
    let spec = &bundle.spec;
    let process = spec.process().as_ref().expect("validated");

    let (listen_fds, extra_env) = socket_activation();
    let preserve_fds = listen_fds + o.preserve_fds;
    let terminal = process.terminal() == Some(true);
    let console = match (&o.console_socket, console) {
        (Some(path), _) if terminal => Some(tty::connect(path)?),
        (None, c) if terminal => c,
        _ => None,
    };
    if terminal && console.is_none() {
        bail!("cannot allocate a tty without --console-socket: use --console-socket, or run -t in the foreground");
    }
    if !terminal && o.console_socket.is_some() {
        bail!("--console-socket given but process.terminal is false in the config");
    }
    let namespaces = namespaces::Plan::from_spec(spec)?;
    crate::rootfs::sources::check(spec)?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(seccomp::compile(s)?),
        None => None,
    };
    let capabilities = match process.capabilities() {
        Some(c) => Some(capabilities::Plan::from_spec(c)?),
        None => None,
    };
    let cgroup_path = cgroups::path_for(spec, &o.id, g.systemd_cgroup)?;
    let cgroup = Cgroup::open(&cgroup_path, g.systemd_cgroup, &o.id)?;

    logging::debug(&format!(
        "create {}: bundle {:?}, namespaces {:?} (by clone {:?}), cgroup {:?}",
        o.id,
        bundle.dir,
        namespaces.new,
        namespaces.clone_flags(),
        cgroup_path
    ));
    // Side effects start here.
    let dir = store.create(&o.id)?;
    let mut undo = Undo {
        dir: Some(dir.path.clone()),
        cgroup: None,
        init: None,
    };
    // After the ID is taken (a duplicate ID is refused as such), before the cgroup is touched.
    let hierarchies = crate::cgroups::hierarchies()?;
    cgroup.check_usable(&hierarchies)?;
    let fifo_path = dir.fifo();
    mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .with_context(|| format!("creating {fifo_path:?}"))?;
    // The container's user may not be root: it must be able to open the fifo for writing.
    std::fs::set_permissions(&fifo_path, std::fs::Permissions::from_mode(0o622))?;
    let fifo = open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("opening {fifo_path:?}"))?;
    // SAFETY: open returned a new fd.
    let fifo = unsafe { OwnedFd::from_raw_fd(fifo) };
    // With a reader already there, init's open for writing returns at once: its path from
    // Ready to the process no longer waits for this side to wake, commit state.json and open
    // the fifo (a round trip between the CPUs, 0.1-1 ms on a VM whose idle CPUs halt).
    let at_once = at_once && !terminal && o.pid_file.is_none() && o.pidfd_socket.is_none();
    let reader = at_once
        .then(|| super::start::open_reader(&fifo_path))
        .transpose()?;
    let min_fd = 3 + preserve_fds;
    undo.cgroup = Some(&cgroup);
    let user_ns =
        namespaces.creates(LinuxNamespaceType::User) || namespaces.joins(LinuxNamespaceType::User);
    let after_clone = namespaces.init_may_join_cgroup_late();
    let cgroup_join = cgroup.prepare(spec, user_ns, &hierarchies, g.rootless, after_clone)?;

    let cgroupfs_ahead = crate::rootfs::cgroupfs_ahead(spec, &namespaces);
    let container = Container {
        id: &o.id,
        bundle: &bundle,
        namespaces,
        capabilities,
        seccomp,
        fifo: fd_at_least(fifo, min_fd)?,
        console: console.map(|c| fd_at_least(c, min_fd)).transpose()?,
        no_pivot: o.no_pivot,
        new_keyring: !o.no_new_keyring,
        preserve_fds,
        extra_env,
        cgroup_join,
        cgroupfs_ahead,
        unprivileged_parent: g.unprivileged,
        runtime_in_userns: g.in_userns,
    };
    let mut state = State {
        id: o.id.clone(),
        pid: 0,
        start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        owner: String::new(),
        cgroup_path,
        systemd_cgroup: g.systemd_cgroup,
    };
    // The saved config is for the commands that come after create, which wait on the
    // directory's lock, and state.json only goes in place once init is ready: both are
    // written while init sets up.
    let staged = std::cell::RefCell::new(None);
    let meanwhile = |pid: Option<Pid>| {
        write_atomic(&dir.path.join(CONFIG_FILE), &bundle.raw)?;
        let Some(pid) = pid else {
            return Ok(());
        };
        if let Some((_, start_time)) = read_stat(pid.as_raw()) {
            let mut s = state.clone();
            s.pid = pid.as_raw();
            s.start_time = start_time;
            let file = dir.stage(&s)?;
            staged.replace(Some((s, file)));
        }
        Ok(())
    };
    let hook_state = |pid| {
        let mut s = state.clone();
        s.pid = pid;
        s.hook_state(Status::Creating)
    };
    let init = parent::spawn(&container, &cgroup, hook_state, meanwhile)?;
    undo.init = Some(init.pid);
    logging::debug(&format!(
        "create {}: init {} is waiting on exec.fifo",
        o.id, init.pid
    ));
    // `meanwhile` had init's pid (spawn gives it only when it is final) and its start time.
    match staged.take() {
        Some((s, file)) => {
            state = s;
            file.commit()?;
        }
        _ => {
            state.pid = init.pid.as_raw();
            state.start_time = read_stat(state.pid)
                .map(|(_, start)| start)
                .context("reading the start time of the container's init")?;
            dir.write(&state)?;
        }
    }
    if let Some(pid_file) = &o.pid_file {
        write_atomic(pid_file, state.pid.to_string().as_bytes())
            .with_context(|| format!("writing --pid-file {pid_file:?}"))?;
    }
    if let Some(socket) = &o.pidfd_socket {
        super::send_pidfd(socket, init.pid, "standard")?;
    }
    undo.disarm();
    drop(container);
    Ok(Created {
        dir,
        state,
        init,
        bundle,
        cgroup,
        reader,
    })
}

/// systemd socket activation: fds 3..3+LISTEN_FDS pass into the container when they are meant
/// for this process, and the container is told they are meant for its pid 1.
fn socket_activation() -> (i32, Vec<String>) {
    let mine = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .filter(|n| *n > 0 && mine);
    match n {
        Some(n) => (
            n,
            vec![format!("LISTEN_FDS={n}"), "LISTEN_PID=1".to_string()],
        ),
        None => (0, Vec::new()),
    }
}
