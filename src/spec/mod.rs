//! The bundle: loads `config.json` (oci-spec), resolves the rootfs, and validates every field hull
//! relies on before any side effect, so that bad input fails with the file, field and value and
//! leaves nothing behind.

mod default;
mod default_seccomp;
pub(crate) mod validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use default::default_spec;
pub use default_seccomp::default_profile as docker_default_seccomp;
pub use validate::validate;

/// An error in a bundle, always naming the file and, where there is one, the field and value.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {field}: {message}")]
    Parse {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// A loaded and validated bundle.
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// config.json as read, kept so the state directory gets the exact bytes.
    pub raw: Vec<u8>,
}

impl Bundle {
    /// Loads `<dir>/config.json` and validates it. `dir` is made absolute first, because the
    /// state and hooks record it.
    pub fn load(dir: &Path) -> Result<Bundle, SpecError> {
        let dir = std::path::absolute(dir).map_err(|source| SpecError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let config = dir.join("config.json");
        let bytes = std::fs::read(&config).map_err(|source| SpecError::Read {
            path: config.clone(),
            source,
        })?;
        let spec = parse(&config, &bytes)?;
        let rootfs = validate(&config, &dir, &spec)?;
        Ok(Bundle {
            dir,
            rootfs,
            spec,
            raw: bytes,
        })
    }
}

/// Parses config.json bytes, reporting the JSON path of the offending field on error.
pub fn parse(config: &Path, bytes: &[u8]) -> Result<Spec, SpecError> {
    let mut spec: Spec = parse_json(config, bytes)?;
    empty_namespace_paths_mean_new(&mut spec);
    Ok(spec)
}

/// `"path": ""` on a namespace asks for a new one, as runc reads it (engines write it).
fn empty_namespace_paths_mean_new(spec: &mut Spec) {
    let Some(namespaces) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    else {
        return;
    };
    for ns in namespaces
        .iter_mut()
        .filter(|ns| ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()))
    {
        ns.set_path(None);
    }
}

/// Parses any runtime-spec JSON document (a config, a process.json), naming the file and the
/// JSON path of the offending field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    config: &Path,
    bytes: &[u8],
) -> Result<T, SpecError> {
    let fail = |field: String, message: String| SpecError::Parse {
        path: config.to_path_buf(),
        field: if field == "." || field == "?" {
            "(document)".into()
        } else {
            field
        },
        message,
    };
    // Every start parses its config: the common case goes straight to the types. Only a
    // document they refuse takes the slower way through a JSON tree, where names runc accepts
    // (unknown capabilities, runtime-spec's scheduler flags) are mended and runc's words given.
    if let Ok(parsed) = serde_json::from_slice(bytes) {
        return Ok(parsed);
    }
    let mut doc: serde_json::Value =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes))
            .map_err(|e| fail(e.path().to_string(), e.into_inner().to_string()))?;
    drop_unknown_capabilities(&mut doc);
    spell_scheduler_flags_for_oci_spec(&mut doc);
    check_memory_policy_names(&doc).map_err(|message| SpecError::Invalid {
        path: config.to_path_buf(),
        field: "linux.memoryPolicy".into(),
        message,
    })?;
    serde_path_to_error::deserialize(doc)
        .map_err(|e| fail(e.path().to_string(), e.into_inner().to_string()))
}

/// oci-spec 0.10 names two scheduler flags otherwise than runtime-spec does
/// (`SCHED_RESET_ON_FORK`, `SCHED_FLAG_D_L_OVERRUN`): the spec's names are rewritten to the
/// crate's before the typed parse, so configs written to the spec parse.
fn spell_scheduler_flags_for_oci_spec(doc: &mut serde_json::Value) {
    for pointer in ["/process/scheduler/flags", "/scheduler/flags"] {
        for flag in doc
            .pointer_mut(pointer)
            .and_then(|f| f.as_array_mut())
            .into_iter()
            .flatten()
        {
            let crate_name = match flag.as_str() {
                Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
                Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
                _ => continue,
            };
            *flag = serde_json::Value::from(crate_name);
        }
    }
}

/// linux.memoryPolicy's mode and flags as runc words their errors (callers match them), before
/// the typed parse would only say "unknown variant".
fn check_memory_policy_names(doc: &serde_json::Value) -> Result<(), String> {
    use oci_spec::runtime::{MemoryPolicyFlagType, MemoryPolicyModeType};
    let Some(policy) = doc.pointer("/linux/memoryPolicy") else {
        return Ok(());
    };
    if !policy.is_object() {
        return Err("invalid memory policy: not an object".into());
    }
    match policy.get("mode") {
        None => return Err("invalid memory policy mode: none given".into()),
        Some(m) if serde_json::from_value::<MemoryPolicyModeType>(m.clone()).is_err() => {
            return Err(format!("invalid memory policy mode {m}"))
        }
        Some(_) => {}
    }
    for f in policy
        .get("flags")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
    {
        if serde_json::from_value::<MemoryPolicyFlagType>(f.clone()).is_err() {
            return Err(format!("invalid memory policy flag {f}"));
        }
    }
    Ok(())
}

/// Takes capability names that hull does not know out of a config's (or a process.json's)
/// capability sets, with one warning, as runc 1.2+ does: a config written for a newer kernel
/// or by a newer engine still runs.
fn drop_unknown_capabilities(doc: &mut serde_json::Value) {
    use oci_spec::runtime::Capability;
    let mut unknown = std::collections::BTreeSet::new();
    for pointer in ["/process/capabilities", "/capabilities"] {
        let Some(sets) = doc.pointer_mut(pointer).and_then(|v| v.as_object_mut()) else {
            continue;
        };
        for names in sets.values_mut().filter_map(|v| v.as_array_mut()) {
            // A name that is not a string stays, to fail with its JSON path.
            names.retain(|n| match n.as_str() {
                Some(name) if serde_json::from_value::<Capability>(n.clone()).is_err() => {
                    unknown.insert(name.to_string());
                    false
                }
                _ => true,
            });
        }
    }
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.into_iter().collect();
        crate::logging::warn(&format!(
            "ignoring unknown or unavailable capabilities: [{}]",
            names.join(" ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_spec_scheduler_flag_names_parse() {
        let json = br#"{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0},
            "scheduler":{"policy":"SCHED_DEADLINE","flags":["SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_DL_OVERRUN"]}}"#;
        let p: oci_spec::runtime::Process = parse_json(Path::new("p.json"), json).unwrap();
        assert_eq!(
            p.scheduler()
                .as_ref()
                .unwrap()
                .flags()
                .as_ref()
                .unwrap()
                .len(),
            2
        );
    }
}
