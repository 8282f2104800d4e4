//! The runc lifecycle, one file per command. Each takes parsed options and does the work; the
//! CLI layer only maps flags onto these calls.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use oci_spec::runtime::Spec;

use crate::cgroups;
pub use crate::criu::options::CriuOptions;
use crate::state::{process_alive, State, Status, Store, CONFIG_FILE, EXEC_FIFO};

/// Flags every command shares.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    /// Whether --root was given rather than defaulted.
    pub root_given: bool,
    pub systemd_cgroup: bool,
    /// `--rootless`: a cgroup the caller may not create is not an error (see `Cgroup::prepare`).
    pub rootless: bool,
    /// `--criu`: the CRIU binary checkpoint and restore run (looked up in PATH by default).
    pub criu: PathBuf,
    /// Who runs hull, read once: without root (it writes a user namespace's maps itself),
    /// and inside a user namespace (rootless podman's: mknod and some mounts are refused).
    pub unprivileged: bool,
    pub in_userns: bool,
}

impl Global {
    pub fn store(&self) -> Store {
        Store::new(&self.root)
    }
}

/// The status of a container, from the facts rather than from what was last written: its init
/// alive (same pid and start time), exec.fifo present until start, the freezer.
pub fn status(state: &State, dir: &Path) -> Status {
    if !process_alive(state.pid, state.start_time) {
        Status::Stopped
    } else if dir.join(EXEC_FIFO).exists() {
        Status::Created
    } else if cgroups::is_frozen(&state.cgroup_path, state.systemd_cgroup) {
        Status::Paused
    } else {
        Status::Running
    }
}

/// The cgroup a container was made in. A rootless container may have none of its own
/// (`cgroups::Join::Outside`); the commands that need one say so.
pub fn container_cgroup(g: &Global, state: &State, id: &str) -> anyhow::Result<cgroups::Cgroup> {
    let cgroup = cgroups::Cgroup::open(&state.cgroup_path, state.systemd_cgroup, id)?;
    if g.rootless && !cgroup.exists() {
        anyhow::bail!(
            "container {id} has no cgroup: it was created rootless, where its cgroup {:?} could not be made",
            state.cgroup_path
        );
    }
    Ok(cgroup)
}

/// The config as it was at create time; later edits of the bundle have no effect.
pub fn saved_spec(dir: &Path) -> anyhow::Result<Spec> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {path:?}"))?;
    Ok(crate::spec::parse(&path, &bytes)?)
}

/// `--pidfd-socket`: hands a pidfd of `pid` to whoever listens there, with runc's name for the
/// kind of process (`standard` for init, `setns` for an exec'd one).
pub fn send_pidfd(socket: &Path, pid: nix::unistd::Pid, kind: &str) -> anyhow::Result<()> {
    use std::os::fd::AsFd;
    let pidfd = crate::syscall::pidfd_open(pid).context("--pidfd-socket: pidfd_open")?;
    crate::fdpass::send_to(socket, kind.as_bytes(), pidfd.as_fd())
        .with_context(|| format!("--pidfd-socket {socket:?}"))
}

/// Whether the container's config gives it a new pid namespace (not the host's, not joined).
pub fn own_pid_namespace(spec: &Spec) -> bool {
    use oci_spec::runtime::LinuxNamespaceType;
    crate::namespaces::listed(spec)
        .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
}
