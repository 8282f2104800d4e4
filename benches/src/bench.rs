//! The benchmarks: each runtime and the floor timed back to back as hyperfine times one
//! command, or interleaved (`Order`); a runtime that fails is dropped from that benchmark with
//! its error recorded, and the others go on.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::proc::{self, reap_orphans};
use crate::report::Row;
use crate::runtime::{Container, Runtime};
use crate::stats::{median_u64, Summary};
use crate::steal::{Mark, Window};
use integration::unique;

/// Everything a benchmark needs.
pub struct Ctx<'a> {
    pub runtimes: &'a [Runtime],
    pub runs: usize,
    pub floor: Floor,
}

/// How to run the floor (`unshare ... chroot ROOTFS /bin/true`).
pub struct Floor {
    pub rootfs: PathBuf,
    /// stderr of the floor runs.
    pub log: File,
}

impl Floor {
    fn run(&self, namespaces: &[String]) -> Result<Duration, String> {
        self.run_outcome(namespaces).map(|o| o.elapsed)
    }

    /// One run of the floor, checked for its exit status.
    pub fn run_outcome(&self, namespaces: &[String]) -> Result<proc::Outcome, String> {
        let c = crate::floor::command(namespaces, &self.rootfs)?;
        let out = proc::run_timed(c, &self.log)?;
        if out.exit_code != 0 {
            return Err(format!("floor exited {}", out.exit_code));
        }
        Ok(out)
    }
}

/// Unrecorded samples before a runtime's recorded ones, back to back, as `hyperfine
/// --warmup 3` takes them.
pub const WARMUPS: usize = 3;

/// Per-runtime samples of one benchmark, with runtimes dropped on their first error, and the
/// host's steal time over each recorded sample (from its `mark` to its end), charged to its
/// runtime.
struct Series {
    samples: BTreeMap<String, Vec<Duration>>,
    failed: BTreeMap<String, String>,
    steal: BTreeMap<String, Window>,
    start: Mark,
}

impl Series {
    fn new() -> Series {
        Series {
            samples: BTreeMap::new(),
            failed: BTreeMap::new(),
            steal: BTreeMap::new(),
            start: Mark::now(),
        }
    }

    /// A sample starts now (every sample marks its start): what ran since the previous record
    /// (clean-up, set-up) is not its.
    fn mark(&mut self) {
        self.start = Mark::now();
    }

    fn live(&self, name: &str) -> bool {
        !self.failed.contains_key(name)
    }

    /// Records one sample or the error that ends this runtime's part in the benchmark.
    fn record(&mut self, name: &str, r: Result<Duration, String>, keep: bool) {
        self.record_ended(name, r, keep, Mark::now());
    }

    /// `record` of a sample that ended at `end`, before untimed work.
    fn record_ended(&mut self, name: &str, r: Result<Duration, String>, keep: bool, end: Mark) {
        let window = self.start.until(end);
        match r {
            Ok(d) if keep => {
                *self.steal.entry(name.to_string()).or_default() += window;
                self.samples.entry(name.to_string()).or_default().push(d);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("  {name} failed: {e}");
                self.failed.insert(name.to_string(), e);
            }
        }
    }

    fn into_row(self, mut row: Row) -> Row {
        for (name, s) in &self.samples {
            if let Some(sum) = Summary::of(s) {
                row.results.push((name.clone(), sum));
            }
        }
        for (name, e) in self.failed {
            row.skipped.push((name, format!("failed: {e}")));
        }
        row.steal = self.steal.into_iter().collect();
        row
    }
}

/// create + start + wait + delete of `/bin/true`, timed as a whole and per phase, then the
/// peak RSS of each runtime process (`peak_rss`; the container is not theirs to reap: we are
/// the subreaper, so this is the runtime process alone).
pub fn lifecycle(
    ctx: &Ctx,
    bundle: &Path,
    order: Order,
    key: &'static str,
    title: &str,
) -> Result<Row, String> {
    let ns = crate::bundle::namespaces(bundle)?;
    let mut series = Series::new();
    let mut phases: BTreeMap<String, [Vec<Duration>; 4]> = BTreeMap::new();
    order.sample(ctx, &mut series, &ns, |rt, keep| {
        let r = one_lifecycle(rt, bundle).map(|(total, p)| {
            if keep {
                let ph = phases.entry(rt.name.to_string()).or_default();
                for (v, d) in ph.iter_mut().zip(p) {
                    v.push(d);
                }
            }
            total
        });
        reap_orphans();
        r
    })?;
    let rss = peak_rss(ctx, &series, |rt| {
        let (mut c, created) = Container::create_measured(rt, bundle)?;
        let started = rt.peak_rss(&["start", &c.id])?;
        c.wait()?;
        let deleted = c.delete_measured()?;
        reap_orphans();
        Ok(created.max(started).max(deleted))
    })?;
    let mut row = series.into_row(Row::new(key, title.to_string(), "ms per container"));
    for (name, ph) in phases {
        let med = |v: &[Duration]| Summary::of(v).map(|s| s.median);
        row.extra.insert(
            name.clone(),
            json!({
                "phase_median_ms": {
                    "create": med(&ph[0]), "start": med(&ph[1]),
                    "wait": med(&ph[2]), "delete": med(&ph[3]),
                },
                "peak_rss_kb_median": rss.get(&name),
            }),
        );
    }
    Ok(row)
}

/// How the samples of a benchmark are taken. Neither pauses between samples: a user's
/// containers start back to back, and a pause (this bench once slept 100 ms before each)
/// makes every runtime that writes cgroup.procs wait for a fresh RCU grace period, which
/// back-to-back runs share - it priced crun at 24 ms where hyperfine measures 9-11 ms.
#[derive(Clone, Copy)]
pub enum Order {
    /// As `hyperfine -N --warmup 3` times one command: each runtime's runs in a row after
    /// three unrecorded warm-ups, then the next runtime's, then the floor's.
    BackToBack,
    /// One unrecorded warm-up round, then rounds of hull, crun, runc, floor, hull, ...: drift
    /// on this noisy machine hits them all alike.
    Interleaved,
}

impl Order {
    pub fn label(self) -> &'static str {
        match self {
            Order::BackToBack => "back to back",
            Order::Interleaved => "interleaved",
        }
    }

    /// Takes `ctx.runs` recorded samples of `sample(runtime, keep)` for every runtime still in
    /// the series, and of the floor.
    fn sample(
        self,
        ctx: &Ctx,
        series: &mut Series,
        namespaces: &[String],
        mut sample: impl FnMut(&Runtime, bool) -> Result<Duration, String>,
    ) -> Result<(), String> {
        let mut one = |name: &str, keep: bool, series: &mut Series| -> Result<(), String> {
            proc::check_interrupted()?;
            if !series.live(name) {
                return Ok(());
            }
            series.mark();
            let r = match ctx.runtimes.iter().find(|r| r.name == name) {
                Some(rt) => sample(rt, keep),
                None => ctx.floor.run(namespaces),
            };
            series.record(name, r, keep);
            Ok(())
        };
        let names: Vec<&str> = ctx
            .runtimes
            .iter()
            .map(|r| r.name)
            .chain(["floor"])
            .collect();
        match self {
            Order::BackToBack => {
                for name in &names {
                    for i in 0..WARMUPS + ctx.runs {
                        one(name, i >= WARMUPS, series)?;
                    }
                }
            }
            Order::Interleaved => {
                for i in 0..=ctx.runs {
                    for name in &names {
                        one(name, i > 0, series)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// One container's life; returns the total and the four phase times.
fn one_lifecycle(rt: &Runtime, bundle: &Path) -> Result<(Duration, [Duration; 4]), String> {
    let t0 = Instant::now();
    let (mut c, _) = Container::create(rt, bundle)?;
    let t1 = Instant::now();
    c.start()?;
    let t2 = Instant::now();
    c.wait()?;
    let t3 = Instant::now();
    c.delete()?;
    let t4 = Instant::now();
    Ok((t4 - t0, [t1 - t0, t2 - t1, t3 - t2, t4 - t3]))
}

/// Foreground `run` of `/bin/true` to completion; back to back, then the peak RSS of the
/// runtime process (`peak_rss`).
pub fn run(ctx: &Ctx, bundle: &Path, order: Order) -> Result<Row, String> {
    let ns = crate::bundle::namespaces(bundle)?;
    let mut series = Series::new();
    order.sample(ctx, &mut series, &ns, |rt, _| run_once(rt, bundle))?;
    let rss = match order {
        Order::BackToBack => peak_rss(ctx, &series, |rt| {
            let id = unique("hb");
            let kb = rt.peak_rss(&["run", "--bundle", &bundle.to_string_lossy(), &id]);
            remove_state(rt, &id)?;
            kb
        })?,
        Order::Interleaved => BTreeMap::new(),
    };
    let key = match order {
        Order::BackToBack => "run",
        Order::Interleaved => "run_interleaved",
    };
    let mut row = series.into_row(Row::new(
        key,
        format!("run /bin/true, {}", order.label()),
        "ms per container",
    ));
    for (name, kb) in rss {
        row.extra.insert(name, json!({"peak_rss_kb_median": kb}));
    }
    Ok(row)
}

/// Runs behind each runtime's peak RSS, taken after its timed samples.
const RSS_RUNS: usize = 5;

/// The median peak RSS (KiB) of `RSS_RUNS` runs of `one` for each runtime still in `series`,
/// under GNU time (`Runtime::peak_rss`), apart from the timed samples, which it would slow.
/// A runtime whose measurement fails is left out with a warning, its timings kept.
fn peak_rss(
    ctx: &Ctx,
    series: &Series,
    mut one: impl FnMut(&Runtime) -> Result<u64, String>,
) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    for rt in ctx.runtimes.iter().filter(|rt| series.live(rt.name)) {
        let mut kb = Vec::new();
        for _ in 0..RSS_RUNS {
            proc::check_interrupted()?;
            match one(rt) {
                Ok(k) => kb.push(k),
                Err(e) => {
                    eprintln!("peak RSS of {}: {e}", rt.name);
                    break;
                }
            }
        }
        if kb.len() == RSS_RUNS {
            out.insert(rt.name.to_string(), median_u64(&kb).unwrap_or_default());
        }
    }
    Ok(out)
}

/// One foreground `run`; its state is deleted afterwards (untimed) should the runtime leave it.
/// Nothing else runs between two runs: a `delete --force` after every run (as this did until
/// 2026-12-06) gave the kernel the time of one more process start to finish the previous
/// run's teardown (network namespace cleanup, RCU callbacks), which back-to-back runs of a
/// user's shell or hyperfine do not have; hull's `run`, which keeps both CPUs busy, gained
/// most from it (0.54x crun here against 0.67x in a plain hyperfine the same hour).
fn run_once(rt: &Runtime, bundle: &Path) -> Result<Duration, String> {
    run_outcome(rt, bundle).map(|o| o.elapsed)
}

/// A foreground `run` of `/bin/true` to completion, its state removed after.
pub fn run_outcome(rt: &Runtime, bundle: &Path) -> Result<proc::Outcome, String> {
    let id = unique("hb");
    let r = rt.timed(&["run", "--bundle", &bundle.to_string_lossy(), &id]);
    remove_state(rt, &id)?;
    r
}

/// Deletes what a `run` left of `id`, if anything, and reaps orphans.
fn remove_state(rt: &Runtime, id: &str) -> Result<(), String> {
    if rt.has_state(id) {
        let _ = proc::run_timed(rt.command(&["delete", "--force", id]), &null_log()?);
    }
    reap_orphans();
    Ok(())
}

/// `n` foreground runs in a row, timed as one batch; `rounds` interleaved rounds.
pub fn run_many(ctx: &Ctx, bundle: &Path, n: usize, rounds: usize) -> Result<Row, String> {
    let ns = crate::bundle::namespaces(bundle)?;
    let mut series = Series::new();
    for _ in 0..rounds {
        proc::check_interrupted()?;
        for rt in ctx.runtimes {
            if !series.live(rt.name) {
                continue;
            }
            // The sum of the runs themselves (nothing runs between them but the bench's
            // check for left state).
            series.mark();
            let r = (0..n).try_fold(Duration::ZERO, |sum, _| {
                run_once(rt, bundle).map(|d| sum + d)
            });
            series.record(rt.name, r, true);
        }
        if series.live("floor") {
            series.mark();
            let r = (0..n).try_fold(Duration::ZERO, |sum, _| ctx.floor.run(&ns).map(|d| sum + d));
            series.record("floor", r, true);
        }
    }
    Ok(series.into_row(Row::new(
        "run_100",
        format!("{n} runs in a row (total)"),
        "ms per batch",
    )))
}

/// `n` containers created at once (one thread per `create`), timed until the last returns;
/// they are then killed and deleted untimed.
pub fn concurrent_create(ctx: &Ctx, bundle: &Path, n: usize, rounds: usize) -> Result<Row, String> {
    let mut series = Series::new();
    for _ in 0..rounds {
        proc::check_interrupted()?;
        for rt in ctx.runtimes {
            if !series.live(rt.name) {
                continue;
            }
            series.mark();
            let t0 = Instant::now();
            let made: Vec<Result<Container, String>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..n)
                    .map(|_| s.spawn(|| Container::create(rt, bundle).map(|(c, _)| c)))
                    .collect();
                hs.into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err("create thread panicked".into()))
                    })
                    .collect()
            });
            let elapsed = t0.elapsed();
            let end = Mark::now();
            let mut err = None;
            for m in made {
                match m {
                    Ok(mut c) => {
                        if let Err(e) = c.remove() {
                            err.get_or_insert(e);
                        }
                    }
                    Err(e) => {
                        err.get_or_insert(e);
                    }
                }
            }
            reap_orphans();
            series.record_ended(rt.name, err.map_or(Ok(elapsed), Err), true, end);
        }
    }
    Ok(series.into_row(Row::new(
        "concurrent_create",
        format!("{n} concurrent creates (wall)"),
        "ms per batch",
    )))
}

/// `exec /bin/true` into a running `sleep` container; runtimes without `exec` are skipped.
pub fn exec(ctx: &Ctx, bundle: &Path) -> Result<Row, String> {
    let mut series = Series::new();
    let mut skipped = Vec::new();
    let mut targets = Vec::new();
    for rt in ctx.runtimes {
        if !rt.supports("exec") {
            let why = format!("`{} exec --help` fails: exec is not implemented", rt.name);
            println!("skip: exec latency for {}: {why}", rt.name);
            skipped.push((rt.name.to_string(), why));
            continue;
        }
        match Container::create(rt, bundle).and_then(|(c, _)| c.start().map(|_| c)) {
            Ok(c) => targets.push(c),
            Err(e) => series.record(rt.name, Err(e), false),
        }
    }
    for i in 0..=ctx.runs {
        proc::check_interrupted()?;
        for c in &targets {
            if !series.live(c.rt.name) {
                continue;
            }
            series.mark();
            let r = c.rt.timed(&["exec", &c.id, "/bin/true"]).map(|o| o.elapsed);
            series.record(c.rt.name, r, i > 0);
        }
    }
    drop(targets);
    reap_orphans();
    let mut row = series.into_row(Row::new(
        "exec",
        "exec /bin/true (running ctr)".to_string(),
        "ms per exec",
    ));
    row.skipped.extend(skipped);
    Ok(row)
}

/// Peak RSS (KiB) and binary size of each runtime, from the rows above.
pub fn resources(runtimes: &[Runtime], rows: &[Row]) -> Value {
    let mut out = serde_json::Map::new();
    for rt in runtimes {
        let from = |key: &str| {
            rows.iter()
                .find(|r| r.key == key)
                .and_then(|r| r.extra.get(rt.name))
                .and_then(|v| v["peak_rss_kb_median"].as_u64())
        };
        let size = std::fs::metadata(&rt.bin).map(|m| m.len()).ok();
        let stripped = stripped_size(&rt.bin);
        out.insert(
            rt.name.to_string(),
            json!({
                "binary": rt.bin,
                "binary_bytes": size,
                "binary_bytes_stripped": stripped,
                "peak_rss_kb_run": from("run"),
                "peak_rss_kb_lifecycle": from("lifecycle_all_ns"),
            }),
        );
    }
    Value::Object(out)
}

/// The size after `strip --strip-all`: cargo's release profile keeps the symbol table while
/// Debian ships runc and crun fully stripped, so this is the like-for-like figure.
fn stripped_size(bin: &Path) -> Option<u64> {
    let tmp = std::env::temp_dir().join(unique("hull-bench-strip"));
    let ok = std::process::Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&tmp)
        .arg(bin)
        .output()
        .is_ok_and(|o| o.status.success());
    let size = std::fs::metadata(&tmp).map(|m| m.len()).ok().filter(|_| ok);
    let _ = std::fs::remove_file(&tmp);
    size
}

/// A sink for the stderr of cleanup commands whose failure is expected and ignored.
fn null_log() -> Result<File, String> {
    File::options()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))
}
