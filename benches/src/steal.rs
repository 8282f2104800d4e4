//! Host steal time from /proc/stat: how long this VM's CPUs were ready to run while the host
//! ran something else. Samples that met much of it measured the host's load as well as the
//! runtime (plain hyperfine runs here at 0.85x-1.02x crun came with 0.65-1.24 s of it).

use std::time::Duration;

/// Steal time of all CPUs since boot; zero where /proc/stat has no steal column.
pub fn total() -> Duration {
    let ticks = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| steal_ticks(&s))
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// The steal column (the eighth number) of the aggregate `cpu` line.
fn steal_ticks(stat: &str) -> Option<u64> {
    stat.lines()
        .find(|l| l.starts_with("cpu "))?
        .split_whitespace()
        .nth(8)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_aggregate_lines_steal() {
        let stat = "cpu  3064362 2 1913299 5810253 72624 0 19610 100537 0 0\n\
                    cpu0 1323410 0 905528 3182328 23985 0 1840 49889 0 0\n";
        assert_eq!(super::steal_ticks(stat), Some(100537));
        assert_eq!(super::steal_ticks("cpu  1 2 3 4\n"), None);
        assert_eq!(super::steal_ticks("intr 5\n"), None);
    }
}
