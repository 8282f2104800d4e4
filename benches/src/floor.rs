//! The floor a runtime is measured against: `unshare --mount --uts --ipc --net --pid --fork
//! chroot ROOTFS /bin/true` with the bundle's namespaces, as a user would time it - the
//! namespaces and the exec a container needs, with none of the mounts, cgroups, capabilities,
//! seccomp or state files a runtime adds.

use std::path::Path;
use std::process::Command;

/// unshare(1)'s flags for OCI namespace type names; unknown names are an error, not a skip.
pub fn unshare_flags(names: &[String]) -> Result<Vec<&'static str>, String> {
    let mut flags = Vec::new();
    for n in names {
        flags.extend_from_slice(match n.as_str() {
            "pid" => &["--pid", "--fork"][..],
            "network" => &["--net"],
            "ipc" => &["--ipc"],
            "uts" => &["--uts"],
            "mount" => &["--mount"],
            "cgroup" => &["--cgroup"],
            "user" => &["--user"],
            "time" => &["--time"],
            other => return Err(format!("unknown namespace type {other}")),
        });
    }
    Ok(flags)
}

/// The floor's command line for a bundle with namespaces `names` and root `rootfs`.
pub fn command(names: &[String], rootfs: &Path) -> Result<Command, String> {
    let mut c = Command::new("unshare");
    c.args(unshare_flags(names)?)
        .arg("chroot")
        .arg(rootfs)
        .arg("/bin/true");
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_for_names() {
        let names: Vec<String> = ["pid", "network", "mount"].map(String::from).into();
        assert_eq!(
            unshare_flags(&names).unwrap(),
            ["--pid", "--fork", "--net", "--mount"]
        );
        assert!(unshare_flags(&["bogus".to_string()]).is_err());
    }
}
