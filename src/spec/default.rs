//! The configuration `hull spec` writes: runc's default bundle (a shell in its own namespaces,
//! a cgroup namespace where the host is unified v2), without inheritable or ambient
//! capabilities (CVE-2022-29162). As `runc spec`, it has no seccomp profile: tools and tests
//! build on it expecting runc's default, and add their own.

use serde_json::{json, Value};

/// The default config.json. With `rootless`, a user namespace maps the caller's ids to root and
/// the mounts that need real root are replaced as runc does.
pub fn default_spec(rootless: Option<(u32, u32)>) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "hull",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        spec["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces is an array")
            .push(json!({"type": "cgroup"}));
    }
    if let Some((uid, gid)) = rootless {
        let linux = spec["linux"].as_object_mut().expect("linux is an object");
        // The mappings first, as runc writes them; no resources.
        let mut rootless = json!({
            "uidMappings": [{"containerID": 0, "hostID": uid, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": gid, "size": 1}],
        });
        let ordered = rootless.as_object_mut().expect("an object");
        ordered.extend(
            std::mem::take(linux)
                .into_iter()
                .filter(|(k, _)| k != "resources"),
        );
        // runc's: the same namespaces less the network one, plus a user namespace.
        let mut namespaces: Vec<Value> = ordered["namespaces"]
            .as_array()
            .expect("namespaces is an array")
            .iter()
            .filter(|n| n["type"] != "network")
            .cloned()
            .collect();
        namespaces.push(json!({"type": "user"}));
        ordered["namespaces"] = Value::Array(namespaces);
        spec["linux"] = rootless;
        let mounts = spec["mounts"].as_array_mut().expect("mounts is an array");
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if m["destination"] == "/dev/pts" {
                m["options"] = json!([
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620"
                ]);
            }
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parses_as_a_spec_without_inheritable_caps() {
        for rootless in [None, Some((1000, 1000))] {
            let v = default_spec(rootless);
            let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
            let caps = spec
                .process()
                .as_ref()
                .unwrap()
                .capabilities()
                .as_ref()
                .unwrap();
            assert!(caps.inheritable().is_none());
            assert!(caps.ambient().is_none());
        }
    }
}
