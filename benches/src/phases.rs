//! Where a foreground `run` spends its time, phase by phase, for each runtime and the floor,
//! from the kernel's own timestamps: a private tracefs instance records every process's
//! exec, fork and exit, and the bench's wait4 that reaps the runtime. It also counts the
//! programs each runtime executes on the way: on this VM starting a glibc program costs about
//! 0.65 ms before its first system call (the CPUID probing of its cache sizes traps to the
//! host), and crun starts two (it re-executes itself from a sealed memfd), the floor two
//! (unshare and chroot), hull one.
//!
//! Phases of one sample, whose runtime process is P and whose container process runs
//! `/bin/true`:
//! - to the clone: P's first exec to the fork of the child of P that runs `/bin/true`;
//! - set-up: that fork to the exec of `/bin/true` (the floor's chroot(1) starts here);
//! - `/bin/true`: its exec to its exit (its own glibc start-up is most of it);
//! - teardown: its exit until the bench reaps P. A process's exit event comes before the
//!   kernel frees its namespaces, which the floor's unshare(1) holds itself: so the end is
//!   the reaping, which a caller waits for.
//!
//! Tracing adds a few microseconds per event, so the totals sit a little above the timed rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::bench::{remove_state, Ctx};
use crate::proc::{self, reap_orphans};
use crate::runtime::Runtime;
use integration::unique;

const TRACEFS: &str = "/sys/kernel/tracing";
const EVENTS: [&str; 4] = [
    "sched/sched_process_exec",
    "sched/sched_process_fork",
    "sched/sched_process_exit",
    "syscalls/sys_exit_wait4",
];
/// The container's program in the bench's bundles.
const CONTAINER_PROGRAM: &str = "/bin/true";

/// A tracefs instance of our own (its own buffer and event switches, so a trace someone else
/// runs is left alone), removed on drop.
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
        let dir = instances.join(unique("hull-bench"));
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let inst = Instance { dir };
        inst.write("buffer_size_kb", "8192")?;
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

    /// Stops recording and returns what was recorded.
    fn take(&self) -> Result<String, String> {
        self.write("tracing_on", "0")?;
        let path = self.dir.join("trace");
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.write("tracing_on", "0");
        for ev in EVENTS {
            let _ = self.write(&format!("events/{ev}/enable"), "0");
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            eprintln!("removing {}: {e}", self.dir.display());
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
    Fork {
        parent: i32,
        child: i32,
    },
    Exit {
        pid: i32,
    },
    /// A wait4 that returned this pid.
    Reaped {
        pid: i32,
    },
}

/// Parses the instance's `trace` text: `COMM-PID [CPU] FLAGS SECONDS: EVENT: FIELDS`, with
/// the time in microseconds. Lines it does not know are skipped.
fn parse(trace: &str) -> Vec<(f64, Event)> {
    trace
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<(f64, Event)> {
    // COMM may hold spaces and dashes: the CPU field, `[NNN]`, is the anchor.
    let open = line.find(" [")?;
    let task = line[..open].trim_end();
    task.rsplit_once('-')?.1.parse::<i32>().ok()?;
    let rest = &line[open..];
    let rest = &rest[rest.find(']')? + 1..];
    let mut words = rest.split_whitespace();
    words.next()?; // flags
    let us = words.next()?.strip_suffix(':')?.parse::<f64>().ok()? * 1e6;
    let name = words.next()?;
    let field = |key: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    let num = |key: &str| field(key)?.parse::<i32>().ok();
    let event = match name {
        "sched_process_exec:" => Event::Exec {
            pid: num("pid")?,
            file: field("filename")?,
        },
        "sched_process_fork:" => Event::Fork {
            parent: num("pid")?,
            child: num("child_pid")?,
        },
        "sched_process_exit:" => Event::Exit { pid: num("pid")? },
        "sys_wait4" => {
            let ret = rest.split_once("-> 0x")?.1.trim();
            Event::Reaped {
                pid: i32::from_str_radix(ret, 16).ok()?,
            }
        }
        _ => return None,
    };
    Some((us, event))
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

/// The phases of the sample whose runtime process is `root`, from `events` in time order.
fn sample(events: &[(f64, Event)], root: i32) -> Result<Sample, String> {
    let mut parent: HashMap<i32, i32> = HashMap::new();
    let mut fork_at: HashMap<i32, f64> = HashMap::new();
    let in_tree = |parent: &HashMap<i32, i32>, mut pid: i32| loop {
        if pid == root {
            return true;
        }
        match parent.get(&pid) {
            Some(&p) => pid = p,
            None => return false,
        }
    };
    let (mut begin, mut end) = (None, None);
    let mut container: Option<(i32, f64)> = None;
    let mut container_exit = None;
    let mut programs = 0;
    for (t, ev) in events {
        match ev {
            Event::Fork { parent: p, child } if in_tree(&parent, *p) => {
                parent.insert(*child, *p);
                fork_at.insert(*child, *t);
            }
            Event::Exec { pid, file } if in_tree(&parent, *pid) => {
                if *pid == root && begin.is_none() {
                    begin = Some(*t);
                }
                if file == CONTAINER_PROGRAM && container.is_none() {
                    container = Some((*pid, *t));
                } else if container.is_none() {
                    programs += 1;
                }
            }
            Event::Reaped { pid } if *pid == root && begin.is_some() => {
                end.get_or_insert(*t);
            }
            Event::Exit { pid } if container.is_some_and(|(c, _)| c == *pid) => {
                container_exit.get_or_insert(*t);
            }
            _ => {}
        }
    }
    let missing = |what: &str| format!("runtime process {root}: no {what} in the trace");
    let begin = begin.ok_or_else(|| missing("exec"))?;
    let end = end.ok_or_else(|| missing("wait4 that reaped it"))?;
    let (pid, true_at) = container.ok_or_else(|| missing("exec of /bin/true"))?;
    let true_end = container_exit.ok_or_else(|| missing("exit of /bin/true"))?;
    // The child of the runtime process on the way down to /bin/true.
    let mut child = pid;
    while let Some(&p) = parent.get(&child) {
        if p == root {
            break;
        }
        child = p;
    }
    let cloned = *fork_at
        .get(&child)
        .ok_or_else(|| missing("fork of the container process"))?;
    Ok(Sample {
        to_clone: cloned - begin,
        setup: true_at - cloned,
        container: true_end - true_at,
        teardown: end - true_end,
        programs,
    })
}

/// Phases of every runtime's `run` and the floor's, medians of `ctx.runs` samples each, back to
/// back after 3 warm-ups. Where tracefs or its events are missing, the part is skipped with
/// the reason, printed and in the JSON; a runtime that fails is reported and the rest go on.
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
        // One trace for all of a runtime's samples: pausing between runs to clear the buffer
        // would make a runtime that writes cgroup.procs wait for a fresh RCU grace period
        // (benches/README.md), as the timed rows take care to avoid.
        inst.start()?;
        let mut pids = Vec::new();
        let mut failed = None;
        for i in 0..3 + ctx.runs {
            proc::check_interrupted()?;
            match run_once(ctx, rt, bundle, &ns) {
                Ok(pid) if i >= 3 => pids.push(pid),
                Ok(_) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let events = parse(&inst.take()?);
        let samples: Result<Vec<Sample>, String> = match failed {
            Some(e) => Err(e),
            None => pids.iter().map(|&pid| sample(&events, pid)).collect(),
        };
        match samples {
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

/// One foreground `run` of the bundle by `rt`, or of the floor; returns the pid of the
/// process started.
fn run_once(
    ctx: &Ctx,
    rt: Option<&Runtime>,
    bundle: &Path,
    namespaces: &[String],
) -> Result<i32, String> {
    let Some(rt) = rt else {
        let c = crate::floor::command(namespaces, &ctx.floor.rootfs)?;
        let o = proc::run_timed(c, &ctx.floor.log)?;
        reap_orphans();
        return match o.exit_code {
            0 => Ok(o.pid),
            code => Err(format!("floor exited {code}")),
        };
    };
    let id = unique("hp");
    let r = rt.timed(&["run", "--bundle", &bundle.to_string_lossy(), &id]);
    remove_state(rt, &id)?;
    r.map(|o| o.pid)
}

/// Medians of each phase, in ms.
fn medians(samples: &[Sample]) -> Value {
    let med = |f: fn(&Sample) -> f64| -> Option<f64> {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let mid = |i: usize| v.get(i).copied();
        Some((mid(v.len() / 2)? + mid(v.len().saturating_sub(1) / 2)?) / 2.0 / 1000.0)
    };
    json!({
        "to_clone": med(|s| s.to_clone),
        "setup": med(|s| s.setup),
        "container": med(|s| s.container),
        "teardown": med(|s| s.teardown),
        "total": med(Sample::total),
        "programs": samples.first().map(|s| s.programs),
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
        ("to_clone", "exec of the runtime -> clone of the container"),
        ("setup", "clone -> exec of /bin/true"),
        ("container", "/bin/true: exec -> exit"),
        ("teardown", "exit of /bin/true -> runtime reaped"),
        ("total", "total"),
        ("programs", "programs the runtime executed"),
    ];
    for (key, label) in rows {
        print!("{label:<44}");
        for n in &names {
            let v = &map[n.as_str()];
            let cell = match (&v[key], key) {
                (Value::Number(x), "programs") => x.to_string(),
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

    const TRACE: &str = "\
# tracer: nop
#
            bash-100     [000] .....  10.000000: sched_process_fork: comm=bash pid=100 child_comm=bash child_pid=200
       crun run-200     [001] .....  10.001000: sched_process_exec: filename=/usr/bin/crun pid=200 old_pid=200
            crun-200     [001] .....  10.002300: sys_brk(brk: 0)
            crun-200     [001] .....  10.002500: sched_process_exec: filename=/dev/fd/3 pid=200 old_pid=200
            crun-200     [001] .....  10.003800: sys_brk(brk: 0)
            crun-200     [001] .....  10.003900: sys_brk(brk: 55ca7c963000)
            crun-200     [001] .....  10.004000: sched_process_fork: comm=crun pid=200 child_comm=crun child_pid=201
           other-300     [000] .....  10.004100: sched_process_exec: filename=/bin/true pid=300 old_pid=300
            crun-201     [000] .....  10.005500: sched_process_exec: filename=/bin/true pid=201 old_pid=201
            true-201     [000] .....  10.006100: sys_brk(brk: 0)
            true-201     [000] .....  10.006200: sched_process_exit: comm=true pid=201 prio=120 group_dead=true
            crun-200     [001] .....  10.007000: sched_process_exit: comm=crun pid=200 prio=120 group_dead=true
            bash-100     [000] .....  10.007200: sys_wait4 -> 0xc8
            bash-100     [000] .....  10.007300: sys_wait4 -> 0xfffffffffffffff6
";

    #[test]
    fn a_line_of_each_event() {
        let events = parse(TRACE);
        // The brk lines are of an event it does not know.
        assert_eq!(events.len(), 9);
        assert_eq!(
            events[1],
            (
                10_001_000.0,
                Event::Exec {
                    pid: 200,
                    file: "/usr/bin/crun".into()
                }
            )
        );
        assert_eq!(
            events[3].1,
            Event::Fork {
                parent: 200,
                child: 201
            }
        );
        assert_eq!(events[7].1, Event::Exit { pid: 200 });
        // wait4's -ECHILD is no pid.
        assert_eq!(events[8].1, Event::Reaped { pid: 200 });
    }

    #[test]
    fn phases_of_a_runtime_that_executes_itself_twice() {
        let s = sample(&parse(TRACE), 200).unwrap();
        let near = |a: f64, b: f64| (a - b).abs() < 0.01;
        assert!(near(s.to_clone, 3000.0), "{s:?}");
        assert!(near(s.setup, 1500.0), "{s:?}");
        assert!(near(s.container, 700.0), "{s:?}");
        assert!(near(s.teardown, 1000.0), "{s:?}");
        assert!(near(s.total(), 6200.0), "{s:?}");
        assert_eq!(s.programs, 2);
    }

    #[test]
    fn a_sample_without_the_container_is_an_error() {
        let cut: String = TRACE
            .lines()
            .filter(|l| !l.contains("pid=201 old_pid"))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = sample(&parse(&cut), 200).unwrap_err();
        assert!(e.contains("no exec of /bin/true"), "{e}");
    }
}
