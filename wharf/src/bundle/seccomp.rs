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
        None => Some(hull::spec::default_spec(None)["linux"]["seccomp"].clone()),
    }
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
