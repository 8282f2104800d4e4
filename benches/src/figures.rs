//! Issue 19's one table: every speed and memory figure it sets a target for, with its anchor
//! (the tool it is measured against), the ratio and the target, from one run. With `--all`,
//! hull's benchmarks add their figures, then wharf's `run`, `network`, `monitor` and `pull`
//! benches run (`cargo bench -p wharf`) and append theirs (`figure.rs`) to the file that
//! `BENCH_FIGURES` names; the table is printed from that file.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::figure::append;

use crate::report::Row;

/// The wharf benches that report figures, in the order they run.
const WHARF_BENCHES: [&str; 4] = ["run", "network", "monitor", "pull"];

/// hull's figures: `run` against crun and the floor, the lifecycle and 100 runs against
/// crun, and peak RSS against crun's.
pub fn hull(file: &Path, rows: &[Row], resources: &Value) -> Result<(), String> {
    let median = |key: &str, rt: &str| {
        rows.iter()
            .find(|r| r.key == key)
            .and_then(|r| r.get(rt))
            .map(|s| s.median)
    };
    let ms = |key: &str, name: &str, anchor: &str, target: f64| -> Result<(), String> {
        match (median(key, "hull"), median(key, anchor)) {
            (Some(h), Some(a)) => append(file, name, (h, "ms"), (anchor, a), target),
            _ => Ok(()),
        }
    };
    ms("run", "hull run /bin/true, back to back", "crun", 0.6)?;
    ms("run", "hull run /bin/true, back to back", "floor", 2.0)?;
    ms(
        "lifecycle_all_ns",
        "hull create+start+wait+delete, back to back",
        "crun",
        0.6,
    )?;
    ms("run_100", "hull 100 runs in a row (total)", "crun", 0.6)?;
    let rss = |rt: &str| resources[rt]["peak_rss_kb_run"].as_f64();
    if let (Some(h), Some(c)) = (rss("hull"), rss("crun")) {
        append(
            file,
            "hull peak RSS of run",
            (h / 1024.0, "MiB"),
            ("crun", c / 1024.0),
            0.9,
        )?;
    }
    Ok(())
}

/// Runs wharf's benches with `BENCH_FIGURES=file`; their own output goes to the terminal.
pub fn wharf(repo: &Path, file: &Path) -> Result<(), String> {
    for bench in WHARF_BENCHES {
        println!("\nwharf's {bench} bench (cargo bench -p wharf --bench {bench})...");
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["bench", "--quiet", "-p", "wharf", "--bench", bench])
            .current_dir(repo)
            .env("BENCH_FIGURES", file)
            .status()
            .map_err(|e| format!("cargo bench: {e}"))?;
        if !st.success() {
            return Err(format!("cargo bench -p wharf --bench {bench} failed"));
        }
    }
    Ok(())
}

/// Prints the figures in `file` as one table.
pub fn print(file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    println!("\n| figure | value | anchor | anchor's | ratio | target | met |");
    println!("|---|---|---|---|---|---|---|");
    for line in text.lines() {
        let f: Value = serde_json::from_str(line).map_err(|e| format!("{line}: {e}"))?;
        let (value, anchor_value) = (
            f["value"].as_f64().unwrap_or(f64::NAN),
            f["anchor_value"].as_f64().unwrap_or(f64::NAN),
        );
        let ratio = value / anchor_value;
        let target = f["target"].as_f64().unwrap_or(f64::NAN);
        let unit = f["unit"].as_str().unwrap_or("");
        println!(
            "| {} | {} {unit} | {} | {} {unit} | {ratio:.2}x | <= {target}x | {} |",
            f["figure"].as_str().unwrap_or(""),
            number(value),
            f["anchor"].as_str().unwrap_or(""),
            number(anchor_value),
            if ratio <= target { "yes" } else { "no" },
        );
    }
    Ok(())
}

/// Three significant digits, as the other tables print them.
fn number(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_round_trip_through_the_file() {
        let dir = std::env::temp_dir().join(format!("figures-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.jsonl");
        append(&file, "x", (3.0, "ms"), ("crun", 6.0), 0.6).unwrap();
        let line = std::fs::read_to_string(&file).unwrap();
        let v: Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(
            (v["value"].as_f64(), v["anchor"].as_str()),
            (Some(3.0), Some("crun"))
        );
        print(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn numbers_keep_three_digits() {
        assert_eq!(number(7.4234), "7.42");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(707.4), "707");
    }
}
