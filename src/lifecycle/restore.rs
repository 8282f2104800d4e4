//! `restore`: a new container, made from the bundle as `create` makes one, whose processes CRIU
//! brings back from a checkpoint's images instead of a new init. CRIU is placed in the new
//! cgroup before it restores, so the processes land there; its notifications run the
//! prestart/createRuntime hooks, hand a terminal's master to the console socket and record
//! the restored init. Detached, it returns once the container runs; in the foreground it
//! supervises the container as `run` does.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{bail, Context as _};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{sigprocmask, SigmaskHow};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::checkpoint::read_descriptors;
use super::delete::destroy;
use super::run::{become_supervisor, forwarded_signals, supervise};
use super::Global;
use crate::cgroups::{self, Cgroup};
use crate::criu::options::CriuOptions;
use crate::criu::rpc::{CgroupRoot, InheritFd, JoinNamespace, Req, ReqType};
use crate::criu::{self, mounts, Swrk};
use crate::hooks::{self, Kind};
use crate::spec::Bundle;
use crate::state::{read_stat, write_atomic, ContainerDir, State, Status, CONFIG_FILE};
use crate::{logging, tty};

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub criu: CriuOptions,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub no_subreaper: bool,
    /// TYPE:NAME of the LSM profile the restored processes get.
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

/// Undoes a half-restored container: its cgroup, the root bind CRIU was given, its record.
struct Undo<'a> {
    dir: Option<PathBuf>,
    cgroup: Option<&'a Cgroup>,
    criu_root: Option<PathBuf>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some(root) = self.criu_root.take() {
            let _ = umount2(&root, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&root);
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.remove();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn restore(g: &Global, o: &RestoreOptions) -> anyhow::Result<i32> {
    crate::state::validate_id(&o.id)?;
    let mode = o.criu.validate()?;
    let images_path = o.criu.image_path()?;
    let pid_file = o.pid_file.as_deref().map(std::path::absolute).transpose()?;
    let bundle = Bundle::load(&o.bundle)?;
    let spec = &bundle.spec;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if o.detach && terminal && o.console_socket.is_none() {
        bail!("cannot allocate tty if hull will detach without setting console socket");
    }
    if o.console_socket.is_some() && !(o.detach && terminal) {
        bail!("cannot use console socket if hull will not detach or allocate tty");
    }
    let descriptors = read_descriptors(&images_path)?;
    let console = o.console_socket.as_deref().map(tty::connect).transpose()?;
    let cgroup_path = cgroups::path_for(spec, &o.id, g.systemd_cgroup)?;
    let cgroup = Cgroup::open(&cgroup_path, g.systemd_cgroup, &o.id)?;
    let (images, work) = o.criu.dirs()?;
    let annotations = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut opts = o
        .criu
        .base(mode, &images, work.as_ref(), "restore.log", &annotations);
    opts.lsm_profile = o.lsm_profile.clone().filter(|p| !p.is_empty());
    opts.lsm_mount_context = o.lsm_mount_context.clone().filter(|c| !c.is_empty());
    let mut extra = Vec::new();
    namespaces(spec, &mut opts, &mut extra)?;

    let signals = forwarded_signals();
    if !o.detach {
        if o.no_subreaper {
            sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)?;
        } else {
            become_supervisor(&signals)?;
        }
    }
    // Side effects start here.
    let dir = g.store().create(&o.id)?;
    let mut undo = Undo {
        dir: Some(dir.path.clone()),
        cgroup: None,
        criu_root: None,
    };
    let hierarchies = cgroups::hierarchies()?;
    cgroup.check_usable(&hierarchies)?;
    write_atomic(&dir.path.join(CONFIG_FILE), &bundle.raw)?;
    undo.cgroup = Some(&cgroup);
    let join = cgroup.prepare(spec, false, &hierarchies, g.rootless, false)?;

    // CRIU wants the root as a mount point of its own.
    let criu_root = dir.path.join("criu-root");
    std::fs::create_dir(&criu_root).with_context(|| format!("creating {criu_root:?}"))?;
    undo.criu_root = Some(criu_root.clone());
    mount(
        Some(&bundle.rootfs),
        &criu_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("binding the rootfs at {criu_root:?}"))?;
    {
        let _prepared = mounts::prepare_mount_points(spec, &bundle.rootfs, &bundle.dir)?;
    }
    opts.ext_mnt = mounts::for_restore(spec, &bundle.rootfs, &bundle.dir, cgroup.dir());
    opts.root = Some(criu_root.to_string_lossy().into_owned());
    opts.evasive_devices = Some(true);
    opts.rst_sibling = Some(true);
    for (fd, what) in descriptors.iter().enumerate() {
        if what.contains("pipe:") {
            opts.inherit_fd.push(InheritFd {
                key: what.clone(),
                fd: fd as i32,
            });
        }
    }

    // A terminal comes back through `orphan-pts-master`; pipes are reconnected to ours.
    let stdio = if terminal {
        [Stdio::null(), Stdio::null(), Stdio::null()]
    } else {
        [Stdio::inherit(), Stdio::inherit(), Stdio::inherit()]
    };
    let extra_raw: Vec<i32> = extra.iter().map(AsRawFd::as_raw_fd).collect();
    let swrk = Swrk::start(&g.criu, stdio, &extra_raw)?;
    let criu_pid = Pid::from_raw(swrk.pid());
    // A rootless restore without a cgroup of its own stays in its caller's.
    if !matches!(join, cgroups::Join::Outside) {
        cgroup.add(criu_pid)?;
        cgroup.apply_spec(spec)?;
    }
    opts.cg_root = cgroup_roots(criu_pid)?;

    let base_state = State {
        id: o.id.clone(),
        pid: 0,
        start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: String::new(),
        annotations,
        owner: String::new(),
        cgroup_path,
        systemd_cgroup: g.systemd_cgroup,
    };
    let mut restored: Option<State> = None;
    let mut master: Option<OwnedFd> = None;
    let req = Req {
        r#type: ReqType::Restore as i32,
        opts: Some(opts),
        ..Default::default()
    };
    let done = swrk.call(&req, |note| {
        match note.script.as_str() {
            "setup-namespaces" => {
                let mut s = base_state.clone();
                s.pid = note.pid.unwrap_or(0);
                let state = s.hook_state(Status::Creating);
                for kind in [Kind::Prestart, Kind::CreateRuntime] {
                    hooks::run(kind, spec.hooks().as_ref(), &state, &Default::default())
                        .map_err(|e| e.to_string())?;
                }
            }
            "orphan-pts-master" => {
                let fd = note.fd.ok_or("no pty master came with the notification")?;
                match &console {
                    Some(sock) => tty::send_master(sock.as_fd(), "orphan-pts-master", fd.as_fd())
                        .map_err(|e| e.to_string())?,
                    None => master = Some(fd),
                }
            }
            "post-restore" => {
                let s = record(&dir, &base_state, note.pid.unwrap_or(0), spec)
                    .map_err(|e| format!("{e:#}"))?;
                restored = Some(s);
            }
            _ => {}
        }
        Ok(())
    });
    if let Err(e) = done {
        criu::quote_log(&CriuOptions::log_path(
            &images,
            work.as_ref(),
            "restore.log",
        ));
        return Err(e.into());
    }
    let state = restored.context("criu did not report the restored process")?;
    undo.dir = None;
    undo.cgroup = None;
    drop(undo);
    logging::debug(&format!("restore {}: init {} is running", o.id, state.pid));
    if let Some(p) = &pid_file {
        write_atomic(p, state.pid.to_string().as_bytes())
            .with_context(|| format!("writing --pid-file {p:?}"))?;
    }
    if o.detach {
        return Ok(0);
    }
    drop(dir);
    let code = supervise(Pid::from_raw(state.pid), &signals, master)?;
    let (dir, state) = g.store().open(&o.id)?;
    destroy(dir, &state, &cgroup, spec.hooks().as_ref())?;
    Ok(code)
}

/// The restored init: the container's state, written while CRIU still holds the processes
/// (before they resume). CRIU restores into a time namespace of its own; the saved config
/// gains it so that `exec` joins it too.
fn record(dir: &ContainerDir, base: &State, pid: i32, spec: &Spec) -> anyhow::Result<State> {
    let mut s = base.clone();
    s.pid = pid;
    s.start_time = read_stat(pid)
        .map(|(_, start)| start)
        .context("reading the start time of the restored init")?;
    s.created = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let own_time = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let restored_ns = own_time(&format!("/proc/{pid}/ns/time"));
    let has_time = crate::namespaces::listed(spec).any(|n| n.typ() == LinuxNamespaceType::Time);
    if !has_time && restored_ns.is_ok() && restored_ns.ok() != own_time("/proc/self/ns/time").ok() {
        let path = dir.path.join(CONFIG_FILE);
        let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        if let Some(list) = config["linux"]["namespaces"].as_array_mut() {
            list.push(serde_json::json!({"type": "time"}));
            write_atomic(&path, serde_json::to_string(&config)?.as_bytes())?;
        }
    }
    dir.write(&s)?;
    Ok(s)
}

/// Namespaces the container joins by path: network and pid ones go to CRIU as fds it inherits
/// (the names match the checkpoint's `external` entries); the others it joins by path.
fn namespaces(
    spec: &Spec,
    opts: &mut crate::criu::rpc::Opts,
    extra: &mut Vec<OwnedFd>,
) -> anyhow::Result<()> {
    for ns in crate::namespaces::listed(spec) {
        let Some(path) = ns.path() else { continue };
        let name = match ns.typ() {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                let key = if ns.typ() == LinuxNamespaceType::Network {
                    "extRootNetNS"
                } else {
                    "extRootPidNS"
                };
                let f = std::fs::File::open(path)
                    .with_context(|| format!("Requested namespace {path:?} does not exist"))?;
                opts.inherit_fd.push(InheritFd {
                    key: key.into(),
                    fd: 4 + extra.len() as i32,
                });
                extra.push(f.into());
                continue;
            }
            LinuxNamespaceType::Mount => "mnt",
            LinuxNamespaceType::Ipc => "ipc",
            LinuxNamespaceType::Uts => "uts",
            LinuxNamespaceType::User => "user",
            LinuxNamespaceType::Time => "time",
            LinuxNamespaceType::Cgroup => {
                bail!("restoring into a cgroup namespace given by path ({path:?}) is not supported")
            }
        };
        opts.join_ns.push(JoinNamespace {
            ns: name.into(),
            ns_file: path.to_string_lossy().into_owned(),
        });
    }
    Ok(())
}

/// The container's cgroup in every hierarchy, as CRIU (already placed in it) sees it: where
/// the image's cgroups are re-rooted.
fn cgroup_roots(criu: Pid) -> anyhow::Result<Vec<CgroupRoot>> {
    let path = format!("/proc/{criu}/cgroup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let mut roots = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(dir)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        for ctrl in controllers.split(',') {
            roots.push(CgroupRoot {
                ctrl: Some(ctrl.to_string()),
                path: dir.to_string(),
            });
        }
    }
    Ok(roots)
}
