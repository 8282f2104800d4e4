//! Resources on this machine's cgroup layout: limits that reach the cgroup files and hold,
//! update, pause/resume, events, ps, and OOM.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use integration::features::{self, Feature};
use integration::{cgroup_dir, cgroup_file, run_script, Bundle, Container, Runtime, TempDir};
use serde_json::{json, Value};

fn v1() -> bool {
    features::missing(Feature::CgroupV1).is_none()
}

/// The block I/O weight: blkio.weight, or blkio.bfq.weight where only BFQ has one.
fn blkio_weight(pid: i64) -> String {
    let dir = cgroup_dir(pid, "blkio");
    let file = if dir.join("blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    cgroup_file(pid, "blkio", file)
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
    // tail keeps a line without newline in memory: 256 MiB of zeros in a 32 MiB cgroup.
    let wait = "while [ ! -e /go ]; do sleep 0.05; done";
    oom_is_reported(&format!(
        "{wait}; head -c 268435456 /dev/zero | tail; sleep 60"
    ));
    // The OOM kill of PID 1 also ends the container: events still reports it.
    oom_is_reported(&format!("{wait}; exec tail /dev/zero"));
}

/// Runs `script` in a 32 MiB container, makes /go once `events` watches, and expects an
/// oom event.
fn oom_is_reported(script: &str) {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script(script);
    b.config["linux"]["resources"] = json!({"memory": {"limit": 32 << 20, "swap": 32 << 20}});
    let (c, _) = detached(&rt, &b);
    let mut events = rt
        .cmd()
        .args(["events", "--interval", "100ms", &c.id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
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
            // The first stats line means events is watching: only now start the hog.
            if seen.is_empty() {
                std::fs::write(b.rootfs().join("go"), "").unwrap();
            }
            oom = v["type"] == "oom";
            if oom {
                // runc's exact line, which callers match: no data.
                assert_eq!(line, format!(r#"{{"type":"oom","id":"{}"}}"#, c.id));
            }
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

/// major:minor of a whole disk, for block I/O throttles (the kernel refuses partitions and
/// virtual devices).
fn a_disk() -> Option<String> {
    std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            !["loop", "zram", "ram", "dm-", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .find_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|s| s.trim().to_string())
}

#[test]
fn every_v1_resource_reaches_its_file_and_every_update_flag_too() {
    if !features::require(Feature::CgroupV1, "v1 cgroup files") {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "60"]);
    let disk = a_disk();
    let swap = features::require(Feature::SwapAccounting, "memory.swap and --memory-swap");
    let rt_sched = features::require(
        Feature::RtGroupSched,
        "cpu.realtimePeriod/realtimeRuntime and --cpu-rt-*",
    );
    let weight = features::require(Feature::BlkioWeight, "blockIO.weight and --blkio-weight");
    let mut resources = json!({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20,
                   "swappiness": 10, "disableOOMKiller": true},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "blockIO": {},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    });
    if swap {
        resources["memory"]["swap"] = json!(128 << 20);
    }
    if rt_sched {
        resources["cpu"]["realtimePeriod"] = json!(1000000);
        resources["cpu"]["realtimeRuntime"] = json!(0);
    }
    if weight {
        resources["blockIO"]["weight"] = json!(200);
    }
    match &disk {
        Some(d) => {
            let (major, minor) = d.split_once(':').unwrap();
            let dev = |rate: u64| json!([{"major": major.parse::<u64>().unwrap(), "minor": minor.parse::<u64>().unwrap(), "rate": rate}]);
            resources["blockIO"]["throttleReadBpsDevice"] = dev(1 << 20);
            resources["blockIO"]["throttleWriteBpsDevice"] = dev(2 << 20);
            resources["blockIO"]["throttleReadIOPSDevice"] = dev(100);
            resources["blockIO"]["throttleWriteIOPSDevice"] = dev(200);
        }
        None => integration::skip("no whole disk in /sys/block: block I/O throttles not tested"),
    }
    b.config["linux"]["resources"] = resources;
    let (c, pid) = detached(&rt, &b);
    let f = |ctrl: &str, file: &str| cgroup_file(pid, ctrl, file);
    assert_eq!(
        f("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        f("memory", "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    if swap {
        assert_eq!(
            f("memory", "memory.memsw.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
    }
    assert_eq!(f("memory", "memory.swappiness"), "10");
    assert!(f("memory", "memory.oom_control").contains("oom_kill_disable 1"));
    assert_eq!(f("cpu", "cpu.shares"), "512");
    assert_eq!(f("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(f("cpu", "cpu.cfs_period_us"), "100000");
    if rt_sched {
        assert_eq!(f("cpu", "cpu.rt_period_us"), "1000000");
        assert_eq!(f("cpu", "cpu.rt_runtime_us"), "0");
    }
    assert_eq!(f("cpuset", "cpuset.cpus"), "0");
    assert_eq!(f("cpuset", "cpuset.mems"), "0");
    assert_eq!(f("pids", "pids.max"), "50");
    if weight {
        assert_eq!(blkio_weight(pid), "200");
    }
    if let Some(d) = &disk {
        assert_eq!(
            f("blkio", "blkio.throttle.read_bps_device"),
            format!("{d} {}", 1 << 20)
        );
        assert_eq!(
            f("blkio", "blkio.throttle.write_bps_device"),
            format!("{d} {}", 2 << 20)
        );
        assert_eq!(
            f("blkio", "blkio.throttle.read_iops_device"),
            format!("{d} 100")
        );
        assert_eq!(
            f("blkio", "blkio.throttle.write_iops_device"),
            format!("{d} 200")
        );
    }
    let devices = f("devices", "devices.list");
    assert!(devices.lines().any(|l| l == "c 1:3 rwm"), "{devices}");
    assert!(!devices.contains("a *:* rwm"), "{devices}");

    let mut update: Vec<&str> = vec![
        "update",
        "--memory",
        "96m",
        "--memory-reservation",
        "48m",
        "--cpu-period",
        "200000",
        "--cpu-quota",
        "30000",
        "--cpu-share",
        "300",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--pids-limit",
        "30",
    ];
    if swap {
        update.extend(["--memory-swap", "192m"]);
    }
    if rt_sched {
        update.extend(["--cpu-rt-period", "900000", "--cpu-rt-runtime", "0"]);
    }
    if weight {
        update.extend(["--blkio-weight", "300"]);
    }
    update.push(&c.id);
    rt.ok(&update);
    assert_eq!(
        f("memory", "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(
        f("memory", "memory.soft_limit_in_bytes"),
        (48u64 << 20).to_string()
    );
    if swap {
        assert_eq!(
            f("memory", "memory.memsw.limit_in_bytes"),
            (192u64 << 20).to_string()
        );
    }
    assert_eq!(f("cpu", "cpu.cfs_period_us"), "200000");
    assert_eq!(f("cpu", "cpu.cfs_quota_us"), "30000");
    assert_eq!(f("cpu", "cpu.shares"), "300");
    if rt_sched {
        assert_eq!(f("cpu", "cpu.rt_period_us"), "900000");
    }
    assert_eq!(f("pids", "pids.max"), "30");
    if weight {
        assert_eq!(blkio_weight(pid), "300");
    }

    if !features::require(Feature::CpuIdle, "cpu.idle") {
        return;
    }
    let dir = TempDir::new("resources");
    let file = dir.path.join("r.json");
    std::fs::write(&file, json!({"cpu": {"idle": 1}}).to_string()).unwrap();
    let idle = rt.run(&["update", "-r", file.to_str().unwrap(), &c.id]);
    if rt.is_hull() {
        assert!(
            idle.status.success(),
            "{}",
            String::from_utf8_lossy(&idle.stderr)
        );
        assert_eq!(f("cpu", "cpu.idle"), "1");
    } else if f("cpu", "cpu.idle") != "1" {
        println!("reference runtime: cpu.idle not applied ({})", idle.status);
    }
}

/// Without a blkio weight file (no BFQ), a weight is an error that names the field and why, at
/// create and at update, and the failed create leaves no cgroup behind.
#[test]
fn a_blkio_weight_without_bfq_is_a_clear_error() {
    if features::missing(Feature::CgroupV1).is_some() {
        return integration::skip("checks the v1 blkio controller; this host is unified v2");
    }
    if features::missing(Feature::BlkioWeight).is_none() {
        return integration::skip(
            "this kernel has a blkio weight file (BFQ): the refusal is not testable here",
        );
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "60"]);
    let cgroup = format!("/{}", integration::unique("hull-weight"));
    b.config["linux"]["cgroupsPath"] = json!(cgroup);
    b.config["linux"]["resources"] = json!({"blockIO": {"weight": 200}});
    b.save();
    let c = Container::new(&rt);
    let out = rt.run(&["create", "--bundle", b.path_str(), &c.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a weight was accepted without BFQ");
    if rt.is_hull() {
        assert!(
            err.contains(
                "linux.resources.blockIO.weight: this kernel's blkio controller has no weight \
                 file (it needs the BFQ scheduler)"
            ),
            "{err}"
        );
    }
    for d in integration::cgroup_dirs(&cgroup) {
        assert!(!d.exists(), "{d:?} left behind by a failed create");
    }
    assert!(
        !rt.run(&["state", &c.id]).status.success(),
        "state left behind"
    );

    b.config["linux"]["resources"] = json!({"pids": {"limit": 10}});
    let (c, _) = detached(&rt, &b);
    let out = rt.run(&["update", "--blkio-weight", "300", &c.id]);
    assert!(!out.status.success(), "--blkio-weight accepted without BFQ");
    if rt.is_hull() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("linux.resources.blockIO.weight"), "{err}");
    }
    drop(c);
    integration::remove_empty_cgroups(&cgroup);
}

/// Requests this host cannot honour: an error naming the resource, and nothing left behind.
#[test]
fn resources_the_host_lacks_are_errors_not_ignored() {
    if !v1() {
        return integration::skip("checks v1/hybrid refusals; this host is unified v2");
    }
    let rt = Runtime::new();
    let mounted = |h: &str| {
        std::path::Path::new("/sys/fs/cgroup")
            .join(h)
            .join("tasks")
            .exists()
    };
    let mut cases = vec![(
        "unified",
        json!({"unified": {"memory.high": "1000000"}}),
        "linux.resources.unified",
    )];
    if !mounted("hugetlb") {
        cases.push((
            "hugetlb",
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}]}),
            "hugetlb",
        ));
    } else {
        integration::skip("hugetlb is a v1 hierarchy here: its refusal is not testable");
    }
    if !mounted("net_cls") && !mounted("net_cls,net_prio") {
        cases.push(("network", json!({"network": {"classID": 1048577}}), "net_"));
    } else {
        integration::skip("net_cls is mounted here: its refusal is not testable");
    }
    for (what, resources, named) in cases {
        let mut b = Bundle::new(&["true"]);
        b.config["linux"]["resources"] = resources;
        b.config["linux"]["cgroupsPath"] =
            json!(format!("/hull-refused-{}", integration::unique(what)));
        b.save();
        let c = Container::new(&rt);
        let out = rt.run(&["create", "--bundle", b.path_str(), &c.id]);
        let err = String::from_utf8_lossy(&out.stderr);
        let path = b.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap()
            .to_string();
        let leftovers: Vec<_> = integration::cgroup_dirs(&path)
            .into_iter()
            .filter(|d| d.exists())
            .collect();
        integration::remove_empty_cgroups(&path);
        if !rt.is_hull() {
            if out.status.success() {
                println!("reference runtime accepts {what} on this host: {err}");
            }
            continue;
        }
        assert!(!out.status.success(), "{what} accepted");
        assert!(err.contains(named), "{what}: {err}");
        assert_eq!(rt.ok(&["list", "-q"]), "", "{what}: no container left");
        assert!(leftovers.is_empty(), "{what}: cgroups left: {leftovers:?}");
    }
}

#[test]
fn kernel_memory_is_ignored_with_a_warning() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["resources"] = json!({"memory": {"kernel": 64 << 20, "kernelTCP": 16 << 20}});
    b.save();
    let c = Container::new(&rt);
    let out = rt.run(&["create", "--bundle", b.path_str(), &c.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.to_lowercase().contains("kernel memory") && err.contains("ignored"),
        "{err}"
    );
}

#[test]
fn systemd_driver_refuses_what_it_cannot_do() {
    let rt = Runtime::new();
    let systemd = std::path::Path::new("/run/systemd/system").exists();
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if systemd && unified {
        return integration::skip("systemd runs on cgroup v2 here: the refusals are not testable");
    }
    let c = Container::new(&rt);
    let create = |cgroups_path: Option<&str>| {
        let mut b = Bundle::new(&["true"]);
        if let Some(p) = cgroups_path {
            b.config["linux"]["cgroupsPath"] = json!(p);
        }
        b.save();
        let out = rt.run(&[
            "--systemd-cgroup",
            "create",
            "--bundle",
            b.path_str(),
            &c.id,
        ]);
        assert!(!out.status.success(), "created with --systemd-cgroup");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = create(None);
    if rt.is_hull() {
        assert!(err.contains("--systemd-cgroup"), "{err}");
        assert_eq!(rt.ok(&["list", "-q"]), "", "nothing left");
        let err = create(Some("/not/a/systemd/path"));
        assert!(
            err.contains("linux.cgroupsPath") && err.contains("slice:prefix:name"),
            "{err}"
        );
    }
}

/// runc's conversion of v1 cpu shares to a v2 cpu.weight, which libcgroups applies.
fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares - 2) * 9999) / 262142
}

#[test]
fn shares_to_weight_matches_runc() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262144), 10000);
}

#[test]
fn unified_v2_resources_reach_their_files() {
    if v1() || !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return integration::skip(
            "needs the unified cgroup v2 layout; this host mounts v1 controllers (hybrid)",
        );
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 64 << 20},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
        "pids": {"limit": 50},
        "unified": {"memory.high": "50331648"}
    });
    let (_c, pid) = detached(&rt, &b);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap()
        .to_string();
    let f = |file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup{rel}/{file}"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(f("memory.max"), (64u64 << 20).to_string());
    assert_eq!(f("memory.high"), "50331648");
    assert_eq!(f("cpu.weight"), shares_to_weight(1024).to_string());
    assert_eq!(f("cpu.max"), "50000 100000");
    assert_eq!(f("pids.max"), "50");
}

/// Without `cgroupsPath` a container's cgroup is `/<id>` in every hierarchy, where crun and runc
/// (started from the root cgroup) put it, and its delete leaves nothing there. runc 1.1.5 puts
/// it below its own cgroup instead (README, behaviour decisions): the caller's here.
#[test]
fn the_default_cgroup_is_the_id_under_each_root() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["cat", "/proc/self/cgroup"]);
    // A cgroup namespace would show every path as "/".
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    b.save();
    let c = Container::new(&rt);
    let out = rt.run(&["run", "--bundle", b.path_str(), &c.id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let parent = |hierarchy: &str| match rt.is_hull() {
        true => String::new(),
        false => own
            .lines()
            .find_map(|l| l.rsplit_once(':').filter(|(h, _)| *h == hierarchy))
            .map(|(_, p)| p.trim_end_matches('/').to_string())
            .unwrap_or_default(),
    };
    assert!(text.lines().count() > 1, "{text}");
    for line in text.lines() {
        if !integration::hierarchy_mounted(line) {
            println!("not mounted here, so no runtime's: {line}");
            continue;
        }
        let (hierarchy, path) = line.rsplit_once(':').unwrap();
        assert_eq!(path, format!("{}/{}", parent(hierarchy), c.id), "{text}");
    }
    for d in integration::cgroup_dirs(&format!("/{}", c.id)) {
        assert!(!d.exists(), "{d:?} left behind");
    }
}

/// A cgroup the container cannot start in is refused before anything is made, without
/// blocking: a frozen one (init would freeze on joining it) and one that already has processes.
/// The cgroup, which the caller made, stays.
#[test]
fn frozen_or_busy_cgroups_are_refused_without_blocking() {
    if !v1() {
        return integration::skip("uses the v1 freezer; this host is unified v2");
    }
    let rt = Runtime::new();
    let cgroup = format!("/{}", integration::unique("hull-frozen"));
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer").join(&cgroup[1..]);
    std::fs::create_dir_all(&freezer).unwrap();
    struct Thaw(std::path::PathBuf, String);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
            integration::remove_empty_cgroups(&self.1);
        }
    }
    let _thaw = Thaw(freezer.clone(), cgroup.clone());
    std::fs::write(freezer.join("freezer.state"), "FROZEN").unwrap();
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["linux"]["cgroupsPath"] = json!(cgroup);
    b.save();
    let c = Container::new(&rt);
    let mut child = rt
        .cmd()
        .args(["create", "--bundle", b.path_str(), &c.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = integration::wait_with_deadline(&mut child, Duration::from_secs(10)) else {
        let _ = std::fs::write(freezer.join("freezer.state"), "THAWED");
        panic!("create blocked on a frozen cgroup");
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("container's cgroup unexpectedly frozen"),
        "{err}"
    );
    assert!(freezer.is_dir(), "the caller's cgroup was removed");
    std::fs::write(freezer.join("freezer.state"), "THAWED").unwrap();

    // A cgroup with another container's processes in it.
    if !rt.is_hull() {
        return integration::skip("runc 1.1.5 predates runc 1.2's check for a non-empty cgroup");
    }
    let (first, _) = detached(&rt, &b);
    let second = Container::new(&rt);
    let out = rt.run(&["create", "--bundle", b.path_str(), &second.id]);
    assert!(!out.status.success(), "a busy cgroup was taken");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container's cgroup is not empty"),
        "{out:?}"
    );
    assert_eq!(rt.state(&first.id)["status"], "running");
}

/// pids.limit 0 would leave no room even for init: it means 1, as in runc 1.2+ (and systemd);
/// -1 means no limit.
#[test]
fn a_pids_limit_of_0_means_1_and_minus_1_means_max() {
    if !v1() {
        return integration::skip("checks v1 cgroup files; this host is unified v2");
    }
    let rt = Runtime::new();
    for (limit, want) in [(0, "1"), (-1, "max")] {
        let mut b = Bundle::new(&["sleep", "60"]);
        b.config["linux"]["resources"] = json!({"pids": {"limit": limit}});
        let (_c, pid) = detached(&rt, &b);
        let got = cgroup_file(pid, "pids", "pids.max");
        if !rt.is_hull() && limit == 0 && got != want {
            integration::skip("runc 1.1.5 writes a pids limit of 0 as it is");
            continue;
        }
        assert_eq!(got, want, "pids.limit {limit}");
    }
}

/// On v1, a lower CFS period with a quota under a parent (pod) limit, and RT period/runtime
/// pairs in both directions: the values depend on each other, and each update succeeds
/// whatever the order the kernel needs (runc's order).
#[test]
fn dependent_cpu_values_update_in_the_order_the_kernel_takes() {
    if !v1() {
        return integration::skip("v1 cpu files; this host is unified v2");
    }
    let rt = Runtime::new();
    let pod = format!("/{}", integration::unique("hull-pod"));
    let cpu = std::path::Path::new("/sys/fs/cgroup/cpu").join(&pod[1..]);
    std::fs::create_dir_all(&cpu).unwrap();
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            integration::remove_empty_cgroups(&self.0);
        }
    }
    let _pod = Remove(pod.clone());
    std::fs::write(cpu.join("cpu.cfs_quota_us"), "50000").unwrap();
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["linux"]["cgroupsPath"] = json!(format!("{pod}/ctr"));
    let (c, pid) = detached(&rt, &b);
    let out = rt.run(&["update", "--cpu-quota", "60000", &c.id]);
    assert!(!out.status.success(), "60% under a 50% pod limit must fail");
    rt.ok(&[
        "update",
        "--cpu-period",
        "10000",
        "--cpu-quota",
        "3000",
        &c.id,
    ]);
    assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_period_us"), "10000");
    assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_quota_us"), "3000");
    drop(c);

    if !features::require(Feature::RtGroupSched, "RT period and runtime updates") {
        return;
    }
    std::fs::write(cpu.join("cpu.rt_period_us"), "1000000").unwrap();
    std::fs::write(cpu.join("cpu.rt_runtime_us"), "950000").unwrap();
    let (c, pid) = detached(&rt, &b);
    for (period, runtime) in [("10000", "3000"), ("100000", "20000"), ("900001", "600001")] {
        rt.ok(&[
            "update",
            "--cpu-rt-period",
            period,
            "--cpu-rt-runtime",
            runtime,
            &c.id,
        ]);
        assert_eq!(cgroup_file(pid, "cpu", "cpu.rt_period_us"), period);
        assert_eq!(cgroup_file(pid, "cpu", "cpu.rt_runtime_us"), runtime);
    }
}

/// Device rules that change nothing (a deny after "deny all", here with an access letter the
/// kernel refuses) are not written: the container starts, and updates do not open a gap.
#[test]
fn device_rules_that_change_nothing_are_not_written() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        return integration::skip("runc 1.1.5 writes every rule (runc 1.2 computes transitions)");
    }
    let mut b = Bundle::new(&[]);
    b.script(
        "head -c 1 /dev/kmsg >/dev/null 2>&1 && echo read-kmsg; echo x > /dev/null && echo null-ok",
    );
    b.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwa"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]);
    b.config["linux"]["devices"] =
        json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
    let (code, out, err) = integration::run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "null-ok\n");
}

/// A createRuntime hook, the first thing of the container's that the host runs, finds init
/// in the container's cgroup in every hierarchy: on v1 hull makes the cgroup after the clone,
/// while init sets up its namespaces and mounts, and init must have joined by then.
#[test]
fn create_hooks_find_init_in_its_cgroup_in_every_hierarchy() {
    let rt = Runtime::new();
    let dir = TempDir::new("hookcg");
    let seen = dir.path.join("init.cgroup");
    let mut b = Bundle::new(&["true"]);
    let script = format!(
        r#"pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'); cat /proc/$pid/cgroup > {}"#,
        seen.display()
    );
    b.config["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    // No cgroup mount, whose set-up would join first: the join before the hooks is tested.
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup");
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let text = std::fs::read_to_string(&seen).expect("the hook ran");
    assert!(!text.is_empty());
    for line in text.lines() {
        if !integration::hierarchy_mounted(line) {
            println!("not mounted here, so no runtime's: {line}");
            continue;
        }
        let path = line.splitn(3, ':').nth(2).unwrap_or_default();
        assert!(
            path.ends_with(&format!("/{}", c.id)),
            "{line:?} is not the container's cgroup:\n{text}"
        );
    }
}

/// An init that fails early, while hull is still making its cgroup on v1, and exits: hull
/// reports init's own error, not the broken channel its word to init then meets.
#[test]
fn an_init_that_fails_while_the_cgroup_is_made_is_reported_in_its_words() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        integration::skip("runc words the /proc symlink refusal otherwise");
        return;
    }
    let b = Bundle::new(&["true"]);
    std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
    std::fs::create_dir(b.rootfs().join("fakeproc")).unwrap();
    std::os::unix::fs::symlink("/fakeproc", b.rootfs().join("proc")).unwrap();
    // The race is narrow: enough tries that the old behaviour failed every run here.
    for _ in 0..100 {
        let (code, _, err) = integration::run_bundle(&rt, &b);
        assert_ne!(code, 0);
        assert!(err.contains("symlink"), "{err}");
    }
}

/// The container's view of `/sys/fs/cgroup/cpu` without a cgroup namespace (a `runc spec`
/// config): its mountinfo line and its `cpu` line of /proc/self/cgroup. The tmpfs must come
/// first in /proc/mounts, as when init mounts it before the binds: runc's test of read-only
/// cgroup mounts takes the last line that names /sys/fs/cgroup as the binds' own.
fn cgroup_cpu_view(rt: &Runtime, propagation: Option<&str>) -> (Vec<String>, String) {
    let out = run_script(
        rt,
        "grep ' /sys/fs/cgroup/cpu ' /proc/self/mountinfo; grep ':cpu[,:]' /proc/self/cgroup; \
         test -r /sys/fs/cgroup/cpu/cpu.shares && echo readable; \
         grep -m1 /sys/fs/cgroup /proc/mounts | cut -d' ' -f2,3",
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "cgroup");
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
            if let Some(p) = propagation {
                c["linux"]["rootfsPropagation"] = json!(p);
            }
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[2], "readable", "{out}");
    assert_eq!(lines[3], "/sys/fs/cgroup tmpfs", "{out}");
    let mount = lines[0].split_whitespace().map(str::to_string).collect();
    let path = lines[1].rsplit(':').next().unwrap().to_string();
    (mount, path)
}

/// Makes a host mount shared for a test (systemd hosts have their cgroup hierarchies so) and
/// private again on drop, if it was private before.
struct SharedForTest(Option<&'static str>);

impl SharedForTest {
    fn new(path: &'static str) -> SharedForTest {
        let line = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some(path))
            .map(str::to_string)
            .unwrap_or_default();
        if line.contains(" shared:") {
            return SharedForTest(None);
        }
        let made = std::process::Command::new("mount")
            .args(["--make-shared", path])
            .status()
            .unwrap();
        assert!(made.success(), "mount --make-shared {path}");
        SharedForTest(Some(path))
    }
}

impl Drop for SharedForTest {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::process::Command::new("mount")
                .args(["--make-private", path])
                .status();
        }
    }
}

/// On v1, hull's side binds the container's cgroup for its cgroupfs mount while init sets up
/// (`Cgroup::hand_over`). The bind must be what init's own was: a read-only view of the
/// container's cgroup that is a slave of the host's hierarchy, never its peer (a peer would
/// carry the container's mounts back to the host). With another root propagation init binds
/// by itself, and the view is the same.
#[test]
fn cgroup_binds_are_read_only_slaves_of_the_host() {
    if !v1() {
        integration::skip("checks v1 cgroup binds; this host is not v1/hybrid");
        return;
    }
    let rt = Runtime::new();
    let _shared = SharedForTest::new("/sys/fs/cgroup/cpu");
    for propagation in [None, Some("rslave"), Some("rprivate")] {
        let (mount, path) = cgroup_cpu_view(&rt, propagation);
        let case = format!("{propagation:?}: {mount:?}");
        assert_eq!(mount[3], path, "the container's own cgroup: {case}");
        assert!(mount[5].split(',').any(|o| o == "ro"), "{case}");
        let tags: Vec<&str> = mount[6..]
            .iter()
            .take_while(|f| *f != "-")
            .map(String::as_str)
            .collect();
        assert!(!tags.iter().any(|t| t.starts_with("shared:")), "{case}");
        let slave = tags.iter().any(|t| t.starts_with("master:"));
        assert_eq!(slave, propagation != Some("rprivate"), "{case}");
    }
}
