//! User namespaces: the uid/gid maps, written by the parent (which holds the host privileges)
//! into `/proc/<child>/{uid,gid}_map`.

use std::path::PathBuf;

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

#[derive(Debug, thiserror::Error)]
#[error("writing {path:?} ({content:?}): {source}")]
pub struct IdMapError {
    path: PathBuf,
    content: String,
    source: std::io::Error,
}

/// Whether this process runs in a user namespace other than the host's (whose uid_map maps
/// every id onto itself): rootless podman runs the runtime so, with no user namespace in the
/// config, and mknod and some mounts are refused there all the same.
pub fn running_in_user_namespace() -> bool {
    crate::procfile::read("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
}

/// The text of a map file: one `inside outside count` line per mapping.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes both maps of `pid`'s user namespace; `unprivileged`: the caller has no root.
pub fn write_id_maps(pid: Pid, spec: &Spec, unprivileged: bool) -> Result<(), IdMapError> {
    let linux = spec.linux().as_ref();
    let uid = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or_default();
    let gid = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default();
    // Without root the kernel takes a gid_map only once setgroups is denied (the container
    // then keeps the groups it has, which init knows to leave alone).
    if unprivileged {
        let path = PathBuf::from(format!("/proc/{pid}/setgroups"));
        std::fs::write(&path, "deny").map_err(|source| IdMapError {
            path,
            content: "deny".into(),
            source,
        })?;
    }
    for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        let content = map_text(maps);
        std::fs::write(&path, &content).map_err(|source| IdMapError {
            path,
            content,
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_one_line_per_mapping() {
        let maps: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#,
        )
        .unwrap();
        assert_eq!(map_text(&maps), "0 1000 1\n1 100000 65536\n");
    }
}
