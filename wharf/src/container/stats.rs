//! `stats`: resource usage of a container read from its cgroup (`/wharf/<id>` in each
//! hierarchy; v1, hybrid and v2 layouts) and its network namespace, and docker's CPU
//! percentage from two samples.

use std::path::{Path, PathBuf};

/// One reading of a container's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// CPU time used by the container, in nanoseconds.
    pub cpu_ns: u64,
    /// CPU time of the whole host (all CPUs), in nanoseconds.
    pub system_ns: u64,
    pub online_cpus: u32,
    /// Memory in use without the inactive page cache, as docker shows it.
    pub mem_usage: u64,
    pub mem_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub pids: u64,
}

/// docker's CPU %: the container's share of the host's CPU time between two samples,
/// scaled by the number of CPUs.
pub fn cpu_percent(prev: &Sample, cur: &Sample) -> f64 {
    let cpu = cur.cpu_ns.saturating_sub(prev.cpu_ns) as f64;
    let system = cur.system_ns.saturating_sub(prev.system_ns) as f64;
    if system <= 0.0 || cpu <= 0.0 {
        return 0.0;
    }
    cpu / system * cur.online_cpus as f64 * 100.0
}

pub fn mem_percent(s: &Sample) -> f64 {
    if s.mem_limit == 0 {
        0.0
    } else {
        s.mem_usage as f64 / s.mem_limit as f64 * 100.0
    }
}

/// The directory of `controller` for the cgroup `/wharf/<id>`: a v1 hierarchy that has
/// the controller, else the unified hierarchy.
fn cgroup_dir(mountinfo: &str, controller: &str, id: &str) -> Option<PathBuf> {
    let mut unified = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let opts = post.nth(1).unwrap_or("");
        let Some(mount) = pre.split(' ').nth(4) else {
            continue;
        };
        match fstype {
            "cgroup" if opts.split(',').any(|o| o == controller) => {
                return Some(Path::new(mount).join("wharf").join(id));
            }
            "cgroup2" => unified = Some(Path::new(mount).join("wharf").join(id)),
            _ => {}
        }
    }
    unified
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat).
fn keyed(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Host CPU time from the first line of /proc/stat (clock ticks, 100 per second).
fn system_ns() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            let first = t.lines().next()?.strip_prefix("cpu ")?.to_string();
            Some(
                first
                    .split_whitespace()
                    .take(7)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>(),
            )
        })
        .map_or(0, |ticks| ticks * 10_000_000)
}

/// The host's memory in bytes (MemTotal), 0 if unreadable.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Received and sent bytes on every interface but loopback in `pid`'s network namespace.
fn network(pid: i32) -> (u64, u64) {
    let Ok(t) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    t.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            if name.trim() == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            Some((*f.first()?, *f.get(8)?))
        })
        .fold((0, 0), |(r, t), (a, b)| (r + a, t + b))
}

/// Bytes read and written: v1 blkio.throttle.io_service_bytes or v2 io.stat.
fn block_io(dir: &Path) -> (u64, u64) {
    let (mut read, mut write) = (0, 0);
    if let Ok(t) = std::fs::read_to_string(dir.join("blkio.throttle.io_service_bytes")) {
        for l in t.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if let [_, op, v] = f.as_slice() {
                let v: u64 = v.parse().unwrap_or(0);
                match *op {
                    "Read" => read += v,
                    "Write" => write += v,
                    _ => {}
                }
            }
        }
    } else if let Ok(t) = std::fs::read_to_string(dir.join("io.stat")) {
        for field in t.split_whitespace() {
            if let Some(v) = field.strip_prefix("rbytes=") {
                read += v.parse::<u64>().unwrap_or(0);
            } else if let Some(v) = field.strip_prefix("wbytes=") {
                write += v.parse::<u64>().unwrap_or(0);
            }
        }
    }
    (read, write)
}

/// How many processes the kernel's OOM killer took from the container's memory cgroup.
pub fn oom_kills(id: &str) -> u64 {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(dir) = cgroup_dir(&info, "memory", id) else {
        return 0;
    };
    let v1 = dir.join("memory.oom_control");
    let file = if v1.exists() {
        v1
    } else {
        dir.join("memory.events")
    };
    keyed(&file, "oom_kill").unwrap_or(0)
}

/// Reads the counters of container `id` whose init is `pid` (0 when not running).
pub fn sample(id: &str, pid: i32) -> Sample {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = |c: &str| cgroup_dir(&info, c, id);
    let cpu_ns = dir("cpuacct")
        .and_then(|d| read_u64(&d.join("cpuacct.usage")))
        .or_else(|| {
            dir("cpu")
                .and_then(|d| keyed(&d.join("cpu.stat"), "usage_usec"))
                .map(|us| us * 1000)
        })
        .unwrap_or(0);
    let (mem_usage, limit) = match dir("memory") {
        Some(d) if d.join("memory.usage_in_bytes").exists() => {
            let usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
            let inactive = keyed(&d.join("memory.stat"), "total_inactive_file").unwrap_or(0);
            (
                usage.saturating_sub(inactive),
                read_u64(&d.join("memory.limit_in_bytes")),
            )
        }
        Some(d) => {
            let usage = read_u64(&d.join("memory.current")).unwrap_or(0);
            let inactive = keyed(&d.join("memory.stat"), "inactive_file").unwrap_or(0);
            (
                usage.saturating_sub(inactive),
                read_u64(&d.join("memory.max")),
            )
        }
        None => (0, None),
    };
    let host = host_memory();
    let mem_limit = limit.filter(|l| *l < host).unwrap_or(host);
    let (net_rx, net_tx) = if pid > 0 { network(pid) } else { (0, 0) };
    let (blk_read, blk_write) = dir("blkio")
        .or_else(|| dir("io"))
        .map_or((0, 0), |d| block_io(&d));
    let pids = dir("pids")
        .and_then(|d| read_u64(&d.join("pids.current")))
        .unwrap_or(0);
    Sample {
        cpu_ns,
        system_ns: system_ns(),
        online_cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        mem_usage,
        mem_limit,
        net_rx,
        net_tx,
        blk_read,
        blk_write,
        pids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_dirs_come_from_mountinfo() {
        let info = "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                    31 25 0:27 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n\
                    32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            cgroup_dir(info, "cpuacct", "x"),
            Some(PathBuf::from("/sys/fs/cgroup/cpuacct/wharf/x"))
        );
        assert_eq!(
            cgroup_dir(info, "pids", "x"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/wharf/x"))
        );
    }

    #[test]
    fn percentages_follow_docker() {
        let prev = Sample {
            cpu_ns: 1_000,
            system_ns: 10_000,
            online_cpus: 2,
            ..Default::default()
        };
        let cur = Sample {
            cpu_ns: 2_000,
            system_ns: 20_000,
            ..prev.clone()
        };
        assert!((cpu_percent(&prev, &cur) - 20.0).abs() < 1e-9);
        assert_eq!(cpu_percent(&cur, &cur), 0.0);
        let m = Sample {
            mem_usage: 25,
            mem_limit: 100,
            ..Default::default()
        };
        assert_eq!(mem_percent(&m), 25.0);
    }
}
