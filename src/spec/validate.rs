//! Checks of config.json that need no kernel call: everything a runtime would otherwise discover
//! half-way through create, after it had already made state, cgroups or mounts.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::SpecError;

/// Validates `spec` (loaded from `config`, in bundle `dir`) and returns the absolute rootfs path.
pub fn validate(config: &Path, dir: &Path, spec: &Spec) -> Result<PathBuf, SpecError> {
    let bad = |field: &str, message: String| SpecError::Invalid {
        path: config.to_path_buf(),
        field: field.to_string(),
        message,
    };

    if !spec.version().starts_with("1.") {
        return Err(bad(
            "ociVersion",
            format!(
                "unsupported version {:?} (hull implements 1.x)",
                spec.version()
            ),
        ));
    }

    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| bad("root", "missing: a bundle needs a root filesystem".into()))?;
    if root.path().as_os_str().is_empty() {
        return Err(bad("root.path", "must not be empty".into()));
    }
    let given = dir.join(root.path());
    let unreadable = |e: std::io::Error| bad("root.path", format!("{given:?}: {e}"));
    // A rootfs that is a symlink is taken where it leads, as crun takes it (runc refuses it):
    // init opens the rootfs without following a symlink in its last component. Other
    // components are followed there; the common case costs one lstat.
    let (rootfs, meta) = match std::fs::symlink_metadata(&given).map_err(unreadable)? {
        m if m.is_symlink() => {
            let real = std::fs::canonicalize(&given).map_err(unreadable)?;
            let m = std::fs::metadata(&real).map_err(unreadable)?;
            (real, m)
        }
        m => (given.clone(), m),
    };
    if !meta.is_dir() {
        return Err(bad("root.path", format!("{given:?} is not a directory")));
    }

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| bad("process", "missing: create and run need a process".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(bad(
            "process.args",
            "must name at least the program to run".into(),
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(bad(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    for (i, env) in process.env().iter().flatten().enumerate() {
        if !env.contains('=') || env.starts_with('=') {
            return Err(bad(
                &format!("process.env[{i}]"),
                format!("{env:?} is not of the form NAME=value"),
            ));
        }
    }
    let mut rlimits = HashSet::new();
    for (i, rl) in process.rlimits().iter().flatten().enumerate() {
        if !rlimits.insert(format!("{:?}", rl.typ())) {
            return Err(bad(
                &format!("process.rlimits[{i}].type"),
                format!("duplicate rlimit {:?}", rl.typ()),
            ));
        }
        if rl.soft() > rl.hard() {
            return Err(bad(
                &format!("process.rlimits[{i}]"),
                format!("soft limit {} is above hard limit {}", rl.soft(), rl.hard()),
            ));
        }
    }

    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        // runtime-spec says MUST be absolute; runc takes it from / with a warning, and so
        // does hull: the destination is resolved inside the rootfs either way.
        if !m.destination().is_absolute() {
            crate::logging::warn(&format!(
                "mounts[{i}].destination {:?} is not absolute: taken relative to / (relative \
                 destinations are deprecated)",
                m.destination()
            ));
        }
        let options = m.options().as_deref().unwrap_or_default();
        let is_bind = options.iter().any(|o| o == "bind" || o == "rbind");
        if m.typ().as_deref().unwrap_or_default().is_empty() && !is_bind {
            return Err(bad(
                &format!("mounts[{i}].type"),
                format!(
                    "missing for {:?} (only bind mounts may omit it)",
                    m.destination()
                ),
            ));
        }
        if is_bind && m.source().is_none() {
            return Err(bad(
                &format!("mounts[{i}].source"),
                format!("bind mount of {:?} needs a source", m.destination()),
            ));
        }
    }

    let linux = spec.linux().as_ref();
    if let Some(p) = linux.and_then(|l| l.memory_policy().as_ref()) {
        crate::sched::check_memory_policy(p).map_err(|m| bad("linux.memoryPolicy", m))?;
    }
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().copied().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(bad(
                &format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace {:?}", ns_name(ns.typ())),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(bad(
                    &format!("linux.namespaces[{i}].path"),
                    format!("{p:?} is not an absolute path"),
                ));
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    if !has(LinuxNamespaceType::Mount) {
        crate::logging::warn(
            "linux.namespaces has no mount namespace: the container's mounts are made in the \
             host's mount namespace, under the rootfs, and stay there (as with runc)",
        );
        let linux = spec.linux().as_ref();
        let unapplied = [
            (
                "linux.maskedPaths",
                linux.and_then(|l| l.masked_paths().as_ref()),
            ),
            (
                "linux.readonlyPaths",
                linux.and_then(|l| l.readonly_paths().as_ref()),
            ),
        ];
        for (field, paths) in unapplied {
            if paths.is_some_and(|p| !p.is_empty()) {
                crate::logging::warn(&format!(
                    "{field} is not applied without a mount namespace (it would change the \
                     host's mounts), as with runc"
                ));
            }
        }
        if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
            crate::logging::warn(
                "root.readonly is not applied without a mount namespace, as with runc",
            );
        }
    }
    let new_user = namespaces
        .iter()
        .copied()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());

    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(bad(
            "hostname",
            "setting a hostname needs a uts namespace in linux.namespaces".into(),
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        return Err(bad(
            "domainname",
            "setting a domainname needs a uts namespace in linux.namespaces".into(),
        ));
    }

    if let Some(linux) = linux {
        let uid = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        let gid = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if new_user && !(uid && gid) {
            return Err(bad(
                "linux.uidMappings",
                "a new user namespace needs both uidMappings and gidMappings".into(),
            ));
        }
        if (uid || gid) && !has(LinuxNamespaceType::User) {
            return Err(bad(
                "linux.uidMappings",
                "id mappings are given but linux.namespaces has no user namespace".into(),
            ));
        }
        if linux.time_offsets().is_some() && !has(LinuxNamespaceType::Time) {
            return Err(bad(
                "linux.timeOffsets",
                "time offsets need a time namespace in linux.namespaces".into(),
            ));
        }
        for (i, d) in linux.devices().iter().flatten().enumerate() {
            if !d.path().is_absolute() {
                return Err(bad(
                    &format!("linux.devices[{i}].path"),
                    format!("{:?} is not an absolute path", d.path()),
                ));
            }
        }
        for (field, paths) in [
            ("linux.maskedPaths", linux.masked_paths()),
            ("linux.readonlyPaths", linux.readonly_paths()),
        ] {
            for (i, p) in paths.iter().flatten().enumerate() {
                if !p.starts_with('/') {
                    return Err(bad(
                        &format!("{field}[{i}]"),
                        format!("{p:?} is not an absolute path"),
                    ));
                }
            }
        }
        for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
            if let Some(ns) = sysctl_namespace(key) {
                if !has(ns) {
                    return Err(bad(
                        &format!("linux.sysctl.{key}"),
                        format!("needs a {} namespace in linux.namespaces", ns_name(ns)),
                    ));
                }
            } else {
                return Err(bad(
                    &format!("linux.sysctl.{key}"),
                    "is not namespaced: setting it would change the host".into(),
                ));
            }
        }
    }
    Ok(rootfs)
}

/// The namespace that isolates a sysctl, or None when the sysctl is global (as runc decides).
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// The runtime-spec name of a namespace type.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn base() -> Value {
        json!({"ociVersion": "1.0.2", "root": {"path": "."},
               "process": {"cwd": "/", "args": ["true"], "user": {"uid": 0, "gid": 0}},
               "linux": {"namespaces": [{"type": "mount"}]}})
    }

    fn check(v: Value) -> Result<PathBuf, SpecError> {
        let dir = std::env::temp_dir();
        let config = dir.join("config.json");
        let spec = super::super::parse(&config, v.to_string().as_bytes())?;
        validate(&config, &dir, &spec)
    }

    fn err(v: Value) -> String {
        check(v).unwrap_err().to_string()
    }

    #[test]
    fn accepts_minimal() {
        check(base()).unwrap();
    }

    #[test]
    fn takes_a_symlinked_rootfs_where_it_leads() {
        let bundle = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(target.path(), bundle.path().join("rootfs")).unwrap();
        let mut v = base();
        v["root"]["path"] = json!("rootfs");
        let config = bundle.path().join("config.json");
        let spec = super::super::parse(&config, v.to_string().as_bytes()).unwrap();
        let rootfs = validate(&config, bundle.path(), &spec).unwrap();
        assert_eq!(rootfs, target.path().canonicalize().unwrap());
    }

    #[test]
    fn names_field_and_value() {
        let mut v = base();
        v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}, {"type": "pid"}]);
        let e = err(v.clone());
        assert!(
            e.contains("linux.namespaces[2].type") && e.contains("\"pid\""),
            "{e}"
        );
        v["linux"]["namespaces"] = json!([{"type": "pidd"}]);
        let e = err(v);
        assert!(
            e.contains("linux.namespaces[0].type") && e.contains("pidd"),
            "{e}"
        );
    }

    #[test]
    fn takes_a_config_without_a_mount_namespace_as_runc_does() {
        let mut v = base();
        v["linux"]["namespaces"] = json!([]);
        assert!(check(v).is_ok());
    }

    #[test]
    fn rejects_hostname_without_uts() {
        let mut v = base();
        v["hostname"] = json!("x");
        assert!(err(v).contains("hostname"));
    }

    #[test]
    fn rejects_global_sysctl() {
        let mut v = base();
        v["linux"]["sysctl"] = json!({"vm.swappiness": "1"});
        assert!(err(v).contains("vm.swappiness"));
    }

    #[test]
    fn rejects_a_relative_cwd_but_takes_a_relative_mount_from_root() {
        let mut v = base();
        v["process"]["cwd"] = json!("x");
        assert!(err(v).contains("process.cwd"));
        let mut v = base();
        v["mounts"] = json!([{"destination": "tmp", "type": "tmpfs"}]);
        assert!(check(v).is_ok(), "runc warns and goes on");
    }

    #[test]
    fn user_namespace_needs_maps() {
        let mut v = base();
        v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "user"}]);
        assert!(err(v).contains("linux.uidMappings"));
    }
}
