//! Privileges of the container process: the bounding set, the switch to the configured user and
//! groups (keeping capabilities across setresuid with PR_SET_KEEPCAPS), then the effective,
//! permitted, inheritable and ambient sets.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, User};

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("process.capabilities.{set}: unknown capability {name:?}")]
    Unknown { set: &'static str, name: String },
    #[error("{what}: {source}")]
    Sys { what: String, source: Errno },
    #[error("setting the {set} capabilities: {message}")]
    Set { set: &'static str, message: String },
}

/// The five capability sets, resolved to the caps crate's type.
pub struct Plan {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

fn convert(
    set: &'static str,
    caps: &Option<oci_spec::runtime::Capabilities>,
) -> Result<CapsHashSet, CapsError> {
    caps.iter()
        .flatten()
        .map(|c| {
            let name = c.to_string();
            let canonical = if name.starts_with("CAP_") {
                name.clone()
            } else {
                format!("CAP_{name}")
            };
            Capability::from_str(&canonical).map_err(|_| CapsError::Unknown { set, name })
        })
        .collect()
}

impl Plan {
    pub fn from_spec(caps: &LinuxCapabilities) -> Result<Plan, CapsError> {
        Ok(Plan {
            bounding: convert("bounding", caps.bounding())?,
            effective: convert("effective", caps.effective())?,
            permitted: convert("permitted", caps.permitted())?,
            inheritable: convert("inheritable", caps.inheritable())?,
            ambient: convert("ambient", caps.ambient())?,
        })
    }

    /// Drops from the bounding set everything not listed. Must run while still privileged.
    pub fn limit_bounding(&self) -> Result<(), CapsError> {
        for cap in caps::all() {
            if self.bounding.contains(&cap) {
                continue;
            }
            match caps::drop(None, CapSet::Bounding, cap) {
                Ok(()) => {}
                // The kernel may not know every capability the crate does.
                Err(_) if !caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) => {}
                Err(e) => {
                    return Err(CapsError::Set {
                        set: "bounding",
                        message: format!("{cap}: {e}"),
                    })
                }
            }
        }
        Ok(())
    }

    /// Sets effective, permitted, inheritable, then raises the ambient ones. Effective first:
    /// it must stay within permitted at every step.
    pub fn apply(&self) -> Result<(), CapsError> {
        let set = |which: CapSet, name: &'static str, value: &CapsHashSet| {
            caps::set(None, which, value).map_err(|e| CapsError::Set {
                set: name,
                message: e.to_string(),
            })
        };
        set(CapSet::Effective, "effective", &self.effective)?;
        set(CapSet::Permitted, "permitted", &self.permitted)?;
        set(CapSet::Inheritable, "inheritable", &self.inheritable)?;
        caps::clear(None, CapSet::Ambient).map_err(|e| CapsError::Set {
            set: "ambient",
            message: e.to_string(),
        })?;
        for cap in &self.ambient {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|e| CapsError::Set {
                set: "ambient",
                message: format!("{cap}: {e}"),
            })?;
        }
        Ok(())
    }
}

fn prctl_keepcaps(on: bool) -> Result<(), CapsError> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) })
        .map(drop)
        .map_err(|source| CapsError::Sys {
            what: "prctl(PR_SET_KEEPCAPS)".into(),
            source,
        })
}

/// Becomes `user` (groups, then gid, then uid) while keeping the capabilities that `plan` will
/// set afterwards. `setgroups_allowed` is false in a user namespace whose setgroups is denied.
pub fn switch_user(user: &User, setgroups_allowed: bool) -> Result<(), CapsError> {
    prctl_keepcaps(true)?;
    let sys = |what: String| move |source| CapsError::Sys { what, source };
    if setgroups_allowed {
        let groups: Vec<Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        setgroups(&groups).map_err(sys(format!(
            "setting supplementary groups {:?}",
            user.additional_gids().as_deref().unwrap_or_default()
        )))?;
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(sys(format!("setting gid {gid}")))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(sys(format!("setting uid {uid}")))?;
    prctl_keepcaps(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_names_and_rejects_nothing_known() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let plan = Plan::from_spec(&caps).unwrap();
        assert_eq!(plan.bounding.len(), 2);
        assert!(plan.effective.contains(&Capability::CAP_KILL));
        assert!(plan.inheritable.is_empty());
    }
}
