//! `exec --cgroup`: which sub-cgroups of the container's cgroup an exec'd process joins, and
//! how the process joins them (no libcgroups manager needed).

use std::path::{Path, PathBuf};

use super::{hierarchies, CgroupError, Join};

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
            // "/" (or nothing) is the container's own cgroup.
            let sub = Path::new(sub.trim_start_matches('/'));
            // The process must stay below the container's own cgroup.
            if sub
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(CgroupError::ExecJoin(format!(
                    "bad sub cgroup path: {}: it must not contain \"..\" or \".\"",
                    sub.display()
                )));
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

    /// How an exec'd process gets into the container's cgroup `container`, or the sub-cgroups
    /// asked for, in every hierarchy the container has: by itself on v1, born in it on v2
    /// (`Join::BySelf`). Sub-cgroups must already exist, as in runc. A rootless
    /// container made without a cgroup (`Join::Outside`) has its processes stay outside too.
    pub fn plan(&self, container: &Path, rootless: bool) -> Result<Join, CgroupError> {
        let rel = container.strip_prefix("/").unwrap_or(container);
        let mut used = vec![false; self.per_controller.len()];
        let (mut tasks, mut into) = (Vec::new(), None);
        let unified = super::unified();
        for h in hierarchies()? {
            let base = h.mount.join(rel);
            if !base.is_dir() {
                continue;
            }
            // On a hybrid host the cgroup2 hierarchy has no controllers to name.
            if unified && !self.per_controller.is_empty() {
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
                    "failed adding pid to sub-cgroup {dir:?}: no such file or directory"
                )));
            }
            if h.controllers.is_empty() {
                into = Some(dir);
            } else {
                tasks.push(dir.join("tasks"));
            }
        }
        if let Some((c, _)) = self.per_controller.iter().zip(&used).find(|(_, u)| !**u) {
            return Err(CgroupError::ExecJoin(format!(
                "unknown controller {:?}: the container has no cgroup for it",
                c.0
            )));
        }
        let asked = self.all.is_some() || !self.per_controller.is_empty();
        if tasks.is_empty() && into.is_none() && rootless && !asked {
            return Ok(Join::Outside);
        }
        if tasks.is_empty() && into.is_none() {
            return Err(CgroupError::ExecJoin(format!(
                "the container's cgroup {container:?} exists in no hierarchy"
            )));
        }
        Ok(Join::BySelf {
            tasks,
            into,
            made_after_clone: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            parse(&["/"]).unwrap().all.as_deref(),
            Some(Path::new("")),
            "the container's own cgroup"
        );
        for bad in [&["a", "b"][..], &["../up"], &["cpu:a", "cpu:b"], &[",:a"]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
