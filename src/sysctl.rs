//! `linux.sysctl`: written through the container's own /proc/sys after pivot_root, so only the
//! container's namespaces are touched (validation already refused non-namespaced keys).

use std::path::PathBuf;

use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
#[error("linux.sysctl.{key}: writing {value:?} to {path:?}: {source}")]
pub struct SysctlError {
    key: String,
    value: String,
    path: PathBuf,
    source: std::io::Error,
}

pub fn apply(spec: &Spec) -> Result<(), SysctlError> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctl {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|source| SysctlError {
            key: key.clone(),
            value: value.clone(),
            path,
            source,
        })?;
    }
    Ok(())
}
