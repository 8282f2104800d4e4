//! What a container's monitor costs while the container idles: CPU time (the monitor's
//! own and its reaped children's, which is where a healthcheck's probes go) over a window
//! and the memory at its end (RSS, and PSS: its share of the pages it maps with others),
//! for wharf's monitor with each runtime, without a healthcheck and with docker's default
//! 30 s one, beside podman's conmon (no check: podman runs its checks from systemd timers,
//! outside conmon). Prints the figures and what the check adds to the same monitor
//! without one.
//!
//! The figure compares like with like: `WHARF_BENCH_MONITORS` (default 20) idle containers
//! of wharf + hull and as many of podman + crun, each row's PSS the mean over its monitors,
//! as issue 19's anchor (conmon's 0.42 MB) was measured. PSS divides each shared page
//! among the processes mapping it, so a lone monitor would carry all of its program text.
//!
//! Run: `cargo bench -p wharf --bench monitor` (`WHARF_BENCH_WINDOW=SECONDS`, default
//! 65: two probes of a 30 s check). Needs root, podman, crun and runc.
//!
//! crun 1.8.1 refuses this machine's hybrid cgroup layout while cgroup2 holds hugetlb,
//! so hugetlb is mounted as a v1 hierarchy for the bench and unmounted at the end.

#[path = "../../benches/src/cgroup.rs"]
mod cgroup;
#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The proportional set size of `pid` in kB: its private pages plus its share of the pages
/// it maps with other processes (every wharf monitor shares wharf's text).
fn pss(pid: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .ok()
}

/// CPU time (self and reaped children) in milliseconds and VmRSS in kB of `pid`.
fn usage(pid: i32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    // Fields 14-17 (utime, stime, cutime, cstime) are 11-14 after the state.
    let ticks: u64 = fields[11..15]
        .iter()
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .ok()?;
    Some((ticks as f64 * 1000.0 / hz, rss))
}

/// The parent of a container's init: its monitor (wharf's, as subreaper) or conmon.
fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

fn output(mut c: Command, what: &str) -> Result<String, String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One row of the table: the monitors of its containers, and their usage when the window
/// opened.
struct Row {
    name: String,
    monitors: Vec<i32>,
    start: Vec<(f64, u64)>,
}

fn main() {
    if !support::ready("monitor", &["podman", "crun", "runc"]) {
        return;
    }
    let window: u64 = support::env_or("WHARF_BENCH_WINDOW", 65);
    // At least one: the rows are means over their monitors.
    let many: usize = support::env_or("WHARF_BENCH_MONITORS", 20usize).max(1);
    let hull = support::hull();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("busybox.tar");
    support::rootfs_tar(&tar, &["sh", "true", "sleep"]);
    let wharf_bin = PathBuf::from(env!("CARGO_BIN_EXE_wharf"));
    let data_root = dir.path().join("wharf");
    let wharf = |rt: &str| {
        let mut c = Command::new(&wharf_bin);
        c.arg("--data-root")
            .arg(&data_root)
            .arg("--runtime")
            .arg(rt);
        c
    };
    let pod_dir = dir.path().join("podman");
    let conf = support::podman_conf(dir.path());
    let podman = || {
        let mut c = common::podman(&pod_dir);
        c.env("CONTAINERS_CONF", &conf);
        c
    };
    // Nothing may panic while the host's cgroup layout is changed (the bench profile
    // aborts on panic, which would skip the guard): failures end the run instead.
    let hugetlb = cgroup::ensure_hugetlb_v1().expect("hugetlb as cgroup v1 for crun");
    let measured = measure(&wharf, &podman, &tar, &hull, window, many);
    let mut ids = wharf("runc");
    ids.args(["ps", "-aq"]);
    if let Ok(ids) = output(ids, "wharf ps") {
        let mut rm = wharf("runc");
        rm.args(["rm", "-f"]).args(ids.split_whitespace());
        let _ = rm.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
    let mut reset = podman();
    reset.args(["system", "reset", "--force"]);
    let _ = reset.stdout(Stdio::null()).stderr(Stdio::null()).status();
    common::remove_cgroup_tree("libpod_parent");
    common::remove_empty_cgroup_parents(&["wharf"]);
    // The data root's default bridge, made with its first container.
    common::remove_network_state(&data_root);
    // Only now: a cgroup left in the v1 hugetlb hierarchy would keep hugetlb there.
    drop(hugetlb);
    match measured {
        Ok(rows) => report(&rows, window),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// A row's figures, each the mean over its monitors.
struct Measured {
    name: String,
    monitors: usize,
    cpu_ms: f64,
    rss_kb: u64,
    pss_kb: u64,
}

/// Starts the containers, waits the window and returns each row's figures.
fn measure(
    wharf: &dyn Fn(&str) -> Command,
    podman: &dyn Fn() -> Command,
    tar: &Path,
    hull: &Path,
    window: u64,
    many: usize,
) -> Result<Vec<Measured>, String> {
    let mut import = wharf("runc");
    import.arg("import").arg(tar).arg("busybox");
    output(import, "wharf import")?;
    let mut import = podman();
    import.arg("import").arg(tar).arg("busybox");
    output(import, "podman import")?;
    let mut rows = Vec::new();
    let runtimes = [
        ("hull", hull.display().to_string()),
        ("crun", "crun".to_string()),
        ("runc", "runc".to_string()),
    ];
    let mut n = 0;
    for (label, rt) in &runtimes {
        for check in [false, true] {
            // The compared row has many monitors; the others, there for their CPU, one.
            let count = if *label == "hull" && !check { many } else { 1 };
            let mut monitors = Vec::new();
            for _ in 0..count {
                let name = format!("idle{n}");
                n += 1;
                let mut run = wharf(rt);
                run.args(["run", "-d", "--network", "none", "--name", &name]);
                if check {
                    run.args(["--health-cmd", "true", "--health-interval", "30s"]);
                }
                run.args(["busybox", "sleep", "3600"]);
                output(run, "wharf run")?;
                let mut pid = wharf(rt);
                pid.args(["inspect", "-f", "{{.State.Pid}}", &name]);
                let pid: i32 = output(pid, "wharf inspect")?
                    .parse()
                    .map_err(|e| format!("pid of {name}: {e}"))?;
                monitors.push(parent(pid).ok_or("no monitor")?);
            }
            let suffix = if check { " + 30s check" } else { "" };
            rows.push(Row {
                name: format!("wharf + {label}{suffix}"),
                monitors,
                start: Vec::new(),
            });
        }
    }
    let mut conmons = Vec::new();
    for _ in 0..many {
        let mut run = podman();
        run.args([
            "--runtime",
            "crun",
            "run",
            "-d",
            "--network",
            "none",
            "busybox",
        ])
        .args(["sleep", "3600"]);
        let id = output(run, "podman run")?;
        let mut pid = podman();
        pid.args(["inspect", "-f", "{{.State.Pid}}", &id]);
        let pid: i32 = output(pid, "podman inspect")?
            .parse()
            .map_err(|e| format!("podman pid: {e}"))?;
        conmons.push(parent(pid).ok_or("no conmon")?);
    }
    rows.push(Row {
        name: "podman + crun (conmon)".into(),
        monitors: conmons,
        start: Vec::new(),
    });
    // Start-up is not idling: the window opens once everything has settled.
    std::thread::sleep(Duration::from_secs(2));
    for r in &mut rows {
        r.start = r
            .monitors
            .iter()
            .map(|m| usage(*m).ok_or(format!("{} is gone", r.name)))
            .collect::<Result<_, _>>()?;
    }
    std::thread::sleep(Duration::from_secs(window));
    rows.iter()
        .map(|r| {
            let (mut cpu, mut rss, mut pss_sum) = (0.0, 0, 0);
            for (m, start) in r.monitors.iter().zip(&r.start) {
                let (c, s) = usage(*m).ok_or(format!("{} is gone", r.name))?;
                cpu += c - start.0;
                rss += s;
                pss_sum += pss(*m).ok_or(format!("{} is gone", r.name))?;
            }
            let k = r.monitors.len();
            Ok(Measured {
                name: r.name.clone(),
                monitors: k,
                cpu_ms: cpu / k as f64,
                rss_kb: rss / k as u64,
                pss_kb: pss_sum / k as u64,
            })
        })
        .collect()
}

fn report(rows: &[Measured], window: u64) {
    let pss = |n: &str| {
        rows.iter()
            .find(|r| r.name == n)
            .map(|r| r.pss_kb as f64 / 1024.0)
    };
    if let (Some(w), Some(c)) = (pss("wharf + hull"), pss("podman + crun (conmon)")) {
        support::figure(
            "idle monitor PSS (wharf + hull)",
            (w, "MiB"),
            ("conmon", c),
            1.0,
        );
    }
    println!(
        "monitor of an idle container over {window}s: CPU (own and reaped children's), RSS and PSS, each the mean over the row's monitors"
    );
    println!(
        "{:<28} {:>8} {:>12} {:>9} {:>9} {:>24}",
        "", "monitors", "CPU ms/min", "RSS kB", "PSS kB", "the check adds"
    );
    let per_min = |ms: f64| ms * 60.0 / window as f64;
    for r in rows {
        // An idle monitor's CPU is near zero, so the check's cost is a difference, not a
        // ratio.
        let added = r
            .name
            .strip_suffix(" + 30s check")
            .and_then(|base| rows.iter().find(|b| b.name == base))
            .map(|b| {
                format!(
                    "{:+.1} ms/min, {:+} kB",
                    per_min(r.cpu_ms) - per_min(b.cpu_ms),
                    r.rss_kb as i64 - b.rss_kb as i64
                )
            })
            .unwrap_or_default();
        println!(
            "{:<28} {:>8} {:>12.1} {:>9} {:>9} {:>24}",
            r.name,
            r.monitors,
            per_min(r.cpu_ms),
            r.rss_kb,
            r.pss_kb,
            added
        );
    }
}
