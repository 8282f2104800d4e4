//! A container's seccomp profile and `--security-opt`: docker's default profile (hull's
//! definition of it, `hull::spec`, reused rather than copied), none with `--privileged`
//! or `seccomp=unconfined`, or the user's profile file. As docker does, the file is read
//! once at create time and its compacted JSON stored in HostConfig.SecurityOpt. Profiles
//! in docker's format (`archMap`, per-rule `includes`/`excludes` of capabilities and
//! architectures) are resolved to the OCI form for this host and the container's
//! capabilities; OCI profiles pass through.

use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum SecurityOptError {
    #[error("opening seccomp profile ({path}) failed: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("decoding seccomp profile failed: {0}")]
    Decode(String),
    #[error("Invalid --security-opt: {0:?}")]
    Invalid(String),
}

/// Checks one `--security-opt` value and returns the form to record: `seccomp=PATH`
/// becomes `seccomp=<profile JSON>`.
pub fn parse_security_opt(opt: &str) -> Result<String, SecurityOptError> {
    let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, ""));
    match (key, value) {
        ("seccomp", "unconfined") => Ok("seccomp=unconfined".into()),
        ("seccomp", path) if !path.is_empty() => {
            let text = std::fs::read(path).map_err(|source| SecurityOptError::Open {
                path: path.to_string(),
                source,
            })?;
            let v: Value = serde_json::from_slice(&text)
                .map_err(|e| SecurityOptError::Decode(e.to_string()))?;
            if v.get("defaultAction").and_then(Value::as_str).is_none() {
                return Err(SecurityOptError::Decode(
                    "the profile has no defaultAction".into(),
                ));
            }
            Ok(format!("seccomp={v}"))
        }
        ("no-new-privileges", "" | "true") => Ok("no-new-privileges=true".into()),
        ("no-new-privileges", "false") => Ok("no-new-privileges=false".into()),
        _ => Err(SecurityOptError::Invalid(opt.to_string())),
    }
}

/// The value recorded for `key` in SecurityOpt, the last one winning.
pub fn recorded<'a>(opts: &'a [String], key: &str) -> Option<&'a str> {
    opts.iter()
        .rev()
        .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
}

/// `linux.seccomp` for a container with `caps`, or None for no filter.
pub fn profile(privileged: bool, opts: &[String], caps: &[String]) -> Option<Value> {
    if privileged {
        return None;
    }
    match recorded(opts, "seccomp") {
        Some("unconfined") => None,
        Some(text) => serde_json::from_str(text)
            .ok()
            .map(|v| resolve_docker_format(v, caps)),
        None => Some(default_profile(caps)),
    }
}

/// System calls docker's default profile allows only to holders of a capability
/// (moby's profiles/seccomp/default.json); hull's profile is the one for a container
/// without any of them.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// docker's default profile for a container with `caps`: hull's base profile plus the
/// system calls each held capability unlocks. With CAP_SYS_ADMIN, clone3 is allowed
/// instead of failing with ENOSYS (the strictest matching rule would win otherwise).
fn default_profile(caps: &[String]) -> Value {
    let mut v = hull::spec::docker_default_seccomp();
    let mut names: Vec<&str> = BY_CAPABILITY
        .iter()
        .filter(|(cap, _)| caps.iter().any(|c| c == cap))
        .flat_map(|(_, calls)| calls.iter().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return v;
    }
    if let Some(rules) = v.get_mut("syscalls").and_then(Value::as_array_mut) {
        if names.contains(&"clone3") {
            rules.retain(|r| strings(&r["names"]) != ["clone3"] || r["action"] == "SCMP_ACT_ALLOW");
        }
        rules.push(json!({"names": names, "action": "SCMP_ACT_ALLOW"}));
    }
    v
}

/// docker's name of this host's architecture in `includes.arches`.
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn scmp_arch() -> String {
    format!("SCMP_ARCH_{}", std::env::consts::ARCH.to_ascii_uppercase())
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a docker rule's `includes`/`excludes` let it apply here.
fn applies(rule: &Value, caps: &[String]) -> bool {
    let arch = docker_arch();
    let inc = &rule["includes"];
    let exc = &rule["excludes"];
    strings(&inc["caps"])
        .iter()
        .all(|c| caps.iter().any(|h| h == c))
        && !strings(&exc["caps"])
            .iter()
            .any(|c| caps.iter().any(|h| h == c))
        && (inc["arches"].is_null() || strings(&inc["arches"]).contains(&arch))
        && !strings(&exc["arches"]).contains(&arch)
}

fn resolve_docker_format(mut v: Value, caps: &[String]) -> Value {
    if let Some(map) = v.get("archMap").and_then(Value::as_array).cloned() {
        let host = scmp_arch();
        let arches: Vec<String> = map
            .iter()
            .find(|e| e["architecture"] == host.as_str())
            .map(|e| {
                let mut a = vec![host.clone()];
                a.extend(
                    strings(&e["subArchitectures"])
                        .iter()
                        .map(|s| s.to_string()),
                );
                a
            })
            .unwrap_or_else(|| vec![host.clone()]);
        v["architectures"] = json!(arches);
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("archMap");
    }
    if let Some(rules) = v.get_mut("syscalls").and_then(Value::as_array_mut) {
        rules.retain(|r| applies(r, caps));
        for r in rules.iter_mut() {
            if let Some(o) = r.as_object_mut() {
                o.remove("includes");
                o.remove("excludes");
                o.remove("comment");
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_opts_parse_like_docker() {
        assert_eq!(
            parse_security_opt("seccomp=unconfined").unwrap(),
            "seccomp=unconfined"
        );
        assert!(matches!(
            parse_security_opt("seccomp=/no/such/profile.json"),
            Err(SecurityOptError::Open { .. })
        ));
        assert!(parse_security_opt("apparmor=x").is_err());
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p.json");
        std::fs::write(&p, "{\n \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}").unwrap();
        let rec = parse_security_opt(&format!("seccomp={}", p.display())).unwrap();
        assert_eq!(rec, r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#);
        let opts = vec![rec];
        assert_eq!(
            profile(false, &opts, &[]).unwrap(),
            json!({"defaultAction": "SCMP_ACT_ALLOW"})
        );
        assert!(profile(true, &[], &[]).is_none());
        assert!(profile(false, &["seccomp=unconfined".into()], &[]).is_none());
        let default = profile(false, &[], &[]).unwrap();
        assert_eq!(default["defaultAction"], "SCMP_ACT_ERRNO");
    }

    fn allowed(v: &Value, name: &str) -> bool {
        v["syscalls"].as_array().unwrap().iter().any(|r| {
            r["action"] == "SCMP_ACT_ALLOW"
                && r["args"].is_null()
                && strings(&r["names"]).contains(&name)
        })
    }

    #[test]
    fn capabilities_unlock_their_system_calls() {
        let base = default_profile(&[]);
        assert!(!allowed(&base, "chroot") && !allowed(&base, "mount"));
        let defaults: Vec<String> = crate::bundle::defaults::CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .collect();
        let d = default_profile(&defaults);
        assert!(
            allowed(&d, "chroot"),
            "docker lets a default container chroot"
        );
        assert!(!allowed(&d, "mount"));
        let mut admin = defaults.clone();
        admin.push("CAP_SYS_ADMIN".into());
        let a = default_profile(&admin);
        assert!(allowed(&a, "mount") && allowed(&a, "unshare") && allowed(&a, "clone3"));
        let clone3_errno = a["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| strings(&r["names"]) == ["clone3"] && r["action"] == "SCMP_ACT_ERRNO");
        assert!(!clone3_errno);
    }

    #[test]
    fn docker_format_resolves_for_host_and_caps() {
        let v = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": scmp_arch(), "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["nosucharch"]}},
            ],
        });
        let r = resolve_docker_format(v.clone(), &["CAP_SYS_ADMIN".into()]);
        assert_eq!(r["architectures"], json!([scmp_arch(), "SCMP_ARCH_X86"]));
        assert!(r.get("archMap").is_none());
        let names: Vec<&str> = r["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["names"][0].as_str().unwrap())
            .collect();
        assert_eq!(names, ["read", "mount"]);
        let r = resolve_docker_format(v, &[]);
        assert_eq!(r["syscalls"].as_array().unwrap().len(), 2);
    }
}
