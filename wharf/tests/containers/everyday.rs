//! docker's everyday surface beyond run and ps: healthchecks run by the monitor, `update`
//! of limits in the cgroup files and the record, `events` streamed while another process
//! works, and `system df` checked against the files on disk.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::{runtime, Guard};

fn health(g: &Guard, name: &str) -> Value {
    serde_json::from_str(&g.inspect(name, "{{json .State.Health}}")).expect("health JSON")
}

fn wait_status(g: &Guard, name: &str, status: &str) -> Value {
    g.until(20, &format!("{name} {status}"), || {
        let h = health(g, name);
        (h["Status"] == status).then_some(h)
    })
}

#[test]
fn healthchecks_run_by_the_monitor_as_docker_runs_them() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let fast = ["--health-interval", "200ms"];
    let run = |name: &str, check: &[&str]| {
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        args.extend_from_slice(check);
        args.extend_from_slice(&["busybox", "sleep", "60"]);
        g.ok(&args);
    };
    run(
        "good",
        &[&["--health-cmd", "echo fine"][..], &fast].concat(),
    );
    run(
        "bad",
        &[
            &[
                "--health-cmd",
                "echo broken; exit 2",
                "--health-retries",
                "2",
            ][..],
            &fast,
        ]
        .concat(),
    );
    run(
        "hung",
        &[
            &[
                "--health-cmd",
                "sleep 30",
                "--health-timeout",
                "300ms",
                "--health-retries",
                "1",
            ][..],
            &fast,
        ]
        .concat(),
    );
    run(
        "later",
        &["--health-cmd", "true", "--health-interval", "1h"],
    );
    run(
        "warming",
        &[
            &[
                "--health-cmd",
                "false",
                "--health-retries",
                "1",
                "--health-start-period",
                "1h",
            ][..],
            &fast,
        ]
        .concat(),
    );
    run("plain", &[]);
    run(
        "loud",
        &[
            &[
                "--health-cmd",
                "i=0; while [ $i -lt 5000 ]; do printf x; i=$((i+1)); done",
            ][..],
            &fast,
        ]
        .concat(),
    );

    let h = wait_status(&g, "good", "healthy");
    assert_eq!(h["FailingStreak"], 0);
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0);
    assert_eq!(last["Output"], "fine\n");
    assert!(last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap());

    let h = wait_status(&g, "bad", "unhealthy");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 2);
    assert_eq!(last["Output"], "broken\n");
    // docker keeps the last five results.
    g.until(20, "five results", || {
        (health(&g, "bad")["Log"].as_array().unwrap().len() == 5).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(health(&g, "bad")["Log"].as_array().unwrap().len(), 5);

    let h = wait_status(&g, "hung", "unhealthy");
    let first = h["Log"][0].clone();
    assert_eq!(first["ExitCode"], -1);
    assert_eq!(first["Output"], "Health check exceeded timeout (300ms)");
    // Killed at its timeout: the probes do not pile up in the container.
    std::thread::sleep(Duration::from_secs(1));
    let top = g.ok(&["top", "hung"]);
    assert!(
        top.matches("sleep 30").count() <= 1,
        "probes were not killed at their timeout:\n{top}"
    );

    // Failures inside the start period do not count.
    g.until(20, "probes of warming", || {
        (health(&g, "warming")["Log"].as_array().unwrap().len() >= 3).then_some(())
    });
    let h = health(&g, "warming");
    assert_eq!(
        (h["Status"].as_str(), h["FailingStreak"].as_u64()),
        (Some("starting"), Some(0))
    );

    wait_status(&g, "loud", "healthy");
    let ps = |filter: &str| {
        let mut names: Vec<String> = g
            .ok(&["ps", "--filter", filter, "--format", "{{.Names}}"])
            .lines()
            .map(str::to_string)
            .collect();
        names.sort();
        names
    };
    assert_eq!(ps("health=healthy"), ["good", "loud"]);
    assert_eq!(ps("health=unhealthy"), ["bad", "hung"]);
    assert_eq!(ps("health=starting"), ["later", "warming"]);
    assert_eq!(ps("health=none"), ["plain"]);
    let status = |name: &str| {
        g.ok(&[
            "ps",
            "--filter",
            &format!("name=^{name}$"),
            "--format",
            "{{.Status}}",
        ])
    };
    assert!(
        status("good").trim().ends_with("(healthy)"),
        "{}",
        status("good")
    );
    assert!(status("bad").trim().ends_with("(unhealthy)"));
    assert!(status("later").trim().ends_with("(health: starting)"));
    assert!(!status("plain").contains('('));
    assert_eq!(g.inspect("plain", "{{json .State.Health}}"), "null");

    let events = g.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    for want in [
        "health_status: healthy good",
        "health_status: unhealthy bad",
    ] {
        assert_eq!(events.lines().filter(|l| *l == want).count(), 1, "{events}");
    }

    // docker keeps 4 KiB of output and marks the cut.
    let h = wait_status(&g, "loud", "healthy");
    let out = h["Log"][0]["Output"].as_str().unwrap().to_string();
    assert_eq!(out.len(), 4096 + 3);
    assert!(out.ends_with("x..."), "{}", &out[4000..]);

    // A paused container is not probed and reads unhealthy; once it runs again, the
    // checks resume.
    g.ok(&["pause", "good"]);
    wait_status(&g, "good", "unhealthy");
    g.ok(&["unpause", "good"]);
    wait_status(&g, "good", "healthy");

    // A restart starts the schedule again and keeps the log; a stop reports unhealthy.
    let before = health(&g, "good")["Log"].as_array().unwrap().len();
    g.ok(&["restart", "-t", "0", "good"]);
    let h = wait_status(&g, "good", "healthy");
    assert!(h["Log"].as_array().unwrap().len() >= before.min(4), "{h}");
    g.ok(&["stop", "-t", "0", "good"]);
    assert_eq!(health(&g, "good")["Status"], "unhealthy");
    let id = g.inspect("good", "{{.Id}}");
    let cdir = g.env.root().join("containers").join(id);
    assert!(!cdir.join("health.json").exists() && !cdir.join("health.pid").exists());
}

#[test]
fn an_images_healthcheck_runs_and_no_healthcheck_turns_it_off() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let ctx = g.build_context(
        "hc",
        "FROM busybox\nHEALTHCHECK --interval=200ms --retries=2 CMD echo from-image\n",
    );
    g.ok(&["build", "-q", "-t", "checked", ctx.to_str().unwrap()]);
    g.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "img",
        "checked",
        "sleep",
        "60",
    ]);
    let h = wait_status(&g, "img", "healthy");
    assert_eq!(h["Log"][0]["Output"], "from-image\n");
    let check: Value =
        serde_json::from_str(&g.inspect("img", "{{json .Config.Healthcheck}}")).unwrap();
    assert_eq!(
        check,
        serde_json::json!({"Test": ["CMD-SHELL", "echo from-image"], "Interval": 200000000, "Retries": 2})
    );
    // The flags fill in over the image's check.
    g.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "flags",
        "--health-retries",
        "7",
        "checked",
        "sleep",
        "60",
    ]);
    assert_eq!(
        g.inspect(
            "flags",
            "{{.Config.Healthcheck.Retries}} {{.Config.Healthcheck.Interval}}"
        ),
        "7 200000000"
    );
    g.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "off",
        "--no-healthcheck",
        "checked",
        "sleep",
        "60",
    ]);
    assert_eq!(
        g.inspect("off", "{{json .Config.Healthcheck.Test}}"),
        r#"["NONE"]"#
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(g.inspect("off", "{{json .State.Health}}"), "null");
    assert!(g
        .ok(&["ps", "--filter", "health=none", "--format", "{{.Names}}"])
        .contains("off"));

    // Bad values are refused before anything is made.
    let before = g.ok(&["ps", "-a", "-q"]);
    for (args, msg) in [
        (
            vec!["--no-healthcheck", "--health-cmd", "true"],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (
            vec!["--health-retries", "-1"],
            "--health-retries cannot be negative",
        ),
        (
            vec!["--health-interval", "-2s"],
            "--health-interval cannot be negative",
        ),
        (
            vec!["--health-interval", "10us", "--health-cmd", "true"],
            "Interval in Healthcheck cannot be less than 1ms",
        ),
        (vec!["--health-timeout", "soon"], "invalid duration"),
    ] {
        let mut all = vec!["create"];
        all.extend(args);
        all.push("busybox");
        let out = g.run(&all);
        assert!(!out.status.success(), "{all:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{all:?}: {err}");
    }
    assert_eq!(g.ok(&["ps", "-a", "-q"]), before);
}

/// The file of a v1 controller or the v2 file of the container's cgroup.
fn cgroup_file(pid: &str, controller: &str, v1: &str, v2: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == controller) {
            let f = Path::new("/sys/fs/cgroup").join(ctrls).join(path).join(v1);
            if f.exists() {
                return Some(f);
            }
        }
        if ctrls.is_empty() {
            let f = Path::new("/sys/fs/cgroup").join(path).join(v2);
            if f.exists() && !Path::new("/sys/fs/cgroup").join(controller).exists() {
                return Some(f);
            }
        }
    }
    None
}

fn read(f: &Path) -> String {
    std::fs::read_to_string(f).unwrap().trim().to_string()
}

#[test]
fn update_changes_the_cgroup_and_the_record_and_a_restart_keeps_it() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "upd",
        "-m",
        "64m",
        "busybox",
        "sleep",
        "60",
    ]);
    let pid = g.inspect("upd", "{{.State.Pid}}");
    let mem =
        cgroup_file(&pid, "memory", "memory.limit_in_bytes", "memory.max").expect("memory cgroup");
    assert_eq!(read(&mem), (64u64 << 20).to_string());
    let out = g.ok(&[
        "update",
        "-m",
        "128m",
        "--memory-swap",
        "256m",
        "--memory-reservation",
        "32m",
        "--cpu-shares",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "42",
        "upd",
    ]);
    assert_eq!(out, "upd\n");
    let check = |pid: &str| {
        let f = |c, v1, v2| cgroup_file(pid, c, v1, v2).unwrap_or_else(|| panic!("{v1} of {pid}"));
        assert_eq!(
            read(&f("memory", "memory.limit_in_bytes", "memory.max")),
            (128u64 << 20).to_string()
        );
        assert_eq!(read(&f("pids", "pids.max", "pids.max")), "42");
        assert_eq!(read(&f("cpuset", "cpuset.cpus", "cpuset.cpus")), "0");
        if let Some(s) = cgroup_file(pid, "cpu", "cpu.shares", "cpu.weight") {
            if s.ends_with("cpu.shares") {
                assert_eq!(read(&s), "512");
                assert_eq!(read(&f("cpu", "cpu.cfs_quota_us", "cpu.max")), "50000");
            } else {
                assert_eq!(read(&f("cpu", "cpu.max", "cpu.max")), "50000 100000");
            }
        }
        if let Some(sw) = cgroup_file(
            pid,
            "memory",
            "memory.memsw.limit_in_bytes",
            "memory.swap.max",
        ) {
            let want = if sw.ends_with("memory.memsw.limit_in_bytes") {
                256u64 << 20
            } else {
                128u64 << 20
            };
            assert_eq!(read(&sw), want.to_string());
        }
    };
    check(&pid);
    assert_eq!(
        g.inspect(
            "upd",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuShares}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}}"
        ),
        format!("{} {} {} 512 50000 0 42", 128u64 << 20, 256u64 << 20, 32u64 << 20)
    );
    g.ok(&["restart", "-t", "0", "upd"]);
    let pid2 = g.inspect("upd", "{{.State.Pid}}");
    assert_ne!(pid, pid2);
    check(&pid2);

    // docker's refusals: the record and the cgroup stay as they were.
    for (args, msg) in [
        (
            vec!["--cpus", "0.5"],
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
        ),
        (vec!["-m", "1m"], "Minimum memory limit allowed is 6MB"),
        (
            vec!["-m", "512m"],
            "Memory limit should be smaller than already set memoryswap limit",
        ),
        (
            vec!["--cpuset-cpus", "64"],
            "Requested CPUs are not available",
        ),
        (
            vec!["--blkio-weight", "5"],
            "Range of blkio weight is from 10 to 1000",
        ),
    ] {
        let mut all = vec!["update"];
        all.extend(args);
        all.push("upd");
        let out = g.run(&all);
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{all:?}: {err}");
    }
    check(&pid2);
    let err = g.run(&["update", "upd"]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("you must provide one or more flags"));
    let err = g.run(&["update", "-m", "64m", "nosuch"]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("No such container: nosuch"));

    // Block I/O weight needs BFQ (or CFQ) on v1, the io controller on v2.
    let blkio = Path::new("/sys/fs/cgroup/blkio");
    let weighable = if blkio.is_dir() {
        blkio.join("blkio.weight").exists() || blkio.join("blkio.bfq.weight").exists()
    } else {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"))
    };
    let out = g.run(&["update", "--blkio-weight", "300", "upd"]);
    if weighable {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(g.inspect("upd", "{{.HostConfig.BlkioWeight}}"), "300");
    } else {
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("this kernel does not support Block I/O weight"),
            "{err}"
        );
        assert_eq!(g.inspect("upd", "{{.HostConfig.BlkioWeight}}"), "0");
    }

    // Unlimited again. crun 1.8.1 writes -1 into a v1 pids.max, which the kernel refuses:
    // the runtime's error is reported and the record goes back as it was.
    let pids = cgroup_file(&pid2, "pids", "pids.max", "pids.max").unwrap();
    let out = g.run(&["update", "--pids-limit", "-1", "upd"]);
    let crun_on_v1 = g.crun && pids.starts_with("/sys/fs/cgroup/pids");
    if crun_on_v1 {
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Cannot update container") && err.contains("pids.max"),
            "{err}"
        );
        assert_eq!(read(&pids), "42");
        assert_eq!(g.inspect("upd", "{{.HostConfig.PidsLimit}}"), "42");
    } else {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(read(&pids), "max");
    }
    g.ok(&["update", "--restart", "on-failure:3", "upd"]);
    assert_eq!(
        g.inspect(
            "upd",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:3"
    );
    // A created container takes the update at its first start.
    g.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "later",
        "busybox",
        "sleep",
        "60",
    ]);
    g.ok(&["update", "-m", "48m", "--memory-swap", "-1", "later"]);
    g.ok(&["start", "later"]);
    let pid3 = g.inspect("later", "{{.State.Pid}}");
    assert_eq!(
        read(&cgroup_file(&pid3, "memory", "memory.limit_in_bytes", "memory.max").unwrap()),
        (48u64 << 20).to_string()
    );
    let rm = g.run(&[
        "run",
        "-d",
        "--rm",
        "--network",
        "none",
        "--name",
        "gone",
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(rm.status.success());
    let err = g.run(&["update", "--restart", "always", "gone"]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("AutoRemove"));
    let updates = g.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "event=update",
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    assert_eq!(
        updates.lines().filter(|l| *l == "upd").count(),
        2 + usize::from(weighable) + usize::from(!crun_on_v1),
        "{updates}"
    );
}

/// `wharf events` of the test's own data root, from the last ten minutes (that is, all
/// of them: no waiting for the stream's first look at the journal) and then as they
/// come, its JSON lines sent to the returned channel.
struct Stream {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl Stream {
    fn start(g: &Guard, filters: &[&str]) -> Self {
        let mut args = vec!["events", "--since", "10m", "--format", "json"];
        args.extend_from_slice(filters);
        let mut child = g
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wharf events");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx
                    .send(serde_json::from_str(&l).expect("a JSON event"))
                    .is_err()
                {
                    return;
                }
            }
        });
        Stream { child, lines }
    }

    /// Events until one satisfies `last`, in order.
    fn until(&self, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut got = Vec::new();
        loop {
            let e = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("timed out; got {got:?}"));
            let done = last(&e);
            got.push(e);
            if done {
                return got;
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn events_stream_what_other_processes_do_once_each_in_order() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let s = Stream::start(&g, &["--filter", "type=container"]);
    g.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "e1",
        "busybox",
        "sleep",
        "60",
    ]);
    g.ok(&["kill", "e1"]);
    g.ok(&["wait", "e1"]);
    g.ok(&["rename", "e1", "e2"]);
    g.ok(&["rm", "e2"]);
    // Two writers at once: every event of both is there.
    let mut pair: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|n| {
            g.command(&[
                "create",
                "--network",
                "none",
                "--name",
                n,
                "busybox",
                "true",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in &mut pair {
        assert!(c.wait().unwrap().success());
    }
    let created = |all: &[Value], n: &str| {
        all.iter()
            .any(|e| e["Action"] == "create" && e["Actor"]["Attributes"]["name"] == n)
    };
    let mut all = Vec::new();
    while !(created(&all, "p1") && created(&all, "p2")) {
        all.extend(s.until(|_| true));
    }
    // Nothing more than each event once.
    std::thread::sleep(Duration::from_millis(500));
    all.extend(s.lines.try_iter());
    assert_eq!(all.len(), 8, "{all:?}");
    let e1: Vec<String> = all
        .iter()
        .filter(|e| e["Actor"]["ID"] == all[0]["Actor"]["ID"])
        .map(|e| e["Action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        e1,
        ["create", "start", "kill", "die", "rename", "destroy"],
        "{all:?}"
    );
    for e in &all {
        assert_eq!(e["Type"], "container");
        assert!(e["timeNano"].as_i64().unwrap() > 0);
    }
    let die = all.iter().find(|e| e["Action"] == "die").unwrap();
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "137");
    let kill = all.iter().find(|e| e["Action"] == "kill").unwrap();
    assert_eq!(kill["Actor"]["Attributes"]["signal"], "9");
    let rename = all.iter().find(|e| e["Action"] == "rename").unwrap();
    assert_eq!(rename["Actor"]["Attributes"]["oldName"], "/e1");
    let times: Vec<i64> = all
        .iter()
        .map(|e| e["timeNano"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // An OOM kill: oom, then die, and State.OOMKilled.
    let out = g.run(&[
        "run",
        "--name",
        "hog",
        "--network",
        "none",
        "-m",
        "8m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(out.status.code(), Some(137));
    assert_eq!(g.inspect("hog", "{{.State.OOMKilled}}"), "true");
    let hog: Vec<String> = s
        .until(|e| e["Action"] == "die" && e["Actor"]["Attributes"]["name"] == "hog")
        .iter()
        .filter(|e| e["Actor"]["Attributes"]["name"] == "hog")
        .map(|e| e["Action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hog, ["create", "start", "oom", "die"]);

    // Volumes: mount and unmount around a run, with docker's attributes.
    let v = Stream::start(&g, &["--filter", "type=volume", "--filter", "volume=evol"]);
    g.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "evol:/data",
        "busybox",
        "true",
    ]);
    let got = v.until(|e| e["Action"] == "unmount");
    let actions: Vec<&str> = got.iter().map(|e| e["Action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "mount", "unmount"], "{got:?}");
    assert_eq!(got[1]["Actor"]["Attributes"]["destination"], "/data");
    assert_eq!(got[1]["Actor"]["Attributes"]["read/write"], "true");

    // Past events with --since/--until, filters and a template; a container filter
    // matches the id, or the name the event carries (docker's rule).
    let by_id = format!("container={}", all[0]["Actor"]["ID"].as_str().unwrap());
    let past = g.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        &by_id,
        "--filter",
        "event=die",
        "--filter",
        "event=destroy",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(past, "die e1\ndestroy e2\n");
    let err = g.run(&["events", "--filter", "colour=red", "--until", "0s"]);
    assert!(!err.status.success());
}

/// Bytes of the files under `dir` (each hard link once), as `system df` must count them.
fn bytes_under(dir: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| seen.insert(std::os::unix::fs::MetadataExt::ino(m)))
        .map(|m| m.len())
        .sum()
}

#[test]
fn system_df_counts_what_is_on_disk() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&[
        "run", "-d", "--network", "none", "--name", "live", "-v", "dfvol:/data", "busybox", "sh",
        "-c", "dd if=/dev/zero of=/data/blob bs=1k count=300 2>/dev/null; dd if=/dev/zero of=/big bs=1k count=200 2>/dev/null; touch /done; exec sleep 60",
    ]);
    g.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "idle",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/x",
        "bs=1k",
        "count=100",
    ]);
    let upper = |name: &str| PathBuf::from(g.inspect(name, "{{.GraphDriver.Data.UpperDir}}"));
    g.until(20, "live's files", || {
        upper("live").join("done").exists().then_some(())
    });
    let live = bytes_under(&upper("live"));
    let idle = bytes_under(&upper("idle"));
    let vol = bytes_under(Path::new(
        &g.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "dfvol"])
            .trim()
            .to_string(),
    ));
    assert_eq!(vol, 300 * 1024);
    let image: u64 = g
        .ok(&["image", "inspect", "-f", "{{.Size}}", "busybox"])
        .trim()
        .parse()
        .unwrap();
    let h = |n: u64| wharf::format::human_size_with(n, 4);
    let rows = g.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}",
    ]);
    let want = format!(
        "Images|1|1|{}|0B (0%)\nContainers|2|1|{}|{} ({}%)\nLocal Volumes|1|1|{}|0B (0%)\nBuild Cache|0|0|0B|0B\n",
        h(image),
        h(live + idle),
        h(idle),
        idle * 100 / (live + idle),
        h(vol)
    );
    assert_eq!(rows, want);
    let table = g.ok(&["system", "df"]);
    assert!(
        table.starts_with("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"),
        "{table}"
    );
    let verbose = g.ok(&["system", "df", "-v"]);
    for part in [
        "Images space usage:\n\nREPOSITORY   TAG       IMAGE ID",
        "\nContainers space usage:\n\nCONTAINER ID",
        "\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\ndfvol",
        "\nBuild cache usage: 0B\n\nCACHE ID",
    ] {
        assert!(verbose.contains(part), "{part:?} missing:\n{verbose}");
    }
    let busybox_row = verbose.lines().find(|l| l.starts_with("busybox")).unwrap();
    assert!(
        busybox_row.trim_end().ends_with(" 2"),
        "two containers: {busybox_row}"
    );

    // A build leaves an intermediate image in the builder's cache; prune takes it.
    let ctx = g.build_context("dfbuild", "FROM busybox\nRUN echo x > /x\nCMD [\"true\"]\n");
    g.ok(&["build", "-q", "-t", "built", ctx.to_str().unwrap()]);
    let rows = g.ok(&["system", "df", "--format", "{{.Type}}|{{.TotalCount}}"]);
    assert!(
        rows.contains("Images|2\n") && rows.contains("Build Cache|1\n"),
        "{rows}"
    );
    g.ok(&["builder", "prune", "-f"]);
    let rows = g.ok(&["system", "df", "--format", "{{.Type}}|{{.TotalCount}}"]);
    assert!(rows.contains("Build Cache|0\n"), "{rows}");
}

/// Kilobytes of the `[stack]` mapping of `pid` that are resident.
fn stack_rss_kb(pid: i32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_stack = false;
    for l in smaps.lines() {
        if l.contains('-') && !l.ends_with(" kB") {
            in_stack = l.trim_end().ends_with("[stack]");
        } else if in_stack {
            if let Some(v) = l.strip_prefix("Rss:") {
                return v.trim().trim_end_matches(" kB").trim().parse().unwrap();
            }
        }
    }
    panic!("no [stack] in {pid}'s smaps");
}

/// A monitor idle for 10 s gives back its start-up pages (`footprint`): the stack below
/// its idle loop too. It then still logs, runs an exec and records the stop.
#[test]
fn an_idle_monitor_gives_memory_back_and_still_serves() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "idler",
        "busybox",
        "sh",
        "-c",
        "sleep 12; echo late; sleep 60",
    ]);
    let monitor = g.monitor_of("idler");
    let before = stack_rss_kb(monitor);
    g.until(30, "the container's late line", || {
        g.ok(&["logs", "idler"]).contains("late").then_some(())
    });
    // Read once the late line is logged, so the stack holds what logging it touched again.
    let after = stack_rss_kb(monitor);
    assert!(
        after < before,
        "the monitor's stack: {before} kB at start, {after} kB after idling"
    );
    assert_eq!(g.ok(&["exec", "idler", "echo", "in"]), "in\n");
    g.ok(&["stop", "-t", "1", "idler"]);
    assert_eq!(g.inspect("idler", "{{.State.Status}}"), "exited");
    g.ok(&["rm", "idler"]);
}

/// The monitor runs without glibc's tcache (`monitor::monitor_environment`); the runtime it
/// starts gets the user's `GLIBC_TUNABLES` back as it was, or none.
#[test]
fn the_runtime_gets_the_users_glibc_tunables() {
    let Ok(real) = wharf::runtime::resolve(&runtime()) else {
        integration::skip(&format!("runtime {} not found", runtime()));
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("env");
    let wrapper = dir.path().join("rt");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nenv | grep -E '^(GLIBC_TUNABLES|WHARF_USER_GLIBC_TUNABLES)=' >> {log}\n\
             echo end >> {log}\nexec {real} \"$@\"\n",
            log = log.display(),
            real = real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let Some(g) = Guard::new(wrapper.to_str().unwrap()) else {
        return;
    };
    let run = ["run", "--rm", "--network", "none", "busybox", "true"];
    let out = g
        .command(&run)
        .env_remove("GLIBC_TUNABLES")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.lines().all(|l| l == "end"), "{seen}");
    std::fs::remove_file(&log).unwrap();
    let mine = "glibc.malloc.arena_max=2";
    let out = g
        .command(&run)
        .env("GLIBC_TUNABLES", mine)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let seen = std::fs::read_to_string(&log).unwrap();
    let calls = seen.lines().filter(|l| *l == "end").count();
    assert!(calls >= 2, "{seen}");
    assert_eq!(
        seen.lines().filter(|l| *l != "end").collect::<Vec<_>>(),
        vec![format!("GLIBC_TUNABLES={mine}"); calls],
        "{seen}"
    );
    g.assert_clean();
}

/// A tmpfs mounted for a test, detached when dropped (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .unwrap_or_else(|e| panic!("mounting a tmpfs of {size} at {at:?}: {e}"));
        Self(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A disk too full for the log drops the lines, as docker's json-file driver does; the
/// monitor goes on supervising the container, and logging resumes once there is room.
#[test]
fn a_full_disk_drops_log_lines_and_the_container_goes_on() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    // The containers' directories (their logs among them) on a small disk of their own.
    let disk = Tmpfs::mount(&g.env.root().join("containers"), "16m");
    let out = g.env.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let volume = format!("{}:/out", out.display());
    g.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "chatty",
        "-v",
        &volume,
        "busybox",
        "sh",
        "-c",
        // Lines of 1 KiB: the log file's last page has room for a few only.
        "pad=$(printf '%01024d' 0); i=0; \
         while :; do i=$((i+1)); echo line$i $pad; echo $i > /out/n; sleep 0.05; done",
    ]);
    let monitor = g.monitor_of("chatty");
    let printed = || {
        std::fs::read_to_string(out.join("n"))
            .ok()
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    g.until(30, "the first lines", || printed().filter(|n| *n >= 5));
    let filler = disk.0.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![1u8; 1 << 20];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    let full_at = printed().unwrap();
    g.until(30, "twenty lines printed onto a full disk", || {
        printed().filter(|n| *n >= full_at + 20)
    });
    assert_eq!(g.inspect("chatty", "{{.State.Status}}"), "running");
    assert!(
        std::path::Path::new(&format!("/proc/{monitor}")).exists(),
        "the monitor {monitor} is gone"
    );
    std::fs::remove_file(&filler).unwrap();
    let freed_at = printed().unwrap();
    g.until(30, "a line logged after the disk had room again", || {
        let logs = g.ok(&["logs", "chatty"]);
        let last: u64 = logs
            .lines()
            .filter_map(|l| l.strip_prefix("line")?.split(' ').next()?.parse().ok())
            .max()?;
        (last > freed_at + 5).then_some(())
    });
    g.ok(&["rm", "-f", "chatty"]);
    let left: Vec<_> = std::fs::read_dir(&disk.0).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    drop(disk);
    g.assert_clean();
}
