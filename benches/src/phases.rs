//! Where a foreground `run` spends its time, phase by phase, for each runtime and the floor,
//! from the kernel's own timestamps: a private tracefs instance records every process's exec
//! and exit and every new task (`task_newtask`, whose clone flags tell a thread from a
//! process), on the `mono` clock, the bench's CLOCK_MONOTONIC. Syscall events would put
//! every task of the machine on the slow system-call path, a cost that grows with each
//! runtime's system calls, so the end of a sample is the bench's own reading of the clock
//! after it reaped the runtime.
//!
//! Phases of one sample, whose runtime process is P and whose container process runs
//! `/bin/true`:
//! - to the clone: P's first exec to the fork of P's child on the way to `/bin/true` (crun's
//!   and runc's container process is a descendant of that child);
//! - set-up: that fork to the exec of `/bin/true` (the floor's chroot(1) starts here; a
//!   floor without a pid namespace forks nothing, and its set-up is then 0);
//! - `/bin/true`: its exec to its exit (its own glibc start-up is most of it);
//! - teardown: its exit until the bench reaps P. A process's exit event comes before the
//!   kernel frees its namespaces, which the floor's unshare(1) holds itself: so the end is
//!   the reaping, which a caller waits for.
//!
//! It also counts the programs each runtime executes on the way (crun executes itself again
//! from a sealed memfd): on some hosts starting a glibc program is dear (README).
//! The bench's pids must be the trace's: it runs in the initial pid namespace.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::bench::{run_outcome, Ctx, WARMUPS};
use crate::proc::{self, Outcome};
use crate::runtime::Runtime;
use crate::stats::median_sorted;
use integration::unique;

const TRACEFS: &str = "/sys/kernel/tracing";
const EVENTS: [&str; 3] = [
    "sched/sched_process_exec",
    "sched/sched_process_exit",
    "task/task_newtask",
];
/// Instances of this bench are named PREFIX-PID-N (`unique`).
const PREFIX: &str = "hull-bench-phases";
/// The container's program in the bench's bundles.
const CONTAINER_PROGRAM: &str = "/bin/true";
const CLONE_THREAD: u64 = 0x10000;

/// A tracefs instance of our own (its own buffer, clock and event switches, so a trace
/// someone else runs is left alone), removed on drop.
struct Instance {
    dir: PathBuf,
}

impl Instance {
    fn new() -> Result<Instance, String> {
        let instances = Path::new(TRACEFS).join("instances");
        if !instances.is_dir() {
            return Err(format!(
                "tracefs is not mounted at {TRACEFS} (mount -t tracefs nodev {TRACEFS})"
            ));
        }
        remove_stale(&instances);
        let dir = instances.join(unique(PREFIX));
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let inst = Instance { dir };
        inst.write("buffer_size_kb", "8192")?;
        inst.write("trace_clock", "mono")?;
        for ev in EVENTS {
            inst.write(&format!("events/{ev}/enable"), "1")
                .map_err(|e| format!("trace event {ev} (a kernel without it?): {e}"))?;
        }
        Ok(inst)
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Clears the buffer and starts recording.
    fn start(&self) -> Result<(), String> {
        self.write("trace", "")?;
        self.write("tracing_on", "1")
    }

    fn stop(&self) {
        let _ = self.write("tracing_on", "0");
    }

    /// Stops recording and returns what was recorded.
    fn take(&self) -> Result<String, String> {
        self.write("tracing_on", "0")?;
        let path = self.dir.join("trace");
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        remove_instance(&self.dir);
    }
}

fn remove_instance(dir: &Path) {
    let _ = std::fs::write(dir.join("tracing_on"), "0");
    if let Err(e) = std::fs::remove_dir(dir) {
        eprintln!("removing {}: {e}", dir.display());
    }
}

/// Removes the instances of benches that were killed before their guard ran (their pid is
/// gone): they would record for good.
fn remove_stale(instances: &Path) {
    let Ok(entries) = std::fs::read_dir(instances) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix('-')?.split('-').next()?.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            remove_instance(&e.path());
        }
    }
}

/// One traced event.
#[derive(Debug, PartialEq)]
enum Event {
    Exec {
        pid: i32,
        file: String,
    },
    Exit {
        pid: i32,
    },
    /// Task `creator` made task `child`, a thread of its own process or a new process.
    NewTask {
        creator: i32,
        child: i32,
        thread: bool,
    },
}

/// Parses the instance's `trace` text, lines `COMM-PID [CPU] FLAGS SECONDS: EVENT: FIELDS`,
/// into events with their time in microseconds, skipping events it does not know. Events
/// the buffer lost are an error: a phase could be measured from the wrong event.
fn parse(trace: &str) -> Result<Vec<(f64, Event)>, String> {
    let mut events = Vec::new();
    for line in trace.lines().filter(|l| !l.starts_with('#')) {
        if line.contains("LOST") && line.contains("EVENTS") {
            return Err(format!(
                "the trace lost events ({}); a larger buffer_size_kb would keep them",
                line.trim()
            ));
        }
        events.extend(parse_line(line));
    }
    Ok(events)
}

fn parse_line(line: &str) -> Option<(f64, Event)> {
    let (task, rest) = split_at_cpu(line)?;
    let pid: i32 = task.trim_end().rsplit_once('-')?.1.parse().ok()?;
    let mut words = rest.split_whitespace();
    words.next()?; // flags
    let us = words.next()?.strip_suffix(':')?.parse::<f64>().ok()? * 1e6;
    let name = words.next()?;
    let field = |key: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    };
    let num = |key: &str| field(key)?.parse::<i32>().ok();
    let event = match name {
        "sched_process_exec:" => Event::Exec {
            pid: num("pid")?,
            file: field("filename")?.to_string(),
        },
        "sched_process_exit:" => Event::Exit { pid: num("pid")? },
        "task_newtask:" => Event::NewTask {
            creator: pid,
            child: num("pid")?,
            thread: u64::from_str_radix(field("clone_flags")?, 16).ok()? & CLONE_THREAD != 0,
        },
        _ => return None,
    };
    Some((us, event))
}

/// A line's task (`COMM-PID`) and what follows its CPU field (` [NNN]`). A command name
/// may hold spaces, dashes and brackets: the CPU field is the first ` [` that digits and
/// `]` follow.
fn split_at_cpu(line: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(i) = line[from..].find(" [").map(|i| from + i) {
        let after = &line[i + 2..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(']') {
            return Some((&line[..i], &after[digits + 1..]));
        }
        from = i + 2;
    }
    None
}

/// The phases of one sample, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    to_clone: f64,
    setup: f64,
    container: f64,
    teardown: f64,
    /// Programs the runtime executed on the way (not `/bin/true`).
    programs: usize,
}

impl Sample {
    fn total(&self) -> f64 {
        self.to_clone + self.setup + self.container + self.teardown
    }
}

/// The phases of the sample whose runtime process is `o.pid`, from the events in its window
/// (`events` in time order; a pid that an earlier sample used is not confused with it).
fn sample(events: &[(f64, Event)], o: &Outcome) -> Result<Sample, String> {
    let (root, (from, reaped)) = (o.pid, o.window_us);
    // A task's process (threads map to theirs), and each process's parent process and the
    // time it was forked.
    let mut process: HashMap<i32, i32> = HashMap::from([(root, root)]);
    let mut forks: HashMap<i32, (i32, f64)> = HashMap::new();
    let (mut begin, mut container, mut container_exit) = (None, None, None);
    let mut programs = 0;
    let window = events
        .iter()
        .skip_while(|(t, _)| *t < from)
        .take_while(|(t, _)| *t <= reaped);
    for (t, ev) in window {
        match ev {
            Event::NewTask {
                creator,
                child,
                thread,
            } => {
                let Some(&p) = process.get(creator) else {
                    continue;
                };
                if *thread {
                    process.insert(*child, p);
                } else {
                    process.insert(*child, *child);
                    forks.insert(*child, (p, *t));
                }
            }
            // exec makes the exec'ing thread its process's leader, with the process's pid.
            Event::Exec { pid, file } if process.contains_key(pid) => {
                if *pid == root {
                    begin.get_or_insert(*t);
                }
                if container.is_some() {
                    continue;
                }
                if file == CONTAINER_PROGRAM {
                    container = Some((*pid, *t));
                } else {
                    programs += 1;
                }
            }
            Event::Exit { pid } if container.is_some_and(|(c, _)| c == *pid) => {
                container_exit.get_or_insert(*t);
            }
            _ => {}
        }
    }
    let missing = |what: &str| format!("runtime process {root}: no {what} in the trace");
    let begin = begin.ok_or_else(|| missing("exec"))?;
    let (pid, true_at) = container.ok_or_else(|| missing("exec of /bin/true"))?;
    let true_end = container_exit.ok_or_else(|| missing("exit of /bin/true"))?;
    // The fork of the runtime process's child on the way down to /bin/true; none when the
    // runtime process is the container's.
    let (mut child, mut cloned) = (pid, true_at);
    while let Some(&(p, at)) = forks.get(&child) {
        cloned = at;
        if p == root {
            break;
        }
        child = p;
    }
    Ok(Sample {
        to_clone: cloned - begin,
        setup: true_at - cloned,
        container: true_end - true_at,
        teardown: reaped - true_end,
        programs,
    })
}

/// Phases of every runtime's `run` and the floor's, medians of `ctx.runs` samples each, back
/// to back after the warm-ups. Where tracefs or its events are missing, the whole part is
/// skipped with the reason; a runtime whose samples fail is reported as failed and the rest
/// go on. Only an interrupt ends it with an error.
pub fn measure(ctx: &Ctx, bundle: &Path) -> Result<Value, String> {
    let inst = match Instance::new() {
        Ok(inst) => inst,
        Err(e) => {
            println!("skip: phases: {e}");
            return Ok(json!({ "skipped": e }));
        }
    };
    let ns = crate::bundle::namespaces(bundle)?;
    let mut out = serde_json::Map::new();
    let subjects: Vec<(&str, Option<&Runtime>)> = ctx
        .runtimes
        .iter()
        .map(|r| (r.name, Some(r)))
        .chain([("floor", None)])
        .collect();
    for (name, rt) in subjects {
        let r = runtime_phases(ctx, &inst, rt, bundle, &ns);
        proc::check_interrupted()?;
        match r {
            Ok(samples) => {
                out.insert(name.to_string(), medians(&samples));
            }
            Err(e) => {
                eprintln!("  phases of {name}: {e}");
                out.insert(name.to_string(), json!({ "failed": e }));
            }
        }
    }
    Ok(Value::Object(out))
}

/// The recorded samples of one runtime (or of the floor, `rt` None). One trace spans them
/// all: pausing between runs to clear the buffer would make a runtime that writes
/// cgroup.procs wait for a fresh RCU grace period (benches/README.md), as the timed rows take
/// care to avoid.
fn runtime_phases(
    ctx: &Ctx,
    inst: &Instance,
    rt: Option<&Runtime>,
    bundle: &Path,
    namespaces: &[String],
) -> Result<Vec<Sample>, String> {
    inst.start()?;
    let mut runs = Vec::new();
    for i in 0..WARMUPS + ctx.runs {
        proc::check_interrupted()?;
        let o = match rt {
            Some(rt) => run_outcome(rt, bundle),
            None => ctx.floor.run_outcome(namespaces),
        };
        let o = o.inspect_err(|_| inst.stop())?;
        if i >= WARMUPS {
            runs.push(o);
        }
    }
    let events = parse(&inst.take()?)?;
    runs.iter().map(|o| sample(&events, o)).collect()
}

/// Medians of each phase in ms, and of the programs executed.
fn medians(samples: &[Sample]) -> Value {
    let med = |f: fn(&Sample) -> f64| -> Option<f64> {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| median_sorted(&v))
    };
    let ms = |f| med(f).map(|us| us / 1000.0);
    json!({
        "to_clone_ms": ms(|s| s.to_clone),
        "setup_ms": ms(|s| s.setup),
        "container_ms": ms(|s| s.container),
        "teardown_ms": ms(|s| s.teardown),
        "total_ms": ms(Sample::total),
        "programs": med(|s| s.programs as f64),
        "samples": samples.len(),
    })
}

/// Prints the phases, one column per runtime.
pub fn print(phases: &Value) {
    // A skip was printed when it happened.
    let Some(map) = phases.as_object().filter(|m| !m.contains_key("skipped")) else {
        return;
    };
    let names: Vec<&String> = map.keys().collect();
    println!("run /bin/true, phase medians (ms, from the kernel's trace events):");
    print!("{:<44}", "");
    for n in &names {
        print!("  {n:>8}");
    }
    println!();
    let rows = [
        (
            "to_clone_ms",
            "exec of the runtime -> clone of the container",
        ),
        ("setup_ms", "clone -> exec of /bin/true"),
        ("container_ms", "/bin/true: exec -> exit"),
        ("teardown_ms", "exit of /bin/true -> runtime reaped"),
        ("total_ms", "total"),
        ("programs", "programs the runtime executed"),
    ];
    for (key, label) in rows {
        print!("{label:<44}");
        for n in &names {
            let v = &map[n.as_str()];
            let cell = match (&v[key], key) {
                (Value::Number(x), "programs") => format!("{}", x.as_f64().unwrap_or_default()),
                (Value::Number(x), _) => format!("{:.2}", x.as_f64().unwrap_or_default()),
                _ if v.get("failed").is_some() => "failed".to_string(),
                _ => "-".to_string(),
            };
            print!("  {cell:>8}");
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// crun-like: P (200) executes itself again, makes a thread (202), whose own thread (203)
    /// forks the container process (201).
    const TRACE: &str = "\
# tracer: nop
#
            bash-100     [000] .....  10.000000: task_newtask: pid=200 comm=bash clone_flags=1200000 oom_score_adj=0
   crun [run]-200     [001] .....  10.001000: sched_process_exec: filename=/usr/bin/crun pid=200 old_pid=200
            crun-200     [001] .....  10.002500: sched_process_exec: filename=/dev/fd/3 pid=200 old_pid=200
            crun-200     [001] .....  10.002600: task_newtask: pid=202 comm=crun clone_flags=3d0f00 oom_score_adj=0
            crun-202     [000] .....  10.002700: task_newtask: pid=203 comm=crun clone_flags=3d0f00 oom_score_adj=0
            crun-203     [001] .....  10.004000: task_newtask: pid=201 comm=crun clone_flags=1200000 oom_score_adj=0
           other-300     [000] .....  10.004100: sched_process_exec: filename=/bin/true pid=300 old_pid=300
            crun-201     [000] .....  10.005500: sched_process_exec: filename=/bin/true pid=201 old_pid=201
            true-201     [000] .....  10.006200: sched_process_exit: comm=true pid=201 prio=120 group_dead=true
            crun-200     [001] .....  10.007000: sched_process_exit: comm=crun pid=200 prio=120 group_dead=true
            crun-200     [001] .....  10.007100: sys_wait4 -> 0xc8
";

    fn outcome(pid: i32, from_s: f64, reaped_s: f64) -> Outcome {
        Outcome {
            elapsed: Duration::ZERO,
            exit_code: 0,
            pid,
            window_us: (from_s * 1e6, reaped_s * 1e6),
        }
    }

    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.01
    }

    #[test]
    fn a_line_of_each_event_and_others_skipped() {
        let events = parse(TRACE).unwrap();
        // The wait4 line is of an event it does not know.
        assert_eq!(events.len(), 10);
        assert_eq!(
            events[1],
            (
                1e7 + 1000.0,
                Event::Exec {
                    pid: 200,
                    file: "/usr/bin/crun".into()
                }
            )
        );
        assert_eq!(
            events[3].1,
            Event::NewTask {
                creator: 200,
                child: 202,
                thread: true
            }
        );
        assert_eq!(
            events[5].1,
            Event::NewTask {
                creator: 203,
                child: 201,
                thread: false
            }
        );
        assert_eq!(events[9].1, Event::Exit { pid: 200 });
    }

    #[test]
    fn phases_of_a_runtime_that_executes_itself_twice_and_forks_from_a_thread() {
        let s = sample(&parse(TRACE).unwrap(), &outcome(200, 10.0, 10.0075)).unwrap();
        assert!(near(s.to_clone, 3000.0), "{s:?}");
        assert!(near(s.setup, 1500.0), "{s:?}");
        assert!(near(s.container, 700.0), "{s:?}");
        assert!(near(s.teardown, 1300.0), "{s:?}");
        assert!(near(s.total(), 6500.0), "{s:?}");
        assert_eq!(s.programs, 2);
    }

    #[test]
    fn events_outside_the_window_are_not_the_samples() {
        // The same pid, earlier: its exec is outside this window.
        let e = sample(&parse(TRACE).unwrap(), &outcome(200, 10.0015, 10.0075)).unwrap();
        assert!(near(e.to_clone, 1500.0), "{e:?}");
        let e = sample(&parse(TRACE).unwrap(), &outcome(200, 10.0, 10.005)).unwrap_err();
        assert!(e.contains("no exec of /bin/true"), "{e}");
    }

    #[test]
    fn a_container_process_that_is_the_runtime_process_has_no_set_up() {
        let trace = "\
            sh-200     [001] .....  10.001000: sched_process_exec: filename=/bin/true pid=200 old_pid=200
          true-200     [001] .....  10.002000: sched_process_exit: comm=true pid=200 prio=120 group_dead=true
";
        let s = sample(&parse(trace).unwrap(), &outcome(200, 10.0, 10.0025)).unwrap();
        assert_eq!((s.to_clone, s.setup), (0.0, 0.0));
        assert!(
            near(s.container, 1000.0) && near(s.teardown, 500.0),
            "{s:?}"
        );
    }

    #[test]
    fn lost_events_are_an_error_and_a_bracket_in_a_name_is_not_the_cpu() {
        let lost = "CPU:1 [LOST 12 EVENTS]\n";
        assert!(parse(lost).unwrap_err().contains("lost events"));
        let odd =
            "   a [b]-42     [001] .....  10.000000: sched_process_exit: comm=a pid=42 prio=120\n";
        assert_eq!(parse(odd).unwrap(), [(1e7, Event::Exit { pid: 42 })]);
    }
}
