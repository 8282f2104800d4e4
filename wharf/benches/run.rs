//! `wharf run --rm --network none busybox true` against `podman run --rm --network none`
//! of the same image, and wharf driving hull, crun and runc; then `run -d` of a sleeping
//! container followed by `rm -f` of it, wharf + hull against podman + crun. All rows
//! interleaved in one run; prints medians and ratios to wharf + hull. Needs root, podman, crun and runc. (What networking
//! adds is the `network` bench's.)
//!
//! Run: `cargo bench -p wharf --bench run` (`WHARF_BENCH_RUNS=N`, default 20 samples per
//! row after one warm-up round). hull is the workspace's release build, built first if
//! missing (`WHARF_BENCH_HULL=PATH` picks another).
//!
//! crun 1.8.1 refuses this machine's hybrid cgroup layout while cgroup2 holds hugetlb,
//! so hugetlb is mounted as a v1 hierarchy for the bench (every row then runs with it)
//! and unmounted at the end, with the helper the hull benches use.

#[path = "../../benches/src/cgroup.rs"]
mod cgroup;
#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A row: the commands of one sample, run in order and timed together.
struct Row {
    name: String,
    cmds: Box<dyn Fn() -> Vec<Command>>,
    samples: Vec<Duration>,
}

fn check(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const DETACHED_WHARF: &str = "wharf + hull, run -d + rm -f";
const DETACHED_PODMAN: &str = "podman + crun, run -d + rm -f";

/// One warm-up round, then `runs` rounds of every row in turn.
fn sample(rows: &mut [Row], runs: usize) -> Result<(), String> {
    for round in 0..=runs {
        for r in rows.iter_mut() {
            let start = Instant::now();
            for mut c in (r.cmds)() {
                c.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                let out = c.output().map_err(|e| format!("{}: {e}", r.name))?;
                if !out.status.success() {
                    return Err(format!(
                        "{} failed: {}",
                        r.name,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            let took = start.elapsed();
            if round > 0 {
                r.samples.push(took);
            }
        }
    }
    Ok(())
}

fn main() {
    if !support::ready("run", &["podman", "crun", "runc"]) {
        return;
    }
    let runs: usize = support::env_or("WHARF_BENCH_RUNS", 20);
    let hull = support::hull();
    let dir = tempfile::tempdir().unwrap();
    let wharf = PathBuf::from(env!("CARGO_BIN_EXE_wharf"));
    let (tar, data_root) = support::busybox_store(&wharf, dir.path(), &["sh", "true", "sleep"]);
    let pod_dir = dir.path().join("podman");
    let conf = support::podman_conf(dir.path());
    let podman = {
        let (pod_dir, conf) = (pod_dir.clone(), conf.clone());
        move || {
            let mut c = common::podman(&pod_dir);
            c.env("CONTAINERS_CONF", &conf);
            c
        }
    };
    let mut import = podman();
    import.arg("import").arg(&tar).arg("busybox");
    check(import, "podman import");
    let mut rows: Vec<Row> = Vec::new();
    for (label, rt) in [
        ("hull", hull.display().to_string()),
        ("crun", "crun".to_string()),
        ("runc", "runc".to_string()),
    ] {
        let (wharf, data_root) = (wharf.clone(), data_root.clone());
        rows.push(Row {
            name: format!("wharf + {label}"),
            cmds: Box::new(move || {
                let mut c = Command::new(&wharf);
                c.arg("--data-root")
                    .arg(&data_root)
                    .arg("--runtime")
                    .arg(&rt)
                    .args(["run", "--rm", "--network", "none", "busybox", "true"]);
                vec![c]
            }),
            samples: Vec::new(),
        });
    }
    for rt in ["crun", "runc"] {
        let podman = podman.clone();
        rows.push(Row {
            name: format!("podman + {rt}"),
            cmds: Box::new(move || {
                let mut c = podman();
                c.args(["--runtime", rt, "run", "--rm", "--network", "none"])
                    .args(["busybox", "true"]);
                vec![c]
            }),
            samples: Vec::new(),
        });
    }
    {
        let (wharf, data_root, hull) = (wharf.clone(), data_root.clone(), hull.clone());
        rows.push(Row {
            name: DETACHED_WHARF.into(),
            cmds: Box::new(move || {
                let w = |args: &[&str]| {
                    let mut c = Command::new(&wharf);
                    c.arg("--data-root")
                        .arg(&data_root)
                        .arg("--runtime")
                        .arg(&hull)
                        .args(args);
                    c
                };
                vec![
                    w(&[
                        "run",
                        "-d",
                        "--name",
                        "benchd",
                        "--network",
                        "none",
                        "busybox",
                        "sleep",
                        "60",
                    ]),
                    w(&["rm", "-f", "benchd"]),
                ]
            }),
            samples: Vec::new(),
        });
    }
    {
        let podman = podman.clone();
        rows.push(Row {
            name: DETACHED_PODMAN.into(),
            cmds: Box::new(move || {
                let mut run = podman();
                run.args(["--runtime", "crun", "run", "-d", "--name", "benchd"])
                    .args(["--network", "none", "busybox", "sleep", "60"]);
                let mut rm = podman();
                rm.args(["--runtime", "crun", "rm", "-f", "-t", "0", "benchd"]);
                vec![run, rm]
            }),
            samples: Vec::new(),
        });
    }
    // Nothing may panic while the host's cgroup layout is changed (the bench profile
    // aborts on panic, which would skip the guard): failures end the loop instead.
    let hugetlb = cgroup::ensure_hugetlb_v1().expect("hugetlb as cgroup v1 for crun");
    let failure = sample(&mut rows, runs);
    // What the rows left (a detached container whose `rm` did not run, podman's storage,
    // the cgroup parents) goes whether or not every sample succeeded.
    let _ = Command::new(&wharf)
        .arg("--data-root")
        .arg(&data_root)
        .args(["rm", "-f", "benchd"])
        .output();
    let mut reset = podman();
    reset.args(["system", "reset", "--force"]);
    let _ = reset.stdout(Stdio::null()).stderr(Stdio::null()).status();
    common::remove_cgroup_tree("libpod_parent");
    common::remove_empty_cgroup_parents(&["wharf"]);
    // The data root's default bridge, made with its first container.
    common::remove_network_state(&data_root);
    // Only now: a cgroup left in the v1 hugetlb hierarchy (the last detached container's)
    // would keep hugetlb there, and crun would then write plain files under its mount point.
    drop(hugetlb);
    if let Err(e) = failure {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let (mut detached, mut rows): (Vec<Row>, Vec<Row>) = rows
        .into_iter()
        .partition(|r| r.name == DETACHED_WHARF || r.name == DETACHED_PODMAN);
    let medians: Vec<(String, Duration)> = rows
        .iter_mut()
        .map(|r| (r.name.clone(), support::median(&mut r.samples)))
        .collect();
    let base = medians[0].1;
    println!(
        "run --rm busybox true, {runs} samples each, interleaved; median and ratio to wharf + hull"
    );
    println!("{:<16} {:>10} {:>8}", "", "median", "ratio");
    for (name, m) in &medians {
        println!(
            "{:<16} {:>8.1}ms {:>7.2}x",
            name,
            m.as_secs_f64() * 1000.0,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
    let pod = medians
        .iter()
        .find(|(n, _)| n == "podman + crun")
        .map(|m| m.1);
    let wcrun = medians
        .iter()
        .find(|(n, _)| n == "wharf + crun")
        .map(|m| m.1);
    if let (Some(p), Some(w)) = (pod, wcrun) {
        println!(
            "same runtime (crun): podman / wharf = {:.2}x",
            p.as_secs_f64() / w.as_secs_f64()
        );
    }
    let by = |n: &str| medians.iter().find(|(m, _)| m == n).map(|m| ms(m.1));
    if let (Some(w), Some(p)) = (by("wharf + hull"), by("podman + crun")) {
        support::figure(
            "wharf run --rm --network none busybox true (hull)",
            (w, "ms"),
            ("podman + crun", p),
            0.3,
        );
    }
    let d: Vec<Duration> = detached
        .iter_mut()
        .map(|r| support::median(&mut r.samples))
        .collect();
    println!(
        "run -d busybox sleep 60, then rm -f: {DETACHED_WHARF} {:.1}ms, {DETACHED_PODMAN} {:.1}ms: wharf / podman = {:.2}x",
        d[0].as_secs_f64() * 1000.0,
        d[1].as_secs_f64() * 1000.0,
        d[0].as_secs_f64() / d[1].as_secs_f64()
    );
    support::figure(
        "wharf run -d, then rm -f (hull)",
        (ms(d[0]), "ms"),
        (DETACHED_PODMAN, ms(d[1])),
        0.3,
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
