//! Privileges of the container process: the bounding set, the switch to the configured user and
//! groups (keeping capabilities across setresuid with PR_SET_KEEPCAPS), then the effective,
//! permitted and inheritable sets in one capset, then the ambient set.
//!
//! Ambient capabilities follow runc and crun: the kernel raises only what is in both permitted
//! and inheritable, and a config that asks for more (Debian's `runc spec` lists ambient
//! capabilities with no inheritable set) still runs, without them. hull drops those from the
//! plan with a warning before the container is made, as runc warns for each one it cannot raise.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, User};

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
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

/// The capabilities of one set that this kernel has; names it does not know (or the caps crate
/// does not) go to `unknown`.
fn convert(
    caps: &Option<oci_spec::runtime::Capabilities>,
    last_cap: u8,
    unknown: &mut std::collections::BTreeSet<String>,
) -> CapsHashSet {
    let mut out = CapsHashSet::new();
    for c in caps.iter().flatten() {
        let name = c.to_string();
        let canonical = if name.starts_with("CAP_") {
            name.clone()
        } else {
            format!("CAP_{name}")
        };
        match Capability::from_str(&canonical) {
            Ok(cap) if cap.index() <= last_cap => {
                out.insert(cap);
            }
            _ => {
                unknown.insert(canonical);
            }
        }
    }
    out
}

/// The highest capability this kernel knows.
fn kernel_last_cap() -> u8 {
    crate::procfile::read("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u8::MAX)
}

impl Plan {
    /// The plan for a config's capabilities. As runc 1.2+ does, names this kernel does not
    /// have are ignored with one warning: a config written for a newer kernel still runs.
    pub fn from_spec(caps: &LinuxCapabilities) -> Result<Plan, CapsError> {
        let last = kernel_last_cap();
        let mut unknown = std::collections::BTreeSet::new();
        let mut plan = Plan {
            bounding: convert(caps.bounding(), last, &mut unknown),
            effective: convert(caps.effective(), last, &mut unknown),
            permitted: convert(caps.permitted(), last, &mut unknown),
            inheritable: convert(caps.inheritable(), last, &mut unknown),
            ambient: convert(caps.ambient(), last, &mut unknown),
        };
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.into_iter().collect();
            crate::logging::warn(&format!(
                "ignoring unknown or unavailable capabilities: [{}]",
                names.join(" ")
            ));
        }
        for cap in plan.unraisable_ambient() {
            crate::logging::warn(&format!(
                "can't raise ambient capability {cap}: not in both the permitted and the \
                 inheritable set (process.capabilities); the process runs without it"
            ));
            plan.ambient.remove(&cap);
        }
        Ok(plan)
    }

    /// Ambient capabilities the kernel would refuse to raise (PR_CAP_AMBIENT_RAISE needs the
    /// capability in permitted and inheritable), in capability order.
    fn unraisable_ambient(&self) -> Vec<Capability> {
        let mut v: Vec<Capability> = self
            .ambient
            .iter()
            .filter(|c| !self.permitted.contains(c) || !self.inheritable.contains(c))
            .copied()
            .collect();
        v.sort_by_key(|c| c.index());
        v
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

    /// Sets effective, permitted and inheritable in one capset, as runc does: set one at a
    /// time, a lowered permitted or effective set (CAP_SETPCAP gone) would make the kernel
    /// refuse an inheritable set that it accepts whole. Then the ambient set, which the plan
    /// has already limited to what the kernel raises.
    pub fn apply(&self) -> Result<(), CapsError> {
        capset(&self.effective, &self.permitted, &self.inheritable)?;
        // SAFETY: prctl with integer arguments.
        let cleared = Errno::result(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        });
        match cleared {
            // Kernels before 4.3 have no ambient set; there is nothing to clear or raise.
            Err(Errno::EINVAL) => return Ok(()),
            Err(source) => {
                return Err(CapsError::Sys {
                    what: "clearing the ambient capabilities".into(),
                    source,
                })
            }
            Ok(_) => {}
        }
        for cap in &self.ambient {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|e| CapsError::Set {
                set: "ambient",
                message: format!("{cap}: {e}"),
            })?;
        }
        Ok(())
    }
}

fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

/// capset(2) of the three sets at once (version 3: two 32-bit words per set).
fn capset(
    effective: &CapsHashSet,
    permitted: &CapsHashSet,
    inheritable: &CapsHashSet,
) -> Result<(), CapsError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let (e, p, i) = (mask(effective), mask(permitted), mask(inheritable));
    let word = |n: u32| Data {
        effective: (e >> n) as u32,
        permitted: (p >> n) as u32,
        inheritable: (i >> n) as u32,
    };
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [word(0), word(32)];
    // SAFETY: capset reads one header and two data words, both alive for the call.
    Errno::result(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) })
        .map(drop)
        .map_err(|e| CapsError::Set {
            set: "effective, permitted and inheritable",
            message: format!("capset: {e}"),
        })
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

    /// Debian's `runc spec`: ambient capabilities, no inheritable set.
    #[test]
    fn ambient_outside_permitted_and_inheritable_is_dropped() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN","CAP_NET_BIND_SERVICE"],
                "effective":["CAP_KILL","CAP_CHOWN","CAP_NET_BIND_SERVICE"],
                "permitted":["CAP_KILL","CAP_CHOWN","CAP_NET_BIND_SERVICE"],
                "ambient":["CAP_KILL","CAP_NET_BIND_SERVICE"]}"#,
        )
        .unwrap();
        let plan = Plan::from_spec(&caps).unwrap();
        assert!(plan.ambient.is_empty());
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"permitted":["CAP_KILL","CAP_CHOWN"],"inheritable":["CAP_KILL","CAP_SYS_ADMIN"],
                "ambient":["CAP_KILL","CAP_CHOWN","CAP_SYS_ADMIN"]}"#,
        )
        .unwrap();
        let plan = Plan::from_spec(&caps).unwrap();
        assert_eq!(plan.ambient, CapsHashSet::from_iter([Capability::CAP_KILL]));
    }

    #[test]
    fn unknown_capabilities_are_left_out() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let mut unknown = std::collections::BTreeSet::new();
        // A kernel whose last capability is CAP_CHOWN (0) has no CAP_KILL (5).
        let set = convert(caps.bounding(), 0, &mut unknown);
        assert_eq!(set, CapsHashSet::from_iter([Capability::CAP_CHOWN]));
        assert_eq!(unknown.into_iter().collect::<Vec<_>>(), ["CAP_KILL"]);
    }

    #[test]
    fn masks_put_each_capability_at_its_bit() {
        let set = CapsHashSet::from_iter([Capability::CAP_CHOWN, Capability::CAP_BPF]);
        assert_eq!(mask(&set), 1 | 1 << 39);
    }
}
