//! Adapter over libcgroups: where a container's cgroup is, joining it, applying resources,
//! freezing, listing pids and removing it, on v1, hybrid and unified hosts.

use std::path::{Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager, get_cgroup_setup, AnyCgroupManager, CgroupConfig, CgroupManager,
    CgroupSetup, ControllerOpt, FreezerState,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use serde_json::{json, Value};

/// The parent directory of the default cgroup paths (`/hull/<id>`), removed when it empties.
pub const DEFAULT_PARENT: &str = "hull";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path:?}: {message}")]
    Manager { path: PathBuf, message: String },
    #[error(
        "--systemd-cgroup: this host has no systemd managing a unified cgroup hierarchy; \
         run without --systemd-cgroup to use cgroupfs"
    )]
    NoSystemd,
    #[error("--cgroup {arg:?}: {reason}")]
    ExecArg { arg: String, reason: &'static str },
    #[error("--cgroup: {0}")]
    ExecJoin(String),
    #[error("cgroup {path:?}: {what}: {message}")]
    Op {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
}

pub struct Cgroup {
    path: PathBuf,
    manager: AnyCgroupManager,
}

/// `linux.cgroupsPath`, or `/hull/<id>` when absent. Relative paths are taken from the root of
/// each hierarchy, as runtime-spec allows.
pub fn path_for(spec: &Spec, id: &str) -> PathBuf {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
    {
        Some(p) if !p.as_os_str().is_empty() => {
            if p.is_absolute() {
                p.clone()
            } else {
                Path::new("/").join(p)
            }
        }
        _ => Path::new("/").join(DEFAULT_PARENT).join(id),
    }
}

impl Cgroup {
    pub fn open(path: &Path, systemd: bool, id: &str) -> Result<Cgroup, CgroupError> {
        let err = |message: String| CgroupError::Manager {
            path: path.to_path_buf(),
            message,
        };
        if systemd && !Path::new("/run/systemd/system").exists() {
            return Err(CgroupError::NoSystemd);
        }
        let manager = create_cgroup_manager(CgroupConfig {
            cgroup_path: path.to_path_buf(),
            systemd_cgroup: systemd,
            container_name: id.to_string(),
        })
        .map_err(|e| err(e.to_string()))?;
        Ok(Cgroup {
            path: path.to_path_buf(),
            manager,
        })
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

    /// Moves `pid` into the cgroup, creating it.
    pub fn add(&self, pid: Pid) -> Result<(), CgroupError> {
        self.op("adding the container's process", self.manager.add_task(pid))
    }

    /// Applies `linux.resources` of a spec.
    pub fn apply_spec(&self, spec: &Spec) -> Result<(), CgroupError> {
        match spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            Some(r) => self.apply(r),
            None => Ok(()),
        }
    }

    /// Applies resource limits; the kernel's refusal names the cgroup file and value.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
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
        self.op("applying linux.resources", self.manager.apply(&opt))
    }

    /// Statistics in runc's `events` shape (types.Stats).
    pub fn stats(&self) -> Result<Value, CgroupError> {
        let s = self.op("reading statistics", self.manager.stats())?;
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
            "cpuset": cpuset_stats(&self.path),
            "pids": pids,
            "blkio": blkio,
            "hugetlb": hugetlb,
            "intel_rdt": {},
            "network_interfaces": null
        }))
    }

    pub fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        self.op("listing processes", self.manager.get_all_pids())
    }

    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let state = if frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        };
        self.op("changing the freezer state", self.manager.freeze(state))
    }

    /// Removes the cgroup (killing what is left in it), then the default parent if now empty.
    pub fn remove(&self) -> Result<(), CgroupError> {
        self.op("removing", self.manager.remove())?;
        if self.path.parent() == Some(&Path::new("/").join(DEFAULT_PARENT)) {
            for hierarchy in hierarchy_roots() {
                // Another container may still use it: then rmdir fails and that is fine.
                let _ = std::fs::remove_dir(hierarchy.join(DEFAULT_PARENT));
            }
        }
        Ok(())
    }
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
    let unified = matches!(get_cgroup_setup(), Ok(CgroupSetup::Unified));
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
pub fn is_frozen(path: &Path) -> bool {
    let rel = path.strip_prefix("/").unwrap_or(path);
    match get_cgroup_setup() {
        Ok(CgroupSetup::Unified) => {
            std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(rel).join("cgroup.freeze"))
                .is_ok_and(|s| s.trim() == "1")
        }
        Ok(_) => std::fs::read_to_string(
            Path::new("/sys/fs/cgroup/freezer")
                .join(rel)
                .join("freezer.state"),
        )
        .is_ok_and(|s| s.trim() != "THAWED"),
        Err(_) => false,
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
        if matches!(get_cgroup_setup(), Ok(CgroupSetup::Unified)) {
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

/// Where `exec --cgroup` puts a process inside the container's cgroup: one sub-path for every
/// controller, and sub-paths for named v1 controllers (`cpu,memory:sub`), as runc takes them.
#[derive(Debug, Default, PartialEq)]
pub struct ExecCgroups {
    all: Option<PathBuf>,
    per_controller: Vec<(String, PathBuf)>,
}

impl ExecCgroups {
    pub fn parse(args: &[String]) -> Result<ExecCgroups, CgroupError> {
        let mut out = ExecCgroups::default();
        for arg in args {
            let bad = |reason| CgroupError::ExecArg {
                arg: arg.clone(),
                reason,
            };
            let (controllers, sub) = match arg.split_once(':') {
                Some((c, sub)) => (Some(c), sub),
                None => (None, arg.as_str()),
            };
            let sub = Path::new(sub.trim_start_matches('/'));
            if sub.as_os_str().is_empty() {
                return Err(bad("the sub-cgroup path is empty"));
            }
            // The process must stay below the container's own cgroup.
            if sub
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(bad("the sub-cgroup path must not contain \"..\" or \".\""));
            }
            match controllers {
                None if out.all.is_some() => {
                    return Err(bad("only one path without controllers can be given"))
                }
                None => out.all = Some(sub.to_path_buf()),
                Some(list) => {
                    for c in list.split(',') {
                        if c.is_empty() {
                            return Err(bad("empty controller name"));
                        }
                        if out.per_controller.iter().any(|(have, _)| have == c) {
                            return Err(bad("a controller is named twice"));
                        }
                        out.per_controller.push((c.to_string(), sub.to_path_buf()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Moves `pid` into the container's cgroup `container`, or the sub-cgroups asked for, in every
    /// hierarchy the container has. Sub-cgroups must already exist, as in runc.
    pub fn join(&self, container: &Path, pid: Pid) -> Result<(), CgroupError> {
        let rel = container.strip_prefix("/").unwrap_or(container);
        let mut used = vec![false; self.per_controller.len()];
        let mut joined = 0;
        for h in hierarchies()? {
            let base = h.mount.join(rel);
            if !base.is_dir() {
                continue;
            }
            if h.controllers.is_empty() && !self.per_controller.is_empty() {
                return Err(CgroupError::ExecJoin(
                    "on cgroup v2 only one path without controllers can be given".into(),
                ));
            }
            let named = self
                .per_controller
                .iter()
                .enumerate()
                .find(|(_, (c, _))| h.controllers.contains(c));
            let dir = match (named, &self.all) {
                (Some((i, (_, sub))), _) => {
                    used[i] = true;
                    base.join(sub)
                }
                (None, Some(sub)) => base.join(sub),
                (None, None) => base,
            };
            if !dir.is_dir() {
                return Err(CgroupError::ExecJoin(format!(
                    "sub-cgroup {dir:?} does not exist"
                )));
            }
            let procs = dir.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).map_err(|e| CgroupError::Op {
                path: procs,
                what: "adding the exec process",
                message: e.to_string(),
            })?;
            joined += 1;
        }
        if let Some((c, _)) = self.per_controller.iter().zip(&used).find(|(_, u)| !**u) {
            return Err(CgroupError::ExecJoin(format!(
                "the container has no cgroup for controller {:?}",
                c.0
            )));
        }
        if joined == 0 {
            return Err(CgroupError::ExecJoin(format!(
                "the container's cgroup {container:?} exists in no hierarchy"
            )));
        }
        Ok(())
    }
}

/// One mounted cgroup hierarchy: its mount point and its controllers (`name=x` for a named v1
/// hierarchy; none for cgroup2).
struct Hierarchy {
    mount: PathBuf,
    controllers: Vec<String>,
}

/// Every cgroup hierarchy mounted here, from one read of mountinfo (a hierarchy mounted twice
/// counts once).
fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    let fail = |e: procfs::ProcError| CgroupError::Op {
        path: PathBuf::from("/proc/self/mountinfo"),
        what: "finding cgroup hierarchies",
        message: e.to_string(),
    };
    let known: Vec<String> = std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for m in procfs::process::Process::myself()
        .and_then(|p| p.mountinfo())
        .map_err(fail)?
    {
        if !matches!(m.fs_type.as_str(), "cgroup" | "cgroup2") || !seen.insert(m.majmin.clone()) {
            continue;
        }
        let mut controllers: Vec<String> = m
            .super_options
            .keys()
            .filter(|k| k.starts_with("name=") || known.contains(k))
            .cloned()
            .collect();
        if m.fs_type == "cgroup" && controllers.is_empty() {
            continue;
        }
        controllers.sort();
        out.push(Hierarchy {
            mount: m.mount_point,
            controllers,
        });
    }
    Ok(out)
}

/// The mount points of every cgroup hierarchy on this host.
fn hierarchy_roots() -> Vec<PathBuf> {
    hierarchies()
        .map(|hs| hs.into_iter().map(|h| h.mount).collect())
        .unwrap_or_default()
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
    fn exec_cgroup_arguments() {
        let parse =
            |a: &[&str]| ExecCgroups::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(parse(&[]).unwrap(), ExecCgroups::default());
        let e = parse(&["/sub", "cpu,memory:m"]).unwrap();
        assert_eq!(e.all.as_deref(), Some(Path::new("sub")));
        assert_eq!(
            e.per_controller,
            [
                ("cpu".to_string(), PathBuf::from("m")),
                ("memory".to_string(), PathBuf::from("m"))
            ]
        );
        for bad in [
            &["a", "b"][..],
            &["../up"],
            &["cpu:"],
            &["cpu:a", "cpu:b"],
            &[",:a"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_and_relative_paths() {
        let spec: Spec = serde_json::from_str(r#"{"ociVersion":"1.0.2"}"#).unwrap();
        assert_eq!(path_for(&spec, "c1"), Path::new("/hull/c1"));
        let spec: Spec =
            serde_json::from_str(r#"{"ociVersion":"1.0.2","linux":{"cgroupsPath":"a/b"}}"#)
                .unwrap();
        assert_eq!(path_for(&spec, "c1"), Path::new("/a/b"));
    }
}
