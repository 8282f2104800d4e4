//! Host steal time from /proc/stat: how long this VM's CPUs were ready to run while the host
//! ran something else. Samples that met much of it timed the host's load as well as the
//! runtime, so the bench shows how much each runtime's samples met.

use std::ops::AddAssign;
use std::time::{Duration, Instant};

/// A point to measure from: the host's steal total so far and the time.
#[derive(Clone, Copy)]
pub struct Mark {
    steal: Duration,
    at: Instant,
}

impl Mark {
    pub fn now() -> Mark {
        Mark {
            steal: total(),
            at: Instant::now(),
        }
    }

    /// The steal and the wall time from this mark to `end`.
    pub fn until(self, end: Mark) -> Window {
        Window {
            steal: end.steal.saturating_sub(self.steal),
            wall: end.at.saturating_duration_since(self.at),
        }
    }
}

/// Steal met over some wall time.
#[derive(Clone, Copy, Default)]
pub struct Window {
    /// Summed over the CPUs, as /proc/stat counts it.
    pub steal: Duration,
    pub wall: Duration,
}

impl Window {
    /// The part of the CPUs' time the host took: what a runtime that kept every CPU busy
    /// would have lost.
    pub fn share(&self) -> f64 {
        let cpu_time = self.wall.as_secs_f64() * cpus() as f64;
        if cpu_time > 0.0 {
            self.steal.as_secs_f64() / cpu_time
        } else {
            0.0
        }
    }
}

impl AddAssign for Window {
    fn add_assign(&mut self, other: Window) {
        self.steal += other.steal;
        self.wall += other.wall;
    }
}

/// Steal time of all CPUs since boot; zero where /proc/stat has no steal column.
fn total() -> Duration {
    let ticks = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| steal_ticks(&s))
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100);
    Duration::from_millis(ticks * 1000 / hz)
}

fn cpus() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
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
    use std::time::Duration;

    #[test]
    fn reads_the_aggregate_lines_steal() {
        let stat = "cpu  3064362 2 1913299 5810253 72624 0 19610 100537 0 0\n\
                    cpu0 1323410 0 905528 3182328 23985 0 1840 49889 0 0\n";
        assert_eq!(super::steal_ticks(stat), Some(100537));
        assert_eq!(super::steal_ticks("cpu  1 2 3 4\n"), None);
        assert_eq!(super::steal_ticks("intr 5\n"), None);
    }

    #[test]
    fn share_is_of_every_cpus_time() {
        let w = super::Window {
            steal: Duration::from_millis(100) * super::cpus() as u32,
            wall: Duration::from_secs(1),
        };
        assert!((w.share() - 0.1).abs() < 1e-9);
        assert_eq!(super::Window::default().share(), 0.0);
    }
}
