//! Adapter over libcgroups: where a container's cgroup is, joining it, applying resources,
//! freezing, listing pids and removing it, on v1, hybrid and unified hosts.

use std::path::{Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager, get_cgroup_setup, AnyCgroupManager, CgroupConfig, CgroupManager,
    CgroupSetup, ControllerOpt, FreezerState,
};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

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

    /// Applies `linux.resources`.
    pub fn apply(&self, spec: &Spec) -> Result<(), CgroupError> {
        let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
            return Ok(());
        };
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

/// The mount points of every cgroup hierarchy on this host.
fn hierarchy_roots() -> Vec<PathBuf> {
    match get_cgroup_setup() {
        Ok(CgroupSetup::Unified) => vec![PathBuf::from("/sys/fs/cgroup")],
        _ => std::fs::read_dir("/sys/fs/cgroup")
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
