//! Kernel features that tests assert on, probed on this machine. A test that needs one asks
//! `missing(..)` and skips with the printed reason where it is absent, so the suites pass on
//! every machine of this kind, with or without BFQ, swap accounting, real-time groups, and so on.
//!
//! `HULL_TEST_HIDE_FEATURES=blkio-weight,swap-accounting,...` makes the probes report those
//! features missing: that is how a machine without them is simulated on one that has them.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Controllers on cgroup v1 hierarchies (v1 or hybrid layout).
    CgroupV1,
    /// A proportional block I/O weight: `blkio.weight` (CFQ) or `blkio.bfq.weight` (BFQ).
    BlkioWeight,
    /// `memory.memsw.*` (swap accounting, `swapaccount=1`).
    SwapAccounting,
    /// `cpu.rt_runtime_us` (CONFIG_RT_GROUP_SCHED).
    RtGroupSched,
    /// `cpu.idle` on the v1 cpu controller (kernel 5.15 and later).
    CpuIdle,
    /// Time namespaces (kernel 5.6 and later).
    TimeNamespace,
    /// seccomp user notification (SECCOMP_RET_USER_NOTIF).
    SeccompNotify,
    /// User namespaces that can be made (`user.max_user_namespaces` above 0).
    UserNamespace,
    /// Kernel keyrings (`/proc/keys`, CONFIG_KEYS).
    Keyrings,
    /// NUMA memory policies (`/proc/self/numa_maps`, CONFIG_NUMA).
    Numa,
    /// Idmapped mounts (mount_setattr MOUNT_ATTR_IDMAP, kernel 5.12 and later).
    IdmappedMounts,
    /// A CRIU in PATH that works with this kernel (`criu check`).
    Criu,
}

impl Feature {
    pub fn name(self) -> &'static str {
        match self {
            Feature::CgroupV1 => "cgroup-v1",
            Feature::BlkioWeight => "blkio-weight",
            Feature::SwapAccounting => "swap-accounting",
            Feature::RtGroupSched => "rt-group-sched",
            Feature::CpuIdle => "cpu-idle",
            Feature::TimeNamespace => "time-namespace",
            Feature::SeccompNotify => "seccomp-notify",
            Feature::UserNamespace => "user-namespace",
            Feature::Keyrings => "keyrings",
            Feature::Numa => "numa",
            Feature::IdmappedMounts => "idmapped-mounts",
            Feature::Criu => "criu",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Feature::CgroupV1 => "controllers on cgroup v1 (this host is unified v2)",
            Feature::BlkioWeight => {
                "blkio weight file (blkio.weight or blkio.bfq.weight: the BFQ scheduler)"
            }
            Feature::SwapAccounting => "swap accounting (memory.memsw.limit_in_bytes)",
            Feature::RtGroupSched => "real-time group scheduling (cpu.rt_runtime_us)",
            Feature::CpuIdle => "cpu.idle on the v1 cpu controller (kernel 5.15+)",
            Feature::TimeNamespace => "time namespaces (/proc/self/ns/time)",
            Feature::SeccompNotify => "seccomp user notification (actions_avail: user_notif)",
            Feature::UserNamespace => "user namespaces (user.max_user_namespaces > 0)",
            Feature::Keyrings => "kernel keyrings (/proc/keys)",
            Feature::Numa => "NUMA memory policies (/proc/self/numa_maps)",
            Feature::IdmappedMounts => "idmapped mounts (kernel 5.12+)",
            Feature::Criu => {
                "CRIU that passes `criu check` in PATH (Debian 12's 3.17 cannot run on kernels \
                 since 6.x's separate vDSO clock page; shared/conformance/criu-setup.sh builds 4.2)"
            }
        }
    }

    fn probe(self) -> bool {
        let cg = Path::new("/sys/fs/cgroup");
        let file_has = |path: &str, word: &str| {
            std::fs::read_to_string(path).is_ok_and(|s| s.split_whitespace().any(|w| w == word))
        };
        match self {
            Feature::CgroupV1 => cg.join("memory/memory.limit_in_bytes").exists(),
            Feature::BlkioWeight => {
                ["blkio.weight", "blkio.bfq.weight"]
                    .iter()
                    .any(|f| cg.join("blkio").join(f).exists())
                    || std::fs::read_dir("/sys/block").is_ok_and(|d| {
                        d.flatten().any(|e| {
                            std::fs::read_to_string(e.path().join("queue/scheduler"))
                                .is_ok_and(|s| s.contains("bfq"))
                        })
                    })
            }
            Feature::SwapAccounting => cg.join("memory/memory.memsw.limit_in_bytes").exists(),
            Feature::RtGroupSched => cg.join("cpu/cpu.rt_runtime_us").exists(),
            Feature::CpuIdle => cg.join("cpu/cpu.idle").exists(),
            Feature::TimeNamespace => Path::new("/proc/self/ns/time").exists(),
            Feature::SeccompNotify => {
                file_has("/proc/sys/kernel/seccomp/actions_avail", "user_notif")
            }
            Feature::UserNamespace => {
                Path::new("/proc/self/ns/user").exists()
                    && std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
                        .is_ok_and(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
            }
            Feature::Keyrings => Path::new("/proc/keys").exists(),
            Feature::Numa => Path::new("/proc/self/numa_maps").exists(),
            Feature::IdmappedMounts => kernel_at_least(5, 12),
            Feature::Criu => std::process::Command::new("criu")
                .args(["check"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        }
    }

    fn hidden(self) -> bool {
        std::env::var("HULL_TEST_HIDE_FEATURES")
            .is_ok_and(|v| v.split(',').any(|f| f.trim() == self.name()))
    }
}

/// Whether the running kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (m, n) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (m, n) >= (major, minor)
}

/// Why `feature` cannot be tested here, or None when this machine has it.
pub fn missing(feature: Feature) -> Option<String> {
    if feature.hidden() {
        Some(format!(
            "no {} (hidden by HULL_TEST_HIDE_FEATURES)",
            feature.what()
        ))
    } else if !feature.probe() {
        Some(format!("this machine has no {}", feature.what()))
    } else {
        None
    }
}

/// Whether this machine has `feature`; prints a skip line naming what goes untested when not.
pub fn require(feature: Feature, untested: &str) -> bool {
    match missing(feature) {
        None => true,
        Some(why) => {
            crate::skip(&format!("{untested}: {why}"));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hiding_a_feature_reports_it_missing() {
        std::env::set_var("HULL_TEST_HIDE_FEATURES", "cpu-idle, blkio-weight");
        let why = missing(Feature::BlkioWeight).unwrap();
        assert!(why.contains("hidden") && why.contains("BFQ"), "{why}");
        assert!(missing(Feature::CpuIdle).is_some());
        std::env::remove_var("HULL_TEST_HIDE_FEATURES");
    }
}
