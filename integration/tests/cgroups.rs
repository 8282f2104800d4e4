//! Resources on this machine's cgroup layout: limits that reach the cgroup files and hold,
//! update, pause/resume, events, ps, and OOM.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use integration::{Bundle, Container, Runtime, TempDir};
use serde_json::{json, Value};

fn v1() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
}

/// The container's cgroup file for a v1 controller, from its init's /proc/<pid>/cgroup.
fn cgroup_file(pid: i64, controller: &str, file: &str) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cg
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_string())
        })
        .unwrap();
    let full = format!("/sys/fs/cgroup/{controller}{path}/{file}");
    std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("{full}: {e}"))
        .trim()
        .to_string()
}

fn detached<'a>(rt: &'a Runtime, b: &Bundle) -> (Container<'a>, i64) {
    b.save();
    let c = Container::new(rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    let pid = rt.state(&c.id)["pid"].as_i64().unwrap();
    (c, pid)
}

#[test]
fn limits_reach_the_cgroup_files_and_update_changes_them() {
    if !v1() {
        integration::skip("checks v1 cgroup files; this host is not v1/hybrid");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 50}
    });
    let (c, pid) = detached(&rt, &b);
    assert_eq!(
        cgroup_file(pid, "memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        cgroup_file(pid, "memory", "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(cgroup_file(pid, "cpu", "cpu.shares"), "512");
    assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_file(pid, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(cgroup_file(pid, "pids", "pids.max"), "50");

    rt.ok(&[
        "update",
        "--memory",
        "96m",
        "--cpu-quota",
        "20000",
        "--cpu-share",
        "256",
        "--pids-limit",
        "30",
        &c.id,
    ]);
    assert_eq!(
        cgroup_file(pid, "memory", "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(cgroup_file(pid, "cpu", "cpu.shares"), "256");
    assert_eq!(cgroup_file(pid, "pids", "pids.max"), "30");

    let dir = TempDir::new("resources");
    let file = dir.path.join("r.json");
    std::fs::write(&file, json!({"pids": {"limit": 12}}).to_string()).unwrap();
    rt.ok(&["update", "-r", file.to_str().unwrap(), &c.id]);
    assert_eq!(cgroup_file(pid, "pids", "pids.max"), "12");
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    // The inner shell may die when fork fails; pid 1 must not, so it only uses builtins and exec.
    b.script("sh -c 'for i in $(seq 40); do sleep 30 & done' 2>/dev/null; echo done > /forked; exec sleep 60");
    b.config["linux"]["resources"] = json!({"pids": {"limit": 10}});
    let (c, _) = detached(&rt, &b);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.rootfs().join("forked").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        b.rootfs().join("forked").exists(),
        "the loop never finished"
    );
    let v: Value = serde_json::from_str(rt.ok(&["events", "--stats", &c.id]).trim()).unwrap();
    let current = v["data"]["pids"]["current"].as_u64().unwrap();
    assert!(
        (2..=10).contains(&current),
        "{current} processes under a limit of 10"
    );
    assert_eq!(v["data"]["pids"]["limit"], 10);
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    // tail keeps a line without newline in memory: 256 MiB of zeros in a 32 MiB cgroup.
    b.script(
        "while [ ! -e /go ]; do sleep 0.05; done; head -c 268435456 /dev/zero | tail; sleep 60",
    );
    b.config["linux"]["resources"] = json!({"memory": {"limit": 32 << 20, "swap": 32 << 20}});
    let (c, _) = detached(&rt, &b);
    let mut events = rt
        .cmd()
        .args(["events", "--interval", "1s", &c.id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    std::fs::write(b.rootfs().join("go"), "").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut oom = false;
    while Instant::now() < deadline && !oom {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["id"], c.id.as_str());
            oom = v["type"] == "oom";
            seen.push(line);
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    assert!(oom, "no oom event; saw {seen:?}");
}

#[test]
fn pause_stops_a_counter_and_resume_restarts_it() {
    let rt = Runtime::new();
    let shared = TempDir::new("counter");
    let mut b = Bundle::new(&[]);
    b.script("i=0; while true; do i=$((i+1)); echo $i > /data/c; sleep 0.02; done");
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/data", "type": "bind", "source": shared.path, "options": ["bind"]}),
    );
    let (c, _) = detached(&rt, &b);
    let read = || {
        std::fs::read_to_string(shared.path.join("c"))
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let wait_change = |from: u64| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while read() == from && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        read() != from
    };
    assert!(wait_change(0), "counter never started");
    rt.ok(&["pause", &c.id]);
    assert_eq!(rt.state(&c.id)["status"], "paused");
    let frozen = read();
    // Frozen means no change over many of its 20 ms periods.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read(), frozen, "counter moved while paused");
    let out = rt.run(&["pause", &c.id]);
    assert!(!out.status.success(), "pausing twice must fail");
    rt.ok(&["resume", &c.id]);
    assert_eq!(rt.state(&c.id)["status"], "running");
    assert!(wait_change(frozen), "counter did not restart");
    rt.ok(&["pause", &c.id]);
    rt.ok(&["delete", "--force", &c.id]);
    assert!(!rt.root.path.join(&c.id).exists());
}

#[test]
fn ps_lists_exactly_the_containers_processes_and_stats_are_plausible() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script("sleep 60 & sleep 60 & wait");
    let (c, pid) = detached(&rt, &b);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pids: Vec<i64>;
    loop {
        pids = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &c.id])).unwrap();
        if pids.len() == 3 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&pid));
    let table = rt.ok(&["ps", &c.id]);
    assert!(table.lines().next().unwrap().contains("PID"));
    assert_eq!(table.lines().count(), 4, "{table}");

    let line = rt.ok(&["events", "--stats", &c.id]);
    let v: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], c.id.as_str());
    assert_eq!(v["data"]["pids"]["current"], 3);
    assert!(v["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(v["data"]["cpu"]["usage"]["total"].as_u64().is_some());
}
