//! Results: one row per benchmark with each runtime's median and p95, the ratios issue 7 sets
//! targets for (hull/crun, hull/runc), printed as a table and kept for the JSON summary.

use serde_json::{json, Map, Value};

use crate::stats::Summary;
use crate::steal::Window;

/// Columns of the table, in order; "floor" is `unshare ... chroot ROOTFS /bin/true`.
pub const COLUMNS: [&str; 4] = ["hull", "crun", "runc", "floor"];

/// One benchmark's results.
pub struct Row {
    /// Key in the JSON summary.
    pub key: &'static str,
    pub title: String,
    /// What one sample is.
    pub unit: &'static str,
    pub results: Vec<(String, Summary)>,
    /// Runtimes that were not measured here, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Extra per-runtime figures for the JSON only (phase medians, RSS samples).
    pub extra: Map<String, Value>,
    /// Host steal time during each runtime's recorded samples.
    pub steal: Vec<(String, Window)>,
}

impl Row {
    pub fn new(key: &'static str, title: String, unit: &'static str) -> Row {
        Row {
            key,
            title,
            unit,
            results: Vec::new(),
            skipped: Vec::new(),
            extra: Map::new(),
            steal: Vec::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Summary> {
        self.results.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// hull's median over another's, when both were measured.
    pub fn ratio(&self, other: &str) -> Option<f64> {
        Some(self.get("hull")?.median / self.get(other)?.median)
    }

    pub fn json(&self) -> Value {
        let results: Map<String, Value> = self
            .results
            .iter()
            .map(|(n, s)| (n.clone(), s.json()))
            .collect();
        let skipped: Map<String, Value> = self
            .skipped
            .iter()
            .map(|(n, r)| (n.clone(), json!(r)))
            .collect();
        json!({
            "title": self.title,
            "unit": self.unit,
            "results": results,
            "ratios": {
                "hull/crun": self.ratio("crun"),
                "hull/runc": self.ratio("runc"),
                "hull/floor": self.ratio("floor"),
            },
            "skipped": skipped,
            "extra": self.extra,
            "steal": self
                .steal
                .iter()
                .map(|(n, w)| (n.clone(), json!({"cpu_s": w.steal.as_secs_f64(), "share": w.share()})))
                .collect::<Map<String, Value>>(),
        })
    }
}

/// Prints the timing table: "median / p95" per column, then hull's ratios to the others.
pub fn print_table(rows: &[Row]) {
    let w = rows
        .iter()
        .map(|r| r.title.len())
        .max()
        .unwrap_or(10)
        .max(10);
    print!("{:<w$}", "benchmark (ms: median / p95)");
    for c in COLUMNS {
        print!("  {c:>17}");
    }
    println!(
        "  {:>9}  {:>9}  {:>10}",
        "hull/crun", "hull/runc", "hull/floor"
    );
    for r in rows {
        print!("{:<w$}", r.title);
        for c in COLUMNS {
            let cell = match r.get(c) {
                Some(s) => format!("{} / {}", fmt_ms(s.median), fmt_ms(s.p95)),
                None if r.skipped.iter().any(|(n, _)| n == c) => "skipped".to_string(),
                None => "-".to_string(),
            };
            print!("  {cell:>17}");
        }
        let ratio = |o| r.ratio(o).map_or("-".to_string(), |x| format!("{x:.2}"));
        println!(
            "  {:>9}  {:>9}  {:>10}",
            ratio("crun"),
            ratio("runc"),
            ratio("floor")
        );
    }
    for r in rows {
        for (n, why) in &r.skipped {
            println!("skipped: {} for {n}: {why}", r.title);
        }
    }
    print_steal(rows);
}

/// The host's steal time during each row's recorded samples, where there was any: those
/// medians carry the host's load too, and a ratio whose two sides met different amounts of it
/// says little.
fn print_steal(rows: &[Row]) {
    let stolen: Vec<&Row> = rows
        .iter()
        .filter(|r| r.steal.iter().any(|(_, w)| !w.steal.is_zero()))
        .collect();
    if stolen.is_empty() {
        println!("host steal time during the recorded samples: none");
        return;
    }
    println!(
        "host steal time during the recorded samples (CPU-seconds, and the share of the CPUs' \
         time while they ran; the host ran something else on this VM's CPUs):"
    );
    for r in stolen {
        let each: Vec<String> = r
            .steal
            .iter()
            .map(|(n, w)| {
                format!(
                    "{n} {:.2} s ({:.1}%)",
                    w.steal.as_secs_f64(),
                    100.0 * w.share()
                )
            })
            .collect();
        println!("  {}: {}", r.title, each.join(", "));
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Prints the per-phase medians of a lifecycle row (create, start, wait, delete).
pub fn print_phases(row: &Row) {
    println!("{} - phase medians (ms):", row.title);
    println!(
        "{:<6}  {:>8}  {:>8}  {:>8}  {:>8}",
        "", "create", "start", "wait", "delete"
    );
    for (name, v) in &row.extra {
        let p = &v["phase_median_ms"];
        let f = |k: &str| p[k].as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
        println!(
            "{name:<6}  {:>8}  {:>8}  {:>8}  {:>8}",
            f("create"),
            f("start"),
            f("wait"),
            f("delete")
        );
    }
}

/// Prints peak RSS and binary size per runtime, with hull's RSS over crun's (target <= 1).
pub fn print_resources(resources: &Value) {
    let Some(map) = resources.as_object() else {
        return;
    };
    let mib = |v: Option<u64>, div: f64| {
        v.map_or("-".to_string(), |x| format!("{:.2} MiB", x as f64 / div))
    };
    println!(
        "{:<6}  {:>16}  {:>30}  {:>12}  {:>14}",
        "", "peak RSS, run", "peak RSS, create/start/delete", "binary size", "size stripped"
    );
    for (name, r) in COLUMNS.iter().filter_map(|n| map.get(*n).map(|r| (n, r))) {
        println!(
            "{name:<6}  {:>16}  {:>30}  {:>12}  {:>14}",
            mib(r["peak_rss_kb_run"].as_u64(), 1024.0),
            mib(r["peak_rss_kb_lifecycle"].as_u64(), 1024.0),
            mib(r["binary_bytes"].as_u64(), 1048576.0),
            mib(r["binary_bytes_stripped"].as_u64(), 1048576.0),
        );
    }
    let rss = |n: &str, k: &str| map.get(n).and_then(|r| r[k].as_u64());
    for k in ["peak_rss_kb_run", "peak_rss_kb_lifecycle"] {
        if let (Some(h), Some(c)) = (rss("hull", k), rss("crun", k)) {
            println!("hull/crun {k}: {:.2}", h as f64 / c as f64);
        }
    }
    println!(
        "(peak RSS: median of 5 runs under GNU time (%M, ru_maxrss), after the timed samples: \
         our own spawn would hand the bench's high-water mark to the runtime at exec. A \
         foreground run counts the children the runtime reaps itself, e.g. hull's forked init; in \
         create/start/delete the container is reaped by the bench (a subreaper), so that column \
         is the runtime processes alone, the largest of the three. Sizes are of the executable \
         only: crun also loads libsystemd, libseccomp, libcap, libyajl and their dependencies.)"
    );
}

/// Prints what each defence adds to the lifecycle median of each runtime (its row minus the row
/// with no defences) and returns the same figures for the JSON summary.
pub fn print_defence_costs(rows: &[Row]) -> Value {
    let Some(none) = rows.iter().find(|r| r.key == "defences_none") else {
        return Value::Null;
    };
    println!("start-up cost of each defence (ms added to the lifecycle median, no netns):");
    print!("{:<40}", "");
    for c in COLUMNS {
        print!("  {c:>8}");
    }
    println!();
    let mut out = Map::new();
    for r in rows.iter().filter(|r| r.key != "defences_none") {
        print!("{:<40}", r.title);
        let mut costs = Map::new();
        for c in COLUMNS {
            match (r.get(c), none.get(c)) {
                (Some(with), Some(without)) => {
                    let d = with.median - without.median;
                    print!("  {:>+8.2}", d);
                    costs.insert(c.to_string(), json!(d));
                }
                _ => print!("  {:>8}", "-"),
            }
        }
        println!();
        out.insert(r.key.to_string(), Value::Object(costs));
    }
    println!(
        "(differences of medians on a shared 2-core machine: a few tenths of a ms is noise. \
         hull's always-on defences (O_PATH resolution of mount targets, the /dev/null check, \
         close_range, the non-dumpable init) cannot be switched off and are in every row.)"
    );
    Value::Object(out)
}
