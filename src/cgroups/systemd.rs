//! systemd cgroup paths: runc's `[slice]:[prefix]:[name]` form of `linux.cgroupsPath`, the unit
//! it names, and the directory systemd gives that unit in the cgroup tree.

use std::path::PathBuf;

use super::CgroupError;

/// A parsed `slice:prefix:name`.
#[derive(Debug, PartialEq)]
pub struct SystemdPath {
    pub slice: String,
    pub unit: String,
}

impl SystemdPath {
    /// Parses `linux.cgroupsPath` for the systemd driver; an empty path means `:hull:<id>`, as
    /// runc's default is `:runc:<id>`.
    pub fn parse(path: &str, id: &str) -> Result<SystemdPath, CgroupError> {
        let bad = |reason: &'static str| CgroupError::SystemdPath {
            path: path.to_string(),
            reason,
        };
        let owned;
        let path_or_default = if path.is_empty() {
            owned = format!(":hull:{id}");
            owned.as_str()
        } else {
            path
        };
        let fields: Vec<&str> = path_or_default.split(':').collect();
        let [slice, prefix, name] = fields[..] else {
            return Err(bad("expected slice:prefix:name"));
        };
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        if [slice, prefix, name].iter().any(|f| f.contains('/')) {
            return Err(bad("systemd unit and slice names cannot contain \"/\""));
        }
        let slice = match slice {
            "" => "system.slice".to_string(),
            "-" => "-.slice".to_string(),
            s if s.ends_with(".slice") => s.to_string(),
            _ => return Err(bad("the slice must end in \".slice\"")),
        };
        let unit = if name.ends_with(".slice") {
            name.to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        Ok(SystemdPath { slice, unit })
    }

    /// The unit's cgroup relative to the hierarchy root: each dash in a slice name is a level
    /// (`a-b.slice` lives in `a.slice/a-b.slice`), and `-.slice` is the root.
    pub fn cgroup_dir(&self) -> Result<PathBuf, CgroupError> {
        let mut dir = PathBuf::from("/");
        if self.slice != "-.slice" {
            let stem = self.slice.trim_end_matches(".slice");
            if stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
                return Err(CgroupError::SystemdPath {
                    path: self.slice.clone(),
                    reason: "invalid slice name",
                });
            }
            let mut prefix = String::new();
            for part in stem.split('-') {
                if !prefix.is_empty() {
                    prefix.push('-');
                }
                prefix.push_str(part);
                dir.push(format!("{prefix}.slice"));
            }
        }
        dir.push(&self.unit);
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str) -> Result<SystemdPath, CgroupError> {
        SystemdPath::parse(p, "c1")
    }

    #[test]
    fn units_and_slices() {
        let p = parse("").unwrap();
        assert_eq!(
            (p.slice.as_str(), p.unit.as_str()),
            ("system.slice", "hull-c1.scope")
        );
        assert_eq!(
            p.cgroup_dir().unwrap(),
            PathBuf::from("/system.slice/hull-c1.scope")
        );
        let p = parse("user-1000.slice:podman:abc").unwrap();
        assert_eq!(
            p.cgroup_dir().unwrap(),
            PathBuf::from("/user.slice/user-1000.slice/podman-abc.scope")
        );
        let p = parse("-:x:machine.slice").unwrap();
        assert_eq!(p.unit, "machine.slice");
        assert_eq!(p.cgroup_dir().unwrap(), PathBuf::from("/machine.slice"));
        assert_eq!(parse("a.slice::n").unwrap().unit, "n.scope");
    }

    #[test]
    fn malformed_paths_are_errors() {
        for bad in [
            "/abs/path",
            "a:b",
            "a.slice:b:",
            "a:b:c",
            "a.slice:b:c:d",
            "x.slice:p/q:n",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) || e.contains("slice"), "{bad}: {e}");
        }
        let e = parse("a--b.slice:p:n").unwrap().cgroup_dir().unwrap_err();
        assert!(e.to_string().contains("invalid slice name"));
    }
}
