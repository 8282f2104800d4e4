//! hull vs crun vs runc, side by side in one run (issue 7).
//!
//! `cargo run --release --manifest-path benches/Cargo.toml -- [--runs N] [--json PATH]
//! [--hull PATH]` builds hull as shipped (`RELEASE_BUILD`, unless `--hull` names a binary),
//! finds crun and runc on PATH, makes busybox bundles from `runc spec` in a temp dir, times
//! every benchmark back to back (as hyperfine does) and interleaved, prints a table and writes
//! a JSON summary. Needs root. Everything it makes
//! (containers, state roots, bundles, the hugetlb mount crun needs) is undone on exit.

mod bench;
mod bundle;
mod cgroup;
mod figure;
mod figures;
mod floor;
mod hot_text;
mod phases;
mod proc;
mod report;
mod runtime;
mod stats;
mod steal;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::bench::{Ctx, Floor, Order};
use crate::runtime::Runtime;

/// Command-line options.
struct Opts {
    runs: usize,
    json: PathBuf,
    hull: Option<PathBuf>,
    /// Also run wharf's benches and print issue 19's one table of figures.
    all: bool,
    /// Regenerate src/hot-text.order instead of benchmarking.
    hot_text: bool,
}

const USAGE: &str = "usage: hull-benches [--runs N (default 30)] [--json PATH (default \
benches/target/bench-summary.json)] [--hull PATH (default: the release build of hull)] [--all \
(then wharf's run, network, monitor and pull benches, and one table of every figure)] | \
hull-benches --hot-text (regenerate src/hot-text.order, the functions hull links first)";

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        runs: 30,
        json: repo().join("benches/target/bench-summary.json"),
        hull: None,
        all: false,
        hot_text: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--runs" => o.runs = val()?.parse().map_err(|_| format!("bad --runs\n{USAGE}"))?,
            "--json" => o.json = PathBuf::from(val()?),
            "--hull" => o.hull = Some(PathBuf::from(val()?)),
            "--all" => o.all = true,
            "--hot-text" => o.hot_text = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    if o.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    // It builds and traces the release hull itself and measures nothing.
    if o.hot_text && args.len() > 1 {
        return Err(format!("--hot-text takes no other argument\n{USAGE}"));
    }
    Ok(o)
}

/// The repository root: this crate lives in `<repo>/benches`.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--trace-one") {
        match hot_text::trace_one_main(&args[1..]) {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("hull-benches --trace-one: {e}");
                std::process::exit(1)
            }
        }
    }
    let run = |o: Opts| {
        if o.hot_text {
            hot_text::regenerate(&repo())
        } else {
            bench_all(&o)
        }
    };
    let code = match parse_args(&args).and_then(run) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hull-benches: {e}");
            1
        }
    };
    // Exit only after main's guards have dropped (containers, mounts, temp dirs).
    std::process::exit(code)
}

/// How hull is built for shipping (README).
const RELEASE_BUILD: &str = "cargo build --release -p hull";

/// Builds the shipped hull, or takes the one given.
fn locate_hull(given: &Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return std::fs::canonicalize(p).map_err(|e| format!("--hull {}: {e}", p.display()));
    }
    let repo = repo();
    println!("building the shipped hull ({RELEASE_BUILD})...");
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "hull"])
        .arg("--manifest-path")
        .arg(repo.join("Cargo.toml"))
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !st.success() {
        return Err(format!("{RELEASE_BUILD} failed (or pass --hull PATH)"));
    }
    Ok(release_hull(&repo))
}

/// Where cargo puts the release build of hull.
fn release_hull(repo: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"))
        .join("release/hull")
}

/// An executable named `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// The commit hull was built from, and whether src/ differed from it (others edit it live).
fn hull_source() -> String {
    let repo = repo().to_string_lossy().to_string();
    let head = first_line("git", &["-C", &repo, "rev-parse", "--short", "HEAD"]);
    let dirty = Command::new("git")
        .args([
            "-C",
            &repo,
            "status",
            "--porcelain",
            "--",
            "src",
            "Cargo.toml",
            "Cargo.lock",
        ])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        format!("{head} + uncommitted changes in src/ (built from the working tree)")
    } else {
        head
    }
}

/// The 1, 5 and 15 minute load averages: the bench shares 2 cores with whatever else runs.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn bench_all(o: &Opts) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root (namespaces, mounts, cgroups)".into());
    }
    proc::become_subreaper()?;
    proc::catch_interrupts();
    let hull_bin = locate_hull(&o.hull)?;

    let mut runtimes = vec![Runtime::new("hull", hull_bin.clone())?];
    let mut skipped_runtimes = Vec::new();
    for name in ["crun", "runc"] {
        match which(name) {
            Some(bin) => runtimes.push(Runtime::new(name, bin)?),
            None => {
                let why = format!("{name} not on PATH (apt-get install {name})");
                println!("skip: {why}");
                skipped_runtimes.push(json!({"runtime": name, "reason": why}));
            }
        }
    }

    // Declared before anything that uses cgroups so that it is dropped (undone) last.
    let hugetlb = if runtimes.iter().any(|r| r.name == "crun") {
        cgroup::ensure_hugetlb_v1()?
    } else {
        None
    };
    let cgroup_note = if hugetlb.is_some() {
        "hugetlb mounted as a cgroup v1 hierarchy at /sys/fs/cgroup/hugetlb for this run (crun \
         1.8.1 refuses the hybrid layout while cgroup2 holds hugetlb); all runtimes ran with it; \
         unmounted at exit"
    } else {
        "cgroup layout left as found"
    };

    let spec_tool = runtimes
        .iter()
        .find(|r| r.name == "runc")
        .unwrap_or(&runtimes[0]);
    let bundles = bundle::Bundles::make(&repo(), spec_tool)?;
    let floor_log = std::fs::File::options()
        .append(true)
        .create(true)
        .open(bundles.dir().join("floor.log"))
        .map_err(|e| e.to_string())?;
    let ctx = Ctx {
        runtimes: &runtimes,
        runs: o.runs,
        floor: Floor {
            rootfs: bundles.rootfs.clone(),
            log: floor_log,
        },
    };

    let date = first_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]);
    let kernel = first_line("uname", &["-sr"]);
    let hull_rev = match &o.hull {
        Some(_) => "given with --hull".to_string(),
        None => hull_source(),
    };
    let load_before = loadavg();
    println!("date: {date} (machine clock)");
    println!(
        "load average before: {load_before} (other work on the machine skews absolute figures)"
    );
    println!("kernel: {kernel}");
    for rt in &runtimes {
        println!("{}: {} ({})", rt.name, rt.version, rt.bin.display());
    }
    println!("hull source: {hull_rev}");
    println!("cgroups: {cgroup_note}");
    println!(
        "bundles: `{} spec`, args /bin/true, no terminal",
        spec_tool.name
    );
    println!(
        "runs per benchmark: {} (back to back after 3 warm-ups, or interleaved after 1 \
         warm-up round)",
        o.runs
    );

    let mut rows = Vec::new();
    println!("run, back to back...");
    rows.push(bench::run(&ctx, &bundles.true_all, Order::BackToBack)?);
    println!("run, interleaved...");
    rows.push(bench::run(&ctx, &bundles.true_all, Order::Interleaved)?);
    println!("lifecycle, back to back...");
    rows.push(bench::lifecycle(
        &ctx,
        &bundles.true_all,
        Order::BackToBack,
        "lifecycle_all_ns",
        "create+start+wait+delete, back to back",
    )?);
    println!("lifecycle, interleaved...");
    rows.push(bench::lifecycle(
        &ctx,
        &bundles.true_all,
        Order::Interleaved,
        "lifecycle_interleaved",
        "create+start+wait+delete, interleaved",
    )?);
    println!("lifecycle, no network namespace...");
    rows.push(bench::lifecycle(
        &ctx,
        &bundles.true_no_net,
        Order::BackToBack,
        "lifecycle_no_net",
        "create+start+wait+delete, no netns",
    )?);
    let mut defence_rows = Vec::new();
    for (key, title, bundle) in &bundles.defences {
        println!("lifecycle, {title}...");
        defence_rows.push(bench::lifecycle(
            &ctx,
            bundle,
            Order::BackToBack,
            key,
            title,
        )?);
    }
    println!("100 runs in a row...");
    rows.push(bench::run_many(&ctx, &bundles.true_all, 100, 3)?);
    println!("20 concurrent creates...");
    rows.push(bench::concurrent_create(&ctx, &bundles.true_all, 20, 5)?);
    println!("exec...");
    rows.push(bench::exec(&ctx, &bundles.sleeper)?);
    // Last, so that the tracing slows none of the timed rows.
    println!("run, phase by phase (traced)...");
    let phases = phases::measure(&ctx, &bundles.true_all)?;

    println!();
    report::print_table(&rows);
    for r in rows.iter().filter(|r| r.key.starts_with("lifecycle")) {
        println!();
        report::print_phases(r);
    }
    println!();
    phases::print(&phases);
    println!();
    report::print_table(&defence_rows);
    println!();
    let defence_costs = report::print_defence_costs(&defence_rows);
    let resources = bench::resources(&runtimes, &rows);
    println!();
    report::print_resources(&resources);

    let load_after = loadavg();
    println!("load average after: {load_after}");
    let summary = json!({
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "date": date,
        "kernel": kernel,
        "hull_source": hull_rev,
        "runs": o.runs,
        "cgroups": cgroup_note,
        "runtimes": runtimes.iter().map(|r| json!({"name": r.name, "version": r.version, "binary": r.bin})).collect::<Vec<_>>(),
        "skipped_runtimes": skipped_runtimes,
        "benchmarks": rows.iter().map(|r| (r.key.to_string(), r.json())).collect::<serde_json::Map<_, _>>(),
        "resources": resources,
        "defences": defence_rows.iter().map(|r| (r.key.to_string(), r.json())).collect::<serde_json::Map<_, _>>(),
        "defence_cost_ms": defence_costs,
        "phases": phases,
    });
    if let Some(dir) = o.json.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    std::fs::write(&o.json, text + "\n").map_err(|e| format!("{}: {e}", o.json.display()))?;
    println!("JSON summary: {}", o.json.display());
    let figures = o.json.with_file_name("figures.jsonl");
    if o.all {
        let _ = std::fs::remove_file(&figures);
        figures::hull(&figures, &rows, &resources)?;
    }
    drop(ctx);
    drop(bundles);
    drop(runtimes);
    drop(hugetlb);
    if o.all {
        figures::wharf(&repo(), &figures)?;
        println!("\nissue 19's figures, from this run (date {date}, load before {load_before}):");
        figures::print(&figures)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hot_text_stands_alone() {
        assert!(parse_args(&args(&["--hot-text"])).unwrap().hot_text);
        for other in [&["--runs", "5"][..], &["--all"], &["--hull", "/x"]] {
            let mut a = args(&["--hot-text"]);
            a.extend(args(other));
            let e = parse_args(&a).err().expect("refused");
            assert!(e.contains("--hot-text takes no other argument"), "{e}");
        }
        assert!(!parse_args(&args(&["--runs", "5"])).unwrap().hot_text);
    }
}
