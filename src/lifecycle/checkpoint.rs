//! `checkpoint`: CRIU dumps a running or paused container's processes into an image directory.
//! Unless told to leave it running (or only pre-dumping), the container is gone afterwards, as
//! after `delete`. runc's flags and texts; CRIU through its RPC (`crate::criu`).

use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context as _};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::{delete::destroy, saved_spec, status, Global};
use crate::cgroups::{self, Cgroup};
use crate::criu::options::{CriuOptions, Dir};
use crate::criu::rpc::{Features, PageServerInfo, Req, ReqType};
use crate::criu::{self, mounts, Swrk};
use crate::state::{write_atomic, Status};

/// The file in the image directory naming the init's stdio, which a restore reconnects.
pub const DESCRIPTORS: &str = "descriptors.json";

#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub id: String,
    pub criu: CriuOptions,
    /// A previous pre-dump's images, relative to the image directory.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub pre_dump: bool,
    /// ADDRESS:PORT of a CRIU page server to send the memory to.
    pub page_server: Option<String>,
    /// With --lazy-pages: an fd that gets one NUL byte once the page server is ready.
    pub status_fd: Option<i32>,
}

pub fn checkpoint(g: &Global, o: &CheckpointOptions) -> anyhow::Result<()> {
    let (dir, state) = g.store().open(&o.id)?;
    let st = status(&state, &dir.path);
    if matches!(st, Status::Created | Status::Stopped) {
        bail!("Container cannot be checkpointed in {} state", st.as_str());
    }
    let mode = o.criu.validate()?;
    let page_server = o.page_server.as_deref().map(page_server).transpose()?;
    let status_fd = o.status_fd.filter(|fd| *fd >= 0);
    if status_fd.is_some() && !o.criu.lazy_pages {
        crate::logging::warn("--status-fd is used only with --lazy-pages: ignored");
    }
    let status_fd = status_fd
        .filter(|_| o.criu.lazy_pages)
        .map(self::status_fd)
        .transpose()?;
    let (images, work) = o.criu.dirs()?;
    let parent = parent_image(&images.path, o.parent_path.as_deref())?;
    let spec = saved_spec(&dir.path)?;

    let mut opts = o
        .criu
        .base(mode, &images, work.as_ref(), "dump.log", &state.annotations);
    opts.pid = Some(state.pid);
    opts.root = Some(state.rootfs.to_string_lossy().into_owned());
    opts.leave_running = Some(o.leave_running);
    opts.tcp_skip_in_flight = Some(o.tcp_skip_in_flight);
    opts.link_remap = Some(o.link_remap);
    opts.external = external_namespaces(&spec)?;
    opts.freeze_cgroup = freezer(&state.cgroup_path, state.systemd_cgroup)?;
    opts.ps = page_server;
    if let Some(parent) = parent {
        opts.parent_img = Some(parent);
        opts.track_mem = Some(true);
    }
    let kind = if o.pre_dump {
        criu::check_features(
            &g.criu,
            Features {
                mem_track: Some(true),
                ..Default::default()
            },
        )?;
        ReqType::PreDump
    } else {
        opts.ext_mnt = mounts::for_dump(&spec, &state.rootfs, state.pid);
        ReqType::Dump
    };
    if o.criu.lazy_pages {
        criu::check_features(
            &g.criu,
            Features {
                lazy_pages: Some(true),
                ..Default::default()
            },
        )?;
    }
    let mut status_fd = status_fd;
    let req = Req {
        r#type: kind as i32,
        opts: Some(opts),
        ..Default::default()
    };
    // CRIU first: a binary that cannot start leaves the image directory as it was.
    let swrk = Swrk::start(&g.criu, [Stdio::null(), Stdio::null(), Stdio::null()], &[])?;
    if kind == ReqType::Dump {
        write_descriptors(&images, state.pid)?;
    }
    let done = swrk.call(&req, |note| {
        if note.script == "status-ready" {
            if let Some(mut f) = status_fd.take() {
                f.write_all(&[0]).map_err(|e| format!("--status-fd: {e}"))?;
            }
        }
        Ok(())
    });
    if let Err(e) = done {
        criu::quote_log(&CriuOptions::log_path(&images, work.as_ref(), "dump.log"));
        return Err(e.into());
    }
    if o.leave_running || o.pre_dump {
        return Ok(());
    }
    // CRIU ended the processes once they were dumped: what is left is the container's record.
    let cgroup = Cgroup::open(&state.cgroup_path, state.systemd_cgroup, &o.id)?;
    destroy(dir, &state, &cgroup, spec.hooks().as_ref())
}

/// `--page-server ADDRESS:PORT`.
fn page_server(s: &str) -> anyhow::Result<PageServerInfo> {
    let Some((address, port)) = s
        .rsplit_once(':')
        .filter(|(a, p)| !a.is_empty() && !p.is_empty())
    else {
        bail!("Use --page-server ADDRESS:PORT to specify page server");
    };
    let port: i32 = port
        .parse()
        .map_err(|_| anyhow::anyhow!("Invalid port number"))?;
    Ok(PageServerInfo {
        address: Some(address.trim_matches(|c| c == '[' || c == ']').to_string()),
        port: Some(port),
    })
}

/// `--status-fd N`: an fd of ours open for writing.
fn status_fd(fd: i32) -> anyhow::Result<std::fs::File> {
    // SAFETY: fcntl F_GETFL on a number; EBADF when it is not open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_ACCMODE == libc::O_RDONLY {
        bail!(
            "invalid --status-fd argument {fd}: {}",
            if flags < 0 {
                "not an open fd"
            } else {
                "not open for writing"
            }
        );
    }
    // SAFETY: the fd is open and handed to us by the caller for this use alone.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// `--parent-path`, which must name a directory relative to the image directory.
fn parent_image(images: &Path, parent: Option<&Path>) -> anyhow::Result<Option<String>> {
    let Some(parent) = parent.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(None);
    };
    if parent.is_absolute() {
        bail!("--parent-path must be relative");
    }
    let full = images.join(parent);
    match std::fs::metadata(&full) {
        Ok(m) if m.is_dir() => Ok(Some(parent.to_string_lossy().into_owned())),
        Ok(_) => bail!("invalid --parent-path: {full:?} is not a directory"),
        Err(e) => bail!("invalid --parent-path: stat {}: {e}", full.display()),
    }
}

/// Network and pid namespaces the container joined by path stay outside the image: CRIU
/// records them by inode, and a restore joins them again.
pub fn external_namespaces(spec: &Spec) -> anyhow::Result<Vec<String>> {
    let mut v = Vec::new();
    for ns in crate::namespaces::listed(spec) {
        let (short, key) = match ns.typ() {
            LinuxNamespaceType::Network => ("net", "extRootNetNS"),
            LinuxNamespaceType::Pid => ("pid", "extRootPidNS"),
            _ => continue,
        };
        if let Some(path) = ns.path() {
            let ino = std::fs::metadata(path)
                .with_context(|| format!("namespace {path:?}"))?
                .ino();
            v.push(format!("{short}[{ino}]:{key}"));
        }
    }
    Ok(v)
}

/// The container's freezer cgroup directory, through which CRIU freezes its processes.
fn freezer(path: &Path, systemd: bool) -> anyhow::Result<Option<String>> {
    let dir = cgroups::fs_dir(path, systemd)?;
    let rel = dir.strip_prefix("/").unwrap_or(&dir);
    let hierarchies = cgroups::hierarchies()?;
    let v1 = hierarchies
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "freezer"));
    let v2 = hierarchies
        .iter()
        .find(|h| h.controllers.is_empty() && h.mount == Path::new("/sys/fs/cgroup"));
    Ok(v1
        .or(v2)
        .map(|h| h.mount.join(rel).to_string_lossy().into_owned()))
}

/// What the init's fds 0-2 are (`pipe:[N]`, a path), for a restore to reconnect its pipes.
fn write_descriptors(images: &Dir, pid: i32) -> anyhow::Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let path = images.path.join(DESCRIPTORS);
    write_atomic(&path, serde_json::to_string(&fds)?.as_bytes())?;
    Ok(())
}

/// The pipes among the recorded stdio: CRIU's own fd N replaces pipe `key` in the restored tree.
pub fn read_descriptors(images: &Path) -> anyhow::Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let text = std::fs::read(&path).with_context(|| format!("open {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_server_and_parent_path_checks() {
        let ps = page_server("127.0.0.1:27277").unwrap();
        assert_eq!(ps.address.as_deref(), Some("127.0.0.1"));
        assert_eq!(ps.port, Some(27277));
        assert!(page_server("27277")
            .unwrap_err()
            .to_string()
            .contains("ADDRESS:PORT"));
        assert!(page_server("h:x").unwrap_err().to_string().contains("port"));
        let e = parent_image(Path::new("/nonexistent"), Some(Path::new("/abs"))).unwrap_err();
        assert!(e.to_string().contains("--parent-path must be relative"));
        let e = parent_image(Path::new("/nonexistent"), Some(Path::new("p"))).unwrap_err();
        assert!(e.to_string().starts_with("invalid --parent-path"), "{e}");
    }
}
