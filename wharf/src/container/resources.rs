//! `update`'s request: docker's resource flags and restart policy for a container that
//! exists, checked as docker's daemon checks them (alone, then against the record) and
//! against what the kernel offers, and applied to the recorded HostConfig.

use std::path::Path;

use super::{parse, HostConfig, RestartPolicy};

/// What to change; None (zero from the API) leaves a value as it is, as in docker.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Update {
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub restart_policy: Option<RestartPolicy>,
}

impl Update {
    /// The limits a HostConfig asks for, zero meaning unset: a create's, checked as an
    /// update from nothing, or an API update's body. The pids limit is taken as it is.
    pub fn of(h: &HostConfig) -> Update {
        let set = |v: i64| (v != 0).then_some(v);
        let text = |v: &str| (!v.is_empty()).then(|| v.to_string());
        Update {
            cpu_shares: set(h.cpu_shares),
            cpu_period: set(h.cpu_period),
            cpu_quota: set(h.cpu_quota),
            nano_cpus: set(h.nano_cpus),
            cpuset_cpus: text(&h.cpuset_cpus),
            cpuset_mems: text(&h.cpuset_mems),
            memory: set(h.memory),
            memory_reservation: set(h.memory_reservation),
            memory_swap: set(h.memory_swap),
            pids_limit: h.pids_limit,
            blkio_weight: (h.blkio_weight != 0).then_some(h.blkio_weight),
            restart_policy: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.limits_unchanged() && self.restart_policy.is_none()
    }

    /// Whether only the restart policy changes: nothing for the runtime to do.
    pub fn limits_unchanged(&self) -> bool {
        *self
            == Update {
                restart_policy: self.restart_policy.clone(),
                ..Default::default()
            }
    }

    /// docker's checks of the requested values alone, and of the kernel for them.
    pub fn validate(&self, sys: &Path) -> Result<(), String> {
        if let Some(m) = self.memory.filter(|m| *m > 0) {
            if m < 6 * 1024 * 1024 {
                return Err("Minimum memory limit allowed is 6MB".into());
            }
            if self.memory_swap.is_some_and(|s| s > 0 && s < m) {
                return Err(
                    "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
                );
            }
        }
        if let Some(p) = self.cpu_period.filter(|p| *p != 0) {
            if !(1000..=1_000_000).contains(&p) {
                return Err("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into());
            }
        }
        if self.cpu_quota.is_some_and(|q| q > 0 && q < 1000) {
            return Err("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
        }
        if self.nano_cpus.is_some() && (self.cpu_period.is_some() || self.cpu_quota.is_some()) {
            return Err(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            );
        }
        let online = std::thread::available_parallelism().map_or(1, usize::from);
        if let Some(n) = self.nano_cpus {
            if !(10_000_000..=online as i64 * 1_000_000_000).contains(&n) {
                return Err(format!(
                    "Range of CPUs is from 0.01 to {online}.00, as there are only {online} CPUs available"
                ));
            }
        }
        if let Some(c) = &self.cpuset_cpus {
            parse::cpuset(c, online).map_err(|e| e.to_string())?;
        }
        if let Some(m) = &self.cpuset_mems {
            parse::cpuset_mems(m, memory_nodes(sys)).map_err(|e| e.to_string())?;
        }
        if let Some(w) = self.blkio_weight {
            if !(10..=1000).contains(&w) {
                return Err("Range of blkio weight is from 10 to 1000".into());
            }
            if let Some(why) = blkio_weight_missing(sys) {
                return Err(format!("--blkio-weight {w}: {why}"));
            }
        }
        Ok(())
    }

    /// What the runtime's `update --resources` gets: only the values this update sets,
    /// taken from the record after it (`after`), so the runtime rewrites nothing else (crun
    /// 1.8.1 cannot write "unlimited" into every v1 file). A lifted pids limit is -1.
    pub fn runtime_resources(&self, after: &HostConfig) -> serde_json::Value {
        let full = crate::bundle::limits(after);
        let mut out = serde_json::json!({});
        let mut take = |section: &str, key: &str| {
            if let Some(v) = full.get(section).and_then(|s| s.get(key)) {
                out[section][key] = v.clone();
            }
        };
        if self.memory.is_some() {
            take("memory", "limit");
            take("memory", "swap");
        }
        if self.memory_swap.is_some() {
            take("memory", "swap");
        }
        if self.memory_reservation.is_some() {
            take("memory", "reservation");
        }
        if self.nano_cpus.is_some() || self.cpu_period.is_some() {
            take("cpu", "period");
        }
        if self.nano_cpus.is_some() || self.cpu_quota.is_some() {
            take("cpu", "quota");
        }
        if self.cpu_shares.is_some() {
            take("cpu", "shares");
        }
        if self.cpuset_cpus.is_some() {
            take("cpu", "cpus");
        }
        if self.cpuset_mems.is_some() {
            take("cpu", "mems");
        }
        if self.blkio_weight.is_some() {
            take("blockIO", "weight");
        }
        if self.pids_limit.is_some() {
            out["pids"]["limit"] = serde_json::json!(after.pids_limit.unwrap_or(-1));
        }
        out
    }

    /// The record after the update, with docker's checks against what it already holds.
    pub fn apply(&self, current: &HostConfig) -> Result<HostConfig, String> {
        let mut h = current.clone();
        let conflict = |m: &str| Err(format!("Conflicting options: {m}"));
        if self.nano_cpus.is_some() && h.cpu_period > 0 {
            return conflict("Nano CPUs cannot be updated as CPU Period has already been set");
        }
        if self.nano_cpus.is_some() && h.cpu_quota > 0 {
            return conflict("Nano CPUs cannot be updated as CPU Quota has already been set");
        }
        if self.cpu_period.is_some() && h.nano_cpus > 0 {
            return conflict("CPU Period cannot be updated as NanoCPUs has already been set");
        }
        if self.cpu_quota.is_some() && h.nano_cpus > 0 {
            return conflict("CPU Quota cannot be updated as NanoCPUs has already been set");
        }
        if let Some(m) = self.memory {
            if m > h.memory_swap && h.memory_swap != -1 && self.memory_swap.is_none() {
                return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
            }
            h.memory = m;
        }
        if let Some(s) = self.memory_swap {
            if s > 0 && h.memory == 0 {
                return Err(
                    "You should always set the Memory limit when using Memoryswap limit, see usage"
                        .into(),
                );
            }
            h.memory_swap = s;
        }
        if let Some(r) = self.memory_reservation {
            if h.memory > 0 && r > h.memory {
                return Err(
                    "Minimum memory limit can not be less than memory reservation limit, see usage"
                        .into(),
                );
            }
            h.memory_reservation = r;
        }
        macro_rules! set {
            ($($f:ident),*) => {$(if let Some(v) = &self.$f { h.$f = v.clone(); })*};
        }
        set!(
            cpu_shares,
            cpu_period,
            cpu_quota,
            nano_cpus,
            cpuset_cpus,
            cpuset_mems,
            blkio_weight
        );
        if let Some(p) = self.pids_limit {
            // docker stores "unlimited" (0 or -1) as no limit.
            h.pids_limit = (p > 0).then_some(p);
        }
        if let Some(policy) = &self.restart_policy {
            if h.auto_remove && !matches!(policy.name.as_str(), "" | "no") {
                return Err("Restart policy cannot be updated because AutoRemove is enabled for the container".into());
            }
            h.restart_policy = policy.clone();
        }
        Ok(h)
    }
}

/// How many memory nodes the host has (`/sys/devices/system/node/online`), one without NUMA.
fn memory_nodes(sys: &Path) -> usize {
    std::fs::read_to_string(sys.join("devices/system/node/online"))
        .ok()
        .and_then(|t| {
            t.trim()
                .split(',')
                .filter_map(|r| r.rsplit('-').next()?.parse::<usize>().ok())
                .max()
        })
        .map_or(1, |n| n + 1)
}

/// Why this kernel cannot weigh block I/O, or None when it can: a weight needs the BFQ
/// scheduler's (or CFQ's) files in the blkio hierarchy (v1) or the io controller (v2).
pub fn blkio_weight_missing(sys: &Path) -> Option<String> {
    let cgroup = sys.join("fs/cgroup");
    let v1 = cgroup.join("blkio");
    if v1.is_dir() {
        let found = ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .any(|f| v1.join(f).exists());
        return (!found).then(|| {
            format!(
                "this kernel does not support Block I/O weight: neither blkio.weight nor blkio.bfq.weight is in {} (the BFQ I/O scheduler is not in use)",
                v1.display()
            )
        });
    }
    let controllers = std::fs::read_to_string(cgroup.join("cgroup.controllers")).ok()?;
    (!controllers.split_whitespace().any(|c| c == "io")).then(|| {
        format!(
            "this kernel does not support Block I/O weight: the io controller is not in {}",
            cgroup.join("cgroup.controllers").display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_follow_dockers() {
        let mut h = HostConfig {
            nano_cpus: 1_000_000_000,
            ..Default::default()
        };
        let quota = Update {
            cpu_quota: Some(50_000),
            ..Default::default()
        };
        assert_eq!(
            quota.apply(&h).unwrap_err(),
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        );
        h.nano_cpus = 0;
        assert_eq!(quota.apply(&h).unwrap().cpu_quota, 50_000);
        let mem = Update {
            memory: Some(64 << 20),
            ..Default::default()
        };
        assert!(mem
            .apply(&h)
            .unwrap_err()
            .starts_with("Memory limit should be smaller"));
        let both = Update {
            memory: Some(64 << 20),
            memory_swap: Some(-1),
            ..Default::default()
        };
        let after = both.apply(&h).unwrap();
        assert_eq!((after.memory, after.memory_swap), (64 << 20, -1));
        let small = Update {
            memory: Some(1 << 20),
            ..Default::default()
        };
        assert_eq!(
            small.validate(Path::new("/sys")).unwrap_err(),
            "Minimum memory limit allowed is 6MB"
        );
        let rm = HostConfig {
            auto_remove: true,
            ..Default::default()
        };
        let always = Update {
            restart_policy: Some(RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 0,
            }),
            ..Default::default()
        };
        assert!(always.apply(&rm).unwrap_err().contains("AutoRemove"));
        let unlimited = Update {
            pids_limit: Some(-1),
            ..Default::default()
        };
        h.pids_limit = Some(10);
        assert_eq!(unlimited.apply(&h).unwrap().pids_limit, None);
        // The runtime hears only of what changes.
        let shares = Update {
            cpu_shares: Some(300),
            ..Default::default()
        };
        let after = shares.apply(&h).unwrap();
        assert_eq!(
            shares.runtime_resources(&after),
            serde_json::json!({"cpu": {"shares": 300}})
        );
        let lifted = unlimited.apply(&h).unwrap();
        assert_eq!(
            unlimited.runtime_resources(&lifted),
            serde_json::json!({"pids": {"limit": -1}})
        );
        assert!(Update::default().is_empty());
        assert!(always.limits_unchanged());
    }
}
