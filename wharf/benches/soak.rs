//! Soak: `wharf run --rm --network none busybox true` with hull, a thousand times in a row,
//! and what must stay flat while it runs: mounts, open files (the kernel's count of
//! allocated file handles), the database's size on disk, what is left under the data root and
//! in the cgroup tree, and each `wharf` process's peak RSS and time. Prints the figures at the
//! start, half way and at the end. Needs root.
//!
//! Run: `cargo bench -p wharf --bench soak` (`WHARF_SOAK_RUNS=N`, default 1000). hull is the
//! workspace's release build (`WHARF_BENCH_HULL=PATH` picks another).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What is measured at a checkpoint, plus the runs since the previous one.
struct Checkpoint {
    runs: usize,
    mounts: usize,
    file_handles: u64,
    db_bytes: u64,
    wal_bytes: u64,
    containers_dirs: usize,
    wharf_cgroups: usize,
    median: Option<Duration>,
    max_rss_kib: Option<i64>,
}

fn count_lines(path: &str) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

fn subdirs(path: &Path) -> usize {
    std::fs::read_dir(path).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .count()
    })
}

fn measure(data_root: &Path, runs: usize, times: &mut [Duration], rss: &[i64]) -> Checkpoint {
    let size = |f: &str| std::fs::metadata(data_root.join(f)).map_or(0, |m| m.len());
    Checkpoint {
        runs,
        mounts: count_lines("/proc/self/mountinfo"),
        file_handles: std::fs::read_to_string("/proc/sys/fs/file-nr")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0),
        db_bytes: size("wharf.db"),
        wal_bytes: size("wharf.db-wal"),
        containers_dirs: subdirs(&data_root.join("containers")),
        wharf_cgroups: subdirs(Path::new("/sys/fs/cgroup/memory/wharf")),
        median: (!times.is_empty()).then(|| support::median(times)),
        max_rss_kib: rss.iter().copied().max(),
    }
}

/// The `/wharf` cgroup parent in each hierarchy where it exists.
fn cgroup_parents() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup").map_or(Vec::new(), |d| {
        d.flatten()
            .map(|e| e.path().join("wharf"))
            .filter(|p| p.is_dir())
            .collect()
    })
}

/// Runs one `run --rm`; its time and the wharf process's peak RSS (wait4's rusage).
fn run_once(c: &mut Command) -> Result<(Duration, i64), String> {
    let start = Instant::now();
    let child = c.spawn().map_err(|e| e.to_string())?;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child with valid out-pointers.
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let took = start.elapsed();
    if rc < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let status = std::process::ExitStatus::from_raw(status);
    if !status.success() {
        return Err(format!("wharf run --rm exited {status}"));
    }
    Ok((took, usage.ru_maxrss))
}

fn main() {
    if !support::ready("soak", &[]) {
        return;
    }
    let total: usize = support::env_or("WHARF_SOAK_RUNS", 1000);
    let parent_before = cgroup_parents();
    let hull = support::hull();
    let dir = tempfile::tempdir().unwrap();
    let wharf = PathBuf::from(env!("CARGO_BIN_EXE_wharf"));
    let (_, data_root) = support::busybox_store(&wharf, dir.path(), &["sh", "true"]);
    let mut cmd = Command::new(&wharf);
    cmd.arg("--data-root")
        .arg(&data_root)
        .arg("--runtime")
        .arg(&hull)
        .args(["run", "--rm", "--network", "none", "busybox", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut points = vec![measure(&data_root, 0, &mut [], &[])];
    let (mut times, mut rss) = (Vec::new(), Vec::new());
    for i in 1..=total {
        match run_once(&mut cmd) {
            Ok((t, kib)) => {
                times.push(t);
                rss.push(kib);
            }
            Err(e) => {
                eprintln!("run {i}: {e}");
                common::remove_network_state(&data_root);
                std::process::exit(1);
            }
        }
        if i == total / 2 || i == total {
            points.push(measure(&data_root, i, &mut times, &rss));
            times.clear();
            rss.clear();
        }
    }
    // The data root's default bridge, made with its first container.
    common::remove_network_state(&data_root);
    println!("soak: {total} x `wharf run --rm --network none busybox true` (hull)");
    println!(
        "{:>6}  {:>6}  {:>12}  {:>10}  {:>10}  {:>10}  {:>8}  {:>10}  {:>12}",
        "runs",
        "mounts",
        "file handles",
        "db bytes",
        "wal bytes",
        "containers",
        "cgroups",
        "median ms",
        "max RSS KiB"
    );
    for p in &points {
        println!(
            "{:>6}  {:>6}  {:>12}  {:>10}  {:>10}  {:>10}  {:>8}  {:>10}  {:>12}",
            p.runs,
            p.mounts,
            p.file_handles,
            p.db_bytes,
            p.wal_bytes,
            p.containers_dirs,
            p.wharf_cgroups,
            p.median
                .map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0)),
            p.max_rss_kib.map_or("-".into(), |k| k.to_string()),
        );
    }
    // wharf keeps its empty `/wharf` parent, as docker keeps `/docker`; the bench takes back
    // the ones it caused.
    for dir in cgroup_parents() {
        if !parent_before.contains(&dir) {
            let _ = std::fs::remove_dir(&dir);
        }
    }
    println!(
        "(median and max RSS are over the runs since the previous line; file handles are the \
         kernel's count for the whole machine; cgroups are the directories left under the \
         memory hierarchy's /wharf; the WAL is SQLite's, checkpointed into the database at \
         4 MB)"
    );
}
