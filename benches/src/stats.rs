//! Order statistics over timing samples: medians and p95 are what issue 7 asks for, since the
//! noise on this machine kind (about ±20%) makes means misleading.

use std::time::Duration;

/// Summary of one series of samples, in milliseconds.
#[derive(Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p95: f64,
    pub min: f64,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Some(Summary {
            n: ms.len(),
            median: median_sorted(&ms),
            p95: nearest_rank(&ms, 0.95),
            min: ms[0],
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.n, "median_ms": self.median, "p95_ms": self.p95, "min_ms": self.min,
        })
    }
}

/// The median of sorted, non-empty samples.
pub fn median_sorted(v: &[f64]) -> f64 {
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

/// The nearest-rank percentile: always one of the observed values.
fn nearest_rank(v: &[f64], p: f64) -> f64 {
    let rank = (p * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The median of integer samples (peak RSS in KiB).
pub fn median_u64(samples: &[u64]) -> Option<u64> {
    let mut v = samples.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95() {
        let d: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        let s = Summary::of(&d).unwrap();
        assert_eq!(s.median, 10.5);
        assert_eq!(s.p95, 19.0);
        assert_eq!(s.min, 1.0);
        assert!(Summary::of(&[]).is_none());
    }
}
