//! Adapter over libcgroups: where a container's cgroup is, joining it, applying resources,
//! freezing, listing pids and removing it, on v1, hybrid and unified hosts.

use std::borrow::Cow;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager, get_cgroup_setup, AnyCgroupManager, CgroupConfig, CgroupManager,
    CgroupSetup, ControllerOpt, FreezerState,
};
use nix::errno::Errno;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use serde_json::{json, Value};

mod exec;
mod systemd;
mod v1_writes;

pub use exec::ExecCgroups;
use systemd::SystemdPath;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path:?}: {message}")]
    Manager { path: PathBuf, message: String },
    #[error(
        "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); \
         run without --systemd-cgroup to use cgroupfs"
    )]
    NoSystemd,
    #[error(
        "--systemd-cgroup: this host's controllers are on cgroup v1 and hull's systemd driver \
         manages only the unified (v2) hierarchy; run without --systemd-cgroup to use cgroupfs"
    )]
    SystemdOnV1,
    #[error("linux.cgroupsPath {path:?}: {reason} (the systemd driver takes slice:prefix:name)")]
    SystemdPath { path: String, reason: &'static str },
    #[error("invalid configuration: {field}: {reason}")]
    Unsupported {
        field: &'static str,
        reason: &'static str,
    },
    #[error("{0}")]
    Unusable(String),
    #[error("--cgroup {arg:?}: {reason}")]
    ExecArg { arg: String, reason: &'static str },
    #[error("--cgroup: {0}")]
    ExecJoin(String),
    #[error("creating the process: {0}")]
    Clone(&'static str),
    #[error("cgroup {path:?}: {what}: {message}")]
    Op {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
}

pub struct Cgroup {
    /// As in the config (`slice:prefix:name` for systemd).
    path: PathBuf,
    systemd: bool,
    /// Relative to each hierarchy's root.
    dir: PathBuf,
    id: String,
    /// Made on first use (limits, stats, pids, freezing, removal): libcgroups' v1 manager reads
    /// mountinfo once per controller, a third of a `run`'s system calls, and commands that only
    /// look at a container's state need none of it.
    manager: std::cell::OnceCell<AnyCgroupManager>,
}

/// `linux.cgroupsPath`, or the default: `/<id>` for cgroupfs, where runc (started from the root
/// cgroup) and crun put it, and `:hull:<id>` for systemd.
/// Relative cgroupfs paths are taken from the root of each hierarchy, as runtime-spec allows;
/// systemd paths must be `slice:prefix:name`.
pub fn path_for(spec: &Spec, id: &str, systemd: bool) -> Result<PathBuf, CgroupError> {
    let given = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .filter(|p| !p.as_os_str().is_empty());
    if systemd {
        let raw = given
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = SystemdPath::parse(&raw, id)?;
        parsed.cgroup_dir()?;
        return Ok(PathBuf::from(if raw.is_empty() {
            format!(":hull:{id}")
        } else {
            raw
        }));
    }
    Ok(match given {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => Path::new("/").join(p),
        None => Path::new("/").join(id),
    })
}

/// The directory of a cgroup relative to each hierarchy's root: the path itself for cgroupfs,
/// the unit's place in the slice tree for systemd.
pub fn fs_dir(path: &Path, systemd: bool) -> Result<PathBuf, CgroupError> {
    if systemd {
        SystemdPath::parse(&path.to_string_lossy(), "")?.cgroup_dir()
    } else {
        Ok(path.to_path_buf())
    }
}

impl Cgroup {
    pub fn open(path: &Path, systemd: bool, id: &str) -> Result<Cgroup, CgroupError> {
        if systemd && !Path::new("/run/systemd/system").exists() {
            return Err(CgroupError::NoSystemd);
        }
        // libcgroups would quietly build its v1 manager here instead.
        if systemd && !unified() {
            return Err(CgroupError::SystemdOnV1);
        }
        let dir = fs_dir(path, systemd)?;
        let cgroup = Cgroup {
            path: path.to_path_buf(),
            systemd,
            dir,
            id: id.to_string(),
            manager: std::cell::OnceCell::new(),
        };
        // systemd's manager checks the unit's path and reaches D-Bus: errors there belong to
        // open, as they did when every manager was made here.
        if systemd {
            cgroup.manager()?;
        }
        Ok(cgroup)
    }

    fn manager(&self) -> Result<&AnyCgroupManager, CgroupError> {
        if let Some(m) = self.manager.get() {
            return Ok(m);
        }
        let m = create_cgroup_manager(CgroupConfig {
            cgroup_path: self.path.clone(),
            systemd_cgroup: self.systemd,
            container_name: self.id.clone(),
        })
        .map_err(|e| CgroupError::Manager {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        Ok(self.manager.get_or_init(|| m))
    }

    fn op<T, E: std::fmt::Display>(
        &self,
        what: &'static str,
        r: Result<T, E>,
    ) -> Result<T, CgroupError> {
        r.map_err(|e| CgroupError::Op {
            path: self.path.clone(),
            what,
            message: e.to_string(),
        })
    }

    /// Creates the cgroup and applies `linux.resources` before the container's init can run
    /// anything, and says how init joins it: by itself on cgroup v1 (see `Join`), else by the
    /// parent. The device rules are written as "deny all", then each allow: init joins only
    /// once they are all there.
    ///
    /// `after_clone`: on v1, only the cgroup2 directory init is cloned into is made now; the
    /// v1 directories and the limits follow in `make_after_clone`, while init sets up its
    /// namespaces and mounts (`Join::BySelf`). The caller passes it only when init does not
    /// fork before it joins.
    ///
    /// `rootless`: a cgroup the caller may not create is not an error unless the spec asks
    /// for limits, which could then not be kept (runc's rule); the container runs outside.
    pub fn prepare(
        &self,
        spec: &Spec,
        user_ns: bool,
        hierarchies: &[Hierarchy],
        rootless: bool,
        after_clone: bool,
    ) -> Result<Join, CgroupError> {
        if self.systemd {
            return Ok(Join::ByParent);
        }
        let unified = unified();
        let by_self = !user_ns && !unified;
        let after_clone = after_clone && by_self && !rootless;
        let (mut tasks, mut into) = (Vec::new(), None);
        for h in hierarchies {
            let dir = h.mount.join(self.rel());
            if by_self && h.is_v2() {
                into = Some(dir.clone());
            } else if by_self {
                tasks.push(dir.join("tasks"));
            }
            if after_clone && !h.is_v2() {
                continue;
            }
            match self.make_in(h, by_self) {
                Err((CREATING, e)) if forgiven(spec, rootless) && denied(&e) => {
                    return self.outside(spec, &dir, e);
                }
                Err(failure) => return Err(make_error(dir, failure)),
                Ok(()) => {}
            }
        }
        if !by_self {
            return Ok(Join::ByParent);
        }
        if !after_clone {
            self.apply_spec(spec)?;
        }
        Ok(Join::BySelf {
            tasks,
            into,
            made_after_clone: after_clone,
        })
    }

    /// The rest of `prepare` for `Join::BySelf { made_after_clone: true, .. }`: the v1
    /// directories and `linux.resources`.
    pub fn make_after_clone(&self, spec: &Spec) -> Result<(), CgroupError> {
        for h in hierarchies()?.iter().filter(|h| !h.is_v2()) {
            self.make_in(h, true)
                .map_err(|failure| make_error(h.mount.join(self.rel()), failure))?;
        }
        self.apply_spec(spec)
    }

    /// What init gets with the word that its cgroup is made (`Join::BySelf` after the clone),
    /// made here while it sets up: its v1 `tasks` files opened for writing and, when `binds`
    /// gives the flags of its cgroupfs mount, that mount ready to attach (`CgroupFs`). A
    /// cgroupfs that cannot be made here is left to init.
    pub fn hand_over(
        &self,
        join: &Join,
        binds: Option<crate::rootfs::options::Attrs>,
    ) -> Result<HandOver, CgroupError> {
        let Join::BySelf { tasks, .. } = join else {
            return Ok(HandOver::default());
        };
        let tasks = tasks
            .iter()
            .map(|t| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(t)
                    .map(OwnedFd::from)
                    .map_err(|e| make_error(t.clone(), ("opening", e)))
            })
            .collect::<Result<_, _>>()?;
        let cgroupfs = binds.and_then(|attrs| self.cgroupfs(attrs).ok());
        Ok(HandOver { tasks, cgroupfs })
    }

    /// init's v1 cgroupfs as runc lays it out: a tmpfs (nosuid, nodev, noexec, mode 755)
    /// with a directory per hierarchy, and a bind of the cgroup's directory in each with the
    /// mount's flags, a slave of the host's hierarchy as init's own bind of its rslave view
    /// would be. The tmpfs is made first, so that it is listed before the binds in
    /// /proc/mounts, as when init mounts them one after the other.
    fn cgroupfs(&self, attrs: crate::rootfs::options::Attrs) -> Result<CgroupFs, Errno> {
        use crate::rootfs::options::{ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID};
        let tmpfs = crate::syscall::new_mount(
            "tmpfs",
            &[("source", "tmpfs"), ("mode", "755")],
            ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
        )?;
        let mut binds = Vec::new();
        // Read before the clone: a failure there would have stopped create.
        for h in hierarchies()
            .unwrap_or_default()
            .iter()
            .filter(|h| !h.is_v2())
        {
            let Some(name) = h.mount.file_name() else {
                continue;
            };
            nix::sys::stat::mkdirat(
                Some(tmpfs.as_raw_fd()),
                name,
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            )?;
            let bind = crate::syscall::open_tree_clone(&h.mount.join(self.rel()), false)?;
            crate::syscall::mount_setattr_slave(bind.as_raw_fd(), attrs.set, attrs.clear)?;
            binds.push((name.to_string_lossy().into_owned(), bind));
        }
        Ok(CgroupFs { tmpfs, binds })
    }

    /// Makes the cgroup's directory in hierarchy `h`, with the parent's cpuset copied down
    /// when init will join by itself (the kernel refuses a task in an empty cpuset).
    fn make_in(&self, h: &Hierarchy, by_self: bool) -> Result<(), (&'static str, std::io::Error)> {
        create_dirs(&h.mount.join(self.rel())).map_err(|e| (CREATING, e))?;
        if by_self && h.controllers.iter().any(|c| c == "cpuset") {
            inherit_cpuset(&h.mount, self.rel())
                .map_err(|e| ("copying cpuset.cpus and cpuset.mems", e))?;
        }
        Ok(())
    }

    /// A rootless container that could not create its cgroup at `dir`: it runs outside
    /// any cgroup of its own, unless the spec asks for a limit (runc's words for that).
    fn outside(&self, spec: &Spec, dir: &Path, e: std::io::Error) -> Result<Join, CgroupError> {
        let _ = self.remove();
        let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        if let Some(what) = resources.and_then(limit_asked) {
            return Err(CgroupError::Unusable(format!(
                "cannot set {what} limit: container could not join or create cgroup ({}: {e})",
                dir.display()
            )));
        }
        Ok(Join::Outside)
    }

    /// Refuses, as runc does, a cgroup that a container cannot start in: one with processes
    /// already (another container's), or a frozen one, where init would block for good.
    /// `hierarchies` is create's one read of mountinfo (libcgroups' manager would read it once
    /// per controller).
    pub fn check_usable(&self, hierarchies: &[Hierarchy]) -> Result<(), CgroupError> {
        let procs: Vec<String> = hierarchies
            .iter()
            .filter_map(|h| {
                std::fs::read_to_string(h.mount.join(self.rel()).join("cgroup.procs")).ok()
            })
            .collect();
        // A cgroup that no hierarchy has yet, the usual case, can be neither busy nor frozen.
        if procs.is_empty() {
            return Ok(());
        }
        let busy: std::collections::HashSet<&str> = procs.iter().flat_map(|p| p.lines()).collect();
        let busy = busy.len();
        if busy > 0 {
            return Err(CgroupError::Unusable(format!(
                "container's cgroup is not empty: {busy} process(es) found"
            )));
        }
        if is_frozen(&self.path, self.systemd) {
            return Err(CgroupError::Unusable(
                "container's cgroup unexpectedly frozen".into(),
            ));
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup, creating it, in the hierarchies libcgroups manages and in
    /// the others that `prepare` made it in.
    pub fn add(&self, pid: Pid) -> Result<(), CgroupError> {
        self.op(
            "adding the container's process",
            self.manager()?.add_task(pid),
        )?;
        let procs: Vec<PathBuf> = unmanaged_hierarchies()
            .iter()
            .map(|h| h.mount.join(self.rel()))
            .filter(|d| d.is_dir())
            .map(|d| d.join("cgroup.procs"))
            .collect();
        join_procs(&procs, pid)
    }

    /// Whether the cgroup is there in some hierarchy.
    pub fn exists(&self) -> bool {
        hierarchies().is_ok_and(|hs| hs.iter().any(|h| h.mount.join(self.rel()).is_dir()))
    }

    fn rel(&self) -> &Path {
        self.dir.strip_prefix("/").unwrap_or(&self.dir)
    }

    /// Applies `linux.resources` of a spec.
    pub fn apply_spec(&self, spec: &Spec) -> Result<(), CgroupError> {
        match spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            Some(r) => self.apply(r),
            None => Ok(()),
        }
    }

    /// Applies resource limits; the kernel's refusal names the cgroup file and value. On v1
    /// hull writes the common ones itself (`v1_writes`), and libcgroups only what is left.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let unified = unified();
        let mut resources = screen(resources, unified, blkio_has_weight)?;
        if !unified && !self.systemd {
            match v1_writes::write(&hierarchies()?, self.rel(), resources)? {
                Some(rest) => resources = rest,
                None => return Ok(()),
            }
        }
        let resources = &resources;
        let opt = ControllerOpt {
            resources,
            disable_oom_killer: resources
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        };
        self.op("applying linux.resources", self.manager()?.apply(&opt))
    }

    /// Statistics in runc's `events` shape (types.Stats).
    pub fn stats(&self) -> Result<Value, CgroupError> {
        let s = self.op("reading statistics", self.manager()?.stats())?;
        let mem = |m: &libcgroups::stats::MemoryData| json!({"usage": m.usage, "max": m.max_usage, "failcnt": m.fail_count, "limit": m.limit});
        let mut blkio = serde_json::Map::new();
        for (key, v) in [
            ("ioServiceBytesRecursive", &s.blkio.service_bytes),
            ("ioServicedRecursive", &s.blkio.serviced),
            ("ioQueueRecursive", &s.blkio.queued),
            ("ioServiceTimeRecursive", &s.blkio.service_time),
            ("ioWaitTimeRecursive", &s.blkio.wait_time),
            ("ioMergedRecursive", &s.blkio.merged),
            ("ioTimeRecursive", &s.blkio.time),
            ("sectorsRecursive", &s.blkio.sectors),
        ] {
            // runc omits empty lists.
            if !v.is_empty() {
                let entries: Vec<Value> = v
                    .iter()
                    .map(|d| json!({"major": d.major, "minor": d.minor, "op": d.op_type.clone().unwrap_or_default(), "value": d.value}))
                    .collect();
                blkio.insert(key.into(), Value::Array(entries));
            }
        }
        let mut memory = json!({
            "usage": mem(&s.memory.memory),
            "swap": mem(&s.memory.memswap),
            "kernel": mem(&s.memory.kernel),
            "kernelTCP": mem(&s.memory.kernel_tcp),
            "raw": s.memory.stats
        });
        // runc omits zero counters of this kind.
        if s.memory.cache > 0 {
            memory["cache"] = json!(s.memory.cache);
        }
        let mut pids = json!({"current": s.pids.current});
        if s.pids.limit > 0 {
            pids["limit"] = json!(s.pids.limit);
        }
        let hugetlb: serde_json::Map<String, Value> = s
            .hugetlb
            .iter()
            .map(|(size, h)| {
                (
                    size.clone(),
                    json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
                )
            })
            .collect();
        Ok(json!({
            "cpu": {
                "usage": {
                    "total": s.cpu.usage.usage_total,
                    "percpu": s.cpu.usage.per_core_usage_total,
                    "percpu_kernel": s.cpu.usage.per_core_usage_kernel,
                    "percpu_user": s.cpu.usage.per_core_usage_user,
                    "kernel": s.cpu.usage.usage_kernel,
                    "user": s.cpu.usage.usage_user
                },
                "throttling": {
                    "periods": s.cpu.throttling.periods,
                    "throttledPeriods": s.cpu.throttling.throttled_periods,
                    "throttledTime": s.cpu.throttling.throttled_time
                }
            },
            "memory": memory,
            "cpuset": cpuset_stats(&self.dir),
            "pids": pids,
            "blkio": blkio,
            "hugetlb": hugetlb,
            "intel_rdt": {},
            "network_interfaces": null
        }))
    }

    pub fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        self.op("listing processes", self.manager()?.get_all_pids())
    }

    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let state = if frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        };
        self.op("changing the freezer state", self.manager()?.freeze(state))
    }

    /// Relative to each hierarchy's root.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the cgroup, killing what is left in it.
    ///
    /// On cgroupfs hull removes the directories itself, in every hierarchy from one read of
    /// mountinfo: libcgroups' v1 manager would first read mountinfo once per controller, a
    /// third of a `delete`'s system calls, to do the same kill and rmdir.
    pub fn remove(&self) -> Result<(), CgroupError> {
        if self.systemd {
            return self.op("removing", self.manager()?.remove());
        }
        for h in hierarchies()? {
            let dir = h.mount.join(self.rel());
            remove_killing(&dir).map_err(|e| CgroupError::Op {
                path: dir,
                what: "removing",
                message: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// What libcgroups would drop without a word on this layout, or fail on with only a path:
/// refused with the field and the reason, or (kernel memory, which kernels since 5.4 accept and
/// do not enforce) warned about and left out, as runc does. `blkio_weight` probes the kernel,
/// and is asked only when a weight is.
fn screen(
    resources: &LinuxResources,
    unified: bool,
    blkio_weight: impl Fn() -> bool,
) -> Result<Cow<'_, LinuxResources>, CgroupError> {
    if !unified && resources.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.unified",
            reason: "needs cgroup v2; this host's controllers are on cgroup v1",
        });
    }
    if let (false, Some(io)) = (unified, resources.block_io()) {
        // libcgroups' v1 driver writes only the weight; these would vanish without a word.
        if io.leaf_weight().is_some() {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.blockIO.leafWeight",
                reason: "not supported on cgroup v1 (no current kernel has a leaf weight)",
            });
        }
        if io.weight_device().as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.blockIO.weightDevice",
                reason: "not supported by hull on cgroup v1; use blockIO.weight",
            });
        }
        if io.weight().is_some_and(|w| w != 0) && !blkio_weight() {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.blockIO.weight",
                reason: "this kernel's blkio controller has no weight file (it needs the BFQ \
                         scheduler)",
            });
        }
    }
    let mut out = Cow::Borrowed(resources);
    if let Some(memory) = resources
        .memory()
        .filter(|m| m.kernel().is_some() || m.kernel_tcp().is_some())
    {
        crate::logging::warn(
            "linux.resources.memory.kernel and kernelTCP are ignored: kernel memory limits are \
             deprecated and not enforced by current kernels",
        );
        let mut m = memory;
        m.set_kernel(None);
        m.set_kernel_tcp(None);
        out.to_mut().set_memory(Some(m));
    }
    if let Some(rules) = resources.devices() {
        let kept = effective_device_rules(rules);
        if kept.len() != rules.len() {
            out.to_mut().set_devices(Some(kept));
        }
    }
    // A limit of 0 would leave no room even for init; runc (and systemd's TasksMax) make it 1.
    if let Some(mut pids) = resources.pids().filter(|p| p.limit() == 0) {
        pids.set_limit(1);
        out.to_mut().set_pids(Some(pids));
    }
    Ok(out)
}

/// The device rules that change something, in order. A rule for all devices sets the default
/// and clears the exceptions; a rule that agrees with the default only removes a matching
/// exception, and is dropped when there is none (the kernel refuses some of them, such as a
/// deny with an access letter it does not know, and each write is a moment when the rules
/// are in between, which a running container feels).
fn effective_device_rules(
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    use oci_spec::runtime::LinuxDeviceType;
    let mut default_allow = true;
    let mut exceptions: Vec<(Option<LinuxDeviceType>, Option<i64>, Option<i64>)> = Vec::new();
    let mut kept = Vec::new();
    for r in rules {
        let all = matches!(r.typ(), None | Some(LinuxDeviceType::A))
            && r.major().is_none()
            && r.minor().is_none();
        if all {
            default_allow = r.allow();
            exceptions.clear();
            kept.push(r.clone());
            continue;
        }
        let key = (r.typ(), r.major(), r.minor());
        if r.allow() == default_allow {
            // Only a matching exception (or a wildcard one that may cover it) makes it count.
            let matches = |e: &(Option<LinuxDeviceType>, Option<i64>, Option<i64>)| {
                (e.0 == key.0 || e.0.is_none() || key.0.is_none())
                    && (e.1 == key.1 || e.1.is_none() || key.1.is_none())
                    && (e.2 == key.2 || e.2.is_none() || key.2.is_none())
            };
            if exceptions.iter().any(matches) {
                exceptions.retain(|e| !matches(e));
                kept.push(r.clone());
            }
        } else {
            exceptions.push(key);
            kept.push(r.clone());
        }
    }
    kept
}

/// Whether the v1 blkio controller can take a proportional weight: CFQ's `blkio.weight`
/// (kernels before 5.0) or BFQ's `blkio.bfq.weight`, which exists only while the BFQ scheduler
/// is registered (then every block device offers `bfq` in its scheduler list). BFQ's file is
/// not on the root cgroup, so the root alone cannot tell.
fn blkio_has_weight() -> bool {
    let on_root = hierarchies().unwrap_or_default().iter().any(|h| {
        h.controllers.iter().any(|c| c == "blkio")
            && ["blkio.weight", "blkio.bfq.weight"]
                .iter()
                .any(|f| h.mount.join(f).exists())
    });
    on_root
        || std::fs::read_dir("/sys/block").is_ok_and(|d| {
            d.flatten().any(|e| {
                std::fs::read_to_string(e.path().join("queue/scheduler")).is_ok_and(|s| {
                    s.split_whitespace()
                        .any(|w| w.trim_matches(['[', ']']) == "bfq")
                })
            })
        })
}

/// The v1 controllers libcgroups manages.
const V1_CONTROLLERS: [&str; 12] = [
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
];

/// What a failed mkdir of the cgroup was doing (the one failure rootless mode forgives).
const CREATING: &str = "creating the cgroup";

/// The error of `Cgroup::make_in` at `dir`.
fn make_error(dir: PathBuf, (what, e): (&'static str, std::io::Error)) -> CgroupError {
    CgroupError::Op {
        path: dir,
        what,
        message: e.to_string(),
    }
}

/// See `Cgroup::hand_over`.
#[derive(Default)]
pub struct HandOver {
    pub tasks: Vec<OwnedFd>,
    pub cgroupfs: Option<CgroupFs>,
}

/// A v1 cgroupfs made for init, not attached yet: the tmpfs, with a directory per hierarchy,
/// and the bind for each, by directory name.
pub struct CgroupFs {
    pub tmpfs: OwnedFd,
    pub binds: Vec<(String, OwnedFd)>,
}

/// How the container's init gets into its cgroup.
pub enum Join {
    /// The parent moves the child with the libcgroups manager (user namespaces, v2, systemd).
    ByParent,
    /// The process is cloned into the cgroup2 directory `into` and writes "0" to the v1 `tasks`
    /// files itself, first thing. A write to cgroup.procs takes the kernel's global threadgroup
    /// lock for writing and waits for an RCU grace period (5-25 ms per process on this
    /// machine); clone3's CLONE_INTO_CGROUP takes it only for reading, and v1 moves a thread that
    /// moves itself without it. Before Linux 5.7 the process writes `into`'s cgroup.procs too.
    ///
    /// `made_after_clone`: the parent makes the v1 directories and writes the limits after
    /// the clone, while init sets up its namespaces and mounts on the other CPU; init joins
    /// once the parent says they are ready, before it mounts cgroupfs, asks the parent for a
    /// mount source, or anything of the container runs.
    BySelf {
        tasks: Vec<PathBuf>,
        into: Option<PathBuf>,
        made_after_clone: bool,
    },
    /// Rootless without a cgroup it may write: the process stays in its caller's cgroup, as
    /// runc's rootless cgroup manager leaves it (only when no limit is asked for).
    Outside,
}

/// Whether a rootless caller's cgroup refusal is forgiven: only at the default path, as runc
/// has it; a caller that named a cgroup will look for the container there.
fn forgiven(spec: &Spec, rootless: bool) -> bool {
    rootless
        && spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .is_none_or(|p| p.as_os_str().is_empty())
}

/// A refusal that rootless mode forgives: the caller may not write there.
pub fn denied(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    )
}

/// The first kind of limit `resources` asks for: a value set, not an empty section (docker
/// sends `memory: {}`; device rules are not limits, a rootless container needs none).
fn limit_asked(r: &LinuxResources) -> Option<&'static str> {
    let memory = r.memory().as_ref().is_some_and(|m| {
        m.limit().is_some_and(|v| v != 0)
            || m.reservation().is_some_and(|v| v != 0)
            || m.swap().is_some_and(|v| v != 0)
            || m.kernel().is_some_and(|v| v != 0)
            || m.swappiness().is_some()
    });
    let cpu = r.cpu().as_ref().is_some_and(|c| {
        c.shares().is_some_and(|v| v != 0)
            || c.quota().is_some_and(|v| v != 0)
            || c.period().is_some_and(|v| v != 0)
            || c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0)
            || c.cpus().as_ref().is_some_and(|v| !v.is_empty())
            || c.mems().as_ref().is_some_and(|v| !v.is_empty())
            || c.idle().is_some_and(|v| v != 0)
            || c.burst().is_some_and(|v| v != 0)
    });
    let pids = r.pids().as_ref().is_some_and(|p| p.limit() > 0);
    let blkio = r.block_io().as_ref().is_some_and(|b| {
        b.weight().is_some_and(|v| v != 0)
            || b.leaf_weight().is_some_and(|v| v != 0)
            || [
                b.weight_device().as_ref().map(Vec::len),
                b.throttle_read_bps_device().as_ref().map(Vec::len),
                b.throttle_write_bps_device().as_ref().map(Vec::len),
                b.throttle_read_iops_device().as_ref().map(Vec::len),
                b.throttle_write_iops_device().as_ref().map(Vec::len),
            ]
            .iter()
            .any(|n| n.unwrap_or(0) > 0)
    });
    if memory {
        Some("memory")
    } else if cpu {
        Some("cpu")
    } else if pids {
        Some("pids")
    } else if blkio {
        Some("blkio")
    } else if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        Some("hugetlb")
    } else if r.network().as_ref().is_some_and(|n| {
        n.class_id().is_some_and(|c| c != 0)
            || n.priorities().as_ref().is_some_and(|p| !p.is_empty())
    }) {
        Some("network")
    } else if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        Some("unified")
    } else if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        Some("rdma")
    } else {
        None
    }
}

/// Joins the cgroup as `Join::BySelf` says, in a process `fork` made; init is single-threaded,
/// so its only thread is the whole process. `opened` are the `tasks` files as hull's side
/// opened them (`HandOver`), in order; the rest are opened here.
pub fn join_self(join: &Join, born_in: bool, opened: Vec<OwnedFd>) -> std::io::Result<()> {
    let Join::BySelf { tasks, into, .. } = join else {
        return Ok(());
    };
    let procs = into
        .as_ref()
        .filter(|_| !born_in)
        .map(|d| d.join("cgroup.procs"));
    let mut opened = opened.into_iter();
    for t in tasks.iter().chain(&procs) {
        match opened.next() {
            Some(fd) => std::io::Write::write_all(&mut std::fs::File::from(fd), b"0"),
            None => std::fs::write(t, "0"),
        }
        .map_err(|e| std::io::Error::new(e.kind(), format!("{t:?}: {e}")))?;
    }
    Ok(())
}

/// What `fork` returned: the child's pid in the parent; in the child, whether it was born in
/// `Join::BySelf`'s cgroup2 directory.
pub enum Forked {
    Parent(Pid),
    Child { born_in: bool },
}

/// Forks with the namespace `flags`, the child born in `join`'s cgroup2 directory when it
/// names one (see `Join::BySelf`). Kernels before 5.7 refuse the flag (EINVAL, E2BIG): the
/// child then joins by a write of its own.
pub fn fork(flags: u64, join: &Join) -> Result<Forked, CgroupError> {
    let forked = |pid: Option<Pid>, born_in| pid.map_or(Forked::Child { born_in }, Forked::Parent);
    let plain = || {
        crate::syscall::clone_fork(flags, None)
            .map(|pid| forked(pid, false))
            .map_err(|e| CgroupError::Clone(e.desc()))
    };
    let Join::BySelf {
        into: Some(dir), ..
    } = join
    else {
        return plain();
    };
    let op = |what, e| CgroupError::Op {
        path: dir.clone(),
        what,
        message: crate::syscall::errno_text(e),
    };
    let fd = nix::fcntl::open(
        dir.as_path(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| op("opening the cgroup", e))?;
    // SAFETY: open returned a new fd that nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    match crate::syscall::clone_fork(flags, Some(std::os::fd::AsFd::as_fd(&fd))) {
        Ok(pid) => Ok(forked(pid, true)),
        Err(nix::Error::EINVAL | nix::Error::E2BIG) => plain(),
        Err(e) => Err(op("starting the process in it", e)),
    }
}

/// `create_dir_all` that survives another container's `remove` taking the shared default
/// parent away between our mkdirs: once our own directory exists the parent is not empty, so
/// a few tries always win.
fn create_dirs(dir: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::create_dir_all(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 8 => tries += 1,
            done => return done,
        }
    }
}

/// Removes a cgroup directory, first killing its processes if it has some (all at once
/// through cgroup.kill where v2 has it). rmdir fails while the killed ones are still exiting:
/// it is tried again, as libcgroups tries, for about two thirds of a second in all.
fn remove_killing(dir: &Path) -> std::io::Result<()> {
    // Usually the container has exited and one rmdir is all it takes.
    match std::fs::remove_dir(dir) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        done => return done,
    }
    let kill = dir.join("cgroup.kill");
    if kill.exists() {
        std::fs::write(&kill, "1")?;
    } else {
        match std::fs::read_to_string(dir.join("cgroup.procs")) {
            Ok(procs) => {
                for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    let mut delay = std::time::Duration::from_millis(10);
    for _ in 0..6 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() != Some(libc::EBUSY) => return Err(e),
            Err(_) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
        }
    }
    std::fs::remove_dir(dir)
}

/// Writes `pid` to these cgroup.procs files.
pub fn join_procs(procs: &[PathBuf], pid: Pid) -> Result<(), CgroupError> {
    for p in procs {
        std::fs::write(p, pid.to_string()).map_err(|e| CgroupError::Op {
            path: p.clone(),
            what: "adding the process",
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// A new v1 cpuset takes no task until it has cpus and mems: each level from the hierarchy's
/// root down to `rel` gets its parent's where it has none.
fn inherit_cpuset(root: &Path, rel: &Path) -> std::io::Result<()> {
    let mut parent = root.to_path_buf();
    for part in rel.components() {
        let dir = parent.join(part);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if std::fs::read_to_string(dir.join(file))?.trim().is_empty() {
                std::fs::write(dir.join(file), std::fs::read(parent.join(file))?)?;
            }
        }
        parent = dir;
    }
    Ok(())
}

/// Parses a cpuset list (`0-2,5`) into its members.
fn cpu_list(s: &str) -> Vec<u64> {
    s.trim()
        .split(',')
        .filter(|p| !p.is_empty())
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
                (Ok(a), Ok(b)) if a <= b => (a..=b).collect(),
                _ => Vec::new(),
            },
            None => part.parse().into_iter().collect(),
        })
        .collect()
}

/// runc's cpuset statistics, read from the cpuset files (libcgroups does not report them).
fn cpuset_stats(path: &Path) -> Value {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let unified = unified();
    let dir = if unified {
        Path::new("/sys/fs/cgroup").join(rel)
    } else {
        Path::new("/sys/fs/cgroup/cpuset").join(rel)
    };
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let num = |f: &str| {
        read(&format!("cpuset.{f}"))
            .trim()
            .parse::<i64>()
            .unwrap_or(0)
    };
    if unified {
        return json!({"cpus": cpu_list(&read("cpuset.cpus.effective")),
                      "mems": cpu_list(&read("cpuset.mems.effective"))});
    }
    json!({
        "cpus": cpu_list(&read("cpuset.cpus")),
        "cpu_exclusive": num("cpu_exclusive"),
        "mems": cpu_list(&read("cpuset.mems")),
        "mem_hardwall": num("mem_hardwall"),
        "mem_exclusive": num("mem_exclusive"),
        "memory_migrate": num("memory_migrate"),
        "memory_spread_page": num("memory_spread_page"),
        "memory_spread_slab": num("memory_spread_slab"),
        "memory_pressure": num("memory_pressure"),
        "sched_load_balance": num("sched_load_balance"),
        "sched_relax_domain_level": num("sched_relax_domain_level")
    })
}

/// Whether the container's cgroup is frozen, read straight from the freezer files.
pub fn is_frozen(path: &Path, systemd: bool) -> bool {
    let Ok(dir) = fs_dir(path, systemd) else {
        return false;
    };
    let rel = dir.strip_prefix("/").unwrap_or(&dir);
    if unified() {
        std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(rel).join("cgroup.freeze"))
            .is_ok_and(|s| s.trim() == "1")
    } else {
        std::fs::read_to_string(
            Path::new("/sys/fs/cgroup/freezer")
                .join(rel)
                .join("freezer.state"),
        )
        .is_ok_and(|s| s.trim() != "THAWED")
    }
}

/// Notices out-of-memory kills in a container's cgroup: the fd becomes readable on an event
/// (v1: an eventfd registered on memory.oom_control; v2: inotify on memory.events, whose
/// oom_kill count is compared to tell an OOM from other changes).
pub struct OomWatch {
    pub fd: std::os::fd::OwnedFd,
    v2_events: Option<(PathBuf, u64)>,
}

fn v2_oom_kills(events: &Path) -> u64 {
    std::fs::read_to_string(events)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

impl OomWatch {
    pub fn new(path: &Path) -> Result<OomWatch, CgroupError> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        use std::os::fd::AsRawFd;
        let rel = path.strip_prefix("/").unwrap_or(path);
        let err = |what: &'static str| {
            let path = path.to_path_buf();
            move |e: std::io::Error| CgroupError::Op {
                path,
                what,
                message: e.to_string(),
            }
        };
        if unified() {
            let events = Path::new("/sys/fs/cgroup").join(rel).join("memory.events");
            let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                .map_err(|e| err("watching memory.events")(e.into()))?;
            inotify
                .add_watch(&events, AddWatchFlags::IN_MODIFY)
                .map_err(|e| err("watching memory.events")(e.into()))?;
            let kills = v2_oom_kills(&events);
            // A duplicate keeps the inotify instance (and its watch) alive.
            let fd = std::os::fd::AsFd::as_fd(&inotify)
                .try_clone_to_owned()
                .map_err(err("watching memory.events"))?;
            return Ok(OomWatch {
                fd,
                v2_events: Some((events, kills)),
            });
        }
        let dir = Path::new("/sys/fs/cgroup/memory").join(rel);
        let control = std::fs::File::open(dir.join("memory.oom_control"))
            .map_err(err("opening memory.oom_control"))?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| err("creating an eventfd")(e.into()))?;
        std::fs::write(
            dir.join("cgroup.event_control"),
            format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
        )
        .map_err(err("registering for OOM events"))?;
        // The registration lives as long as the eventfd; the control file may close.
        Ok(OomWatch {
            fd: efd.into(),
            v2_events: None,
        })
    }

    /// After the fd was readable: drains it and says whether an OOM kill happened.
    pub fn took_oom(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let _ = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.fd), &mut buf);
        match &mut self.v2_events {
            None => true,
            Some((events, seen)) => {
                let now = v2_oom_kills(events);
                let oom = now > *seen;
                *seen = now;
                oom
            }
        }
    }
}

/// One mounted cgroup hierarchy: its mount point and its controllers (`name=x` for a named v1
/// hierarchy; none for cgroup2).
#[derive(Clone)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub controllers: Vec<String>,
}

impl Hierarchy {
    /// cgroup2 has no controllers in its mount options; a v1 hierarchy always names some.
    fn is_v2(&self) -> bool {
        self.controllers.is_empty()
    }
}

/// The hierarchies a container is placed in that libcgroups does not manage: named v1
/// hierarchies (`name=systemd`) and, on a hybrid host, the cgroup2 one. runc places the
/// container there too, and callers see it in /proc/<pid>/cgroup.
fn unmanaged_hierarchies() -> Vec<Hierarchy> {
    if unified() {
        return Vec::new();
    }
    hierarchies()
        .unwrap_or_default()
        .into_iter()
        .filter(|h| {
            h.is_v2()
                || !h
                    .controllers
                    .iter()
                    .all(|c| V1_CONTROLLERS.contains(&c.as_str()))
        })
        .collect()
}

/// Whether the host's cgroups are unified (v2 only), asked of libcgroups once per process: it
/// stats and statfs's two mount points each time, and `create` asks four times.
pub fn unified() -> bool {
    static UNIFIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNIFIED.get_or_init(|| matches!(get_cgroup_setup(), Ok(CgroupSetup::Unified)))
}

/// Every cgroup hierarchy mounted here, from one read of mountinfo per process (a hierarchy
/// mounted twice counts once): a command asks several times, and no hull command mounts or
/// unmounts a hierarchy of the host.
pub fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    static FOUND: std::sync::OnceLock<Vec<Hierarchy>> = std::sync::OnceLock::new();
    if let Some(found) = FOUND.get() {
        return Ok(found.clone());
    }
    let found = read_hierarchies()?;
    Ok(FOUND.get_or_init(|| found).clone())
}

/// `cgroup_mounts` of the namespace hull started in, read once per process: `create` reads it
/// before the clone, and the container's init, whose new mount namespace is a copy of that
/// one, mounts cgroupfs from the same list without reading its mountinfo again.
pub fn runtime_cgroup_mounts() -> Result<&'static [procfs::process::MountInfo], std::io::Error> {
    static FOUND: std::sync::OnceLock<Vec<procfs::process::MountInfo>> = std::sync::OnceLock::new();
    if let Some(found) = FOUND.get() {
        return Ok(found);
    }
    let found = cgroup_mounts()?;
    Ok(FOUND.get_or_init(|| found))
}

/// The cgroup and cgroup2 mounts of this process's mount namespace, in mountinfo's order. Only
/// their lines are parsed: procfs' parser costs more instructions than the rest of `create`'s
/// cgroup set-up, and most of a host's mounts are something else.
pub fn cgroup_mounts() -> Result<Vec<procfs::process::MountInfo>, std::io::Error> {
    let mountinfo = crate::procfile::read("/proc/self/mountinfo")?;
    mountinfo
        .lines()
        .filter(|l| {
            l.split_once(" - ")
                .is_some_and(|(_, fs)| fs.starts_with("cgroup ") || fs.starts_with("cgroup2 "))
        })
        .map(|l| procfs::process::MountInfo::from_line(l).map_err(std::io::Error::other))
        .collect()
}

fn read_hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    let fail = |e: &dyn std::fmt::Display| CgroupError::Op {
        path: PathBuf::from("/proc/self/mountinfo"),
        what: "finding cgroup hierarchies",
        message: e.to_string(),
    };
    let known: Vec<String> = crate::procfile::read("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for m in runtime_cgroup_mounts().map_err(|e| fail(&e))? {
        if !seen.insert(m.majmin.clone()) {
            continue;
        }
        // procfs splits `name=systemd` into a key and a value.
        let mut controllers: Vec<String> = m
            .super_options
            .iter()
            .filter_map(|(k, v)| match (k.as_str(), v) {
                ("name", Some(name)) => Some(format!("name={name}")),
                _ => known.contains(k).then(|| k.clone()),
            })
            .collect();
        if m.fs_type == "cgroup" && controllers.is_empty() {
            continue;
        }
        controllers.sort();
        out.push(Hierarchy {
            mount: m.mount_point.clone(),
            controllers,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0-2,5\n"), [0, 1, 2, 5]);
        assert_eq!(cpu_list(""), Vec::<u64>::new());
    }

    #[test]
    fn screen_refuses_unified_on_v1_and_drops_kernel_memory() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"unified":{"memory.high":"1"},"memory":{"limit":100,"kernel":5,"kernelTCP":6}}"#,
        )
        .unwrap();
        let e = screen(&r, false, || true).unwrap_err().to_string();
        assert!(e.contains("linux.resources.unified"), "{e}");
        let out = screen(&r, true, || true).unwrap();
        let m = out.memory().as_ref().unwrap();
        assert_eq!(
            (m.limit(), m.kernel(), m.kernel_tcp()),
            (Some(100), None, None)
        );
        assert_eq!(out.unified(), r.unified());
    }

    #[test]
    fn device_rules_that_change_nothing_are_dropped() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"devices":[{"allow":false,"access":"rwm"},
                {"allow":false,"type":"c","major":1,"minor":11,"access":"rwa"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]}"#,
        )
        .unwrap();
        let out = screen(&r, false, || true).unwrap();
        let kept: Vec<(bool, Option<i64>)> = out
            .devices()
            .as_ref()
            .unwrap()
            .iter()
            .map(|d| (d.allow(), d.minor()))
            .collect();
        assert_eq!(kept, [(false, None), (true, Some(3)), (false, Some(3))]);
    }

    #[test]
    fn a_pids_limit_of_0_is_1() {
        let r: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":0}}"#).unwrap();
        let out = screen(&r, false, || true).unwrap();
        assert_eq!(out.pids().as_ref().unwrap().limit(), 1);
        let r: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":-1}}"#).unwrap();
        assert_eq!(
            screen(&r, false, || true)
                .unwrap()
                .pids()
                .as_ref()
                .unwrap()
                .limit(),
            -1
        );
    }

    #[test]
    fn screen_names_a_blkio_weight_the_kernel_cannot_take() {
        let r: LinuxResources = serde_json::from_str(r#"{"blockIO":{"weight":200}}"#).unwrap();
        let e = screen(&r, false, || false).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid configuration: linux.resources.blockIO.weight: this kernel's blkio \
             controller has no weight file (it needs the BFQ scheduler)"
        );
        assert!(screen(&r, false, || true).is_ok());
        let r: LinuxResources = serde_json::from_str(
            r#"{"blockIO":{"weightDevice":[{"major":8,"minor":0,"weight":5}]}}"#,
        )
        .unwrap();
        let e = screen(&r, false, || true).unwrap_err().to_string();
        assert!(e.contains("linux.resources.blockIO.weightDevice:"), "{e}");
    }

    #[test]
    fn default_and_relative_paths() {
        let spec: Spec = serde_json::from_str(r#"{"ociVersion":"1.0.2"}"#).unwrap();
        assert_eq!(path_for(&spec, "c1", false).unwrap(), Path::new("/c1"));
        assert_eq!(path_for(&spec, "c1", true).unwrap(), Path::new(":hull:c1"));
        let spec: Spec =
            serde_json::from_str(r#"{"ociVersion":"1.0.2","linux":{"cgroupsPath":"a/b"}}"#)
                .unwrap();
        assert_eq!(path_for(&spec, "c1", false).unwrap(), Path::new("/a/b"));
        let e = path_for(&spec, "c1", true).unwrap_err().to_string();
        assert!(e.contains("linux.cgroupsPath") && e.contains("a/b"), "{e}");
        assert_eq!(
            fs_dir(Path::new("user-1.slice:p:n"), true).unwrap(),
            Path::new("/user.slice/user-1.slice/p-n.scope")
        );
    }
}
