//! What networking costs, side by side in one run, as ratios:
//! - `run --rm busybox true` with bridge networking and with `--network none`, for wharf
//!   (driving hull and crun) and podman 4.3 with netavark (driving crun); the difference is
//!   each tool's per-container networking cost, and wharf's is compared with podman's.
//! - throughput of a published port on 127.0.0.1 against the container's own address;
//! - the time of `run -d` with two published ports for the 1st and the 21st container.
//!
//! docker 20.10 runs with its own bridge inside a network namespace the bench makes (its
//! iptables rules, docker0 and docker-proxy stay there); its published-port throughput is
//! docker-proxy's. Traffic goes only to loopback, the bench's namespace and its containers.
//!
//! Run: `cargo bench -p wharf --bench network` (`WHARF_BENCH_RUNS=N`, default 15).

#[path = "../../benches/src/cgroup.rs"]
mod cgroup;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "engines/dockerd.rs"]
mod dockerd;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn output(mut c: Command, what: &str) -> Result<String, String> {
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Wharf {
    bin: PathBuf,
    root: PathBuf,
}

impl Wharf {
    fn cmd(&self, runtime: &str) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--data-root")
            .arg(&self.root)
            .arg("--runtime")
            .arg(runtime);
        c
    }
}

/// A timed command: its label, how to make it, its samples.
type Row = (String, Box<dyn Fn() -> Command>, Vec<Duration>);

/// Interleaved rounds of every row (after one warm-up round).
fn run_costs(rows: &mut [Row], runs: usize) -> Result<(), String> {
    for round in 0..=runs {
        for (name, cmd, samples) in rows.iter_mut() {
            let mut c = cmd();
            c.stdin(Stdio::null()).stdout(Stdio::null());
            let start = Instant::now();
            output(c, name)?;
            if round > 0 {
                samples.push(start.elapsed());
            }
        }
    }
    Ok(())
}

/// MB/s of 64 MiB sent to `addr` (a container running `nc -l` into /dev/null, which
/// restarts between connections: a refused or cut connection is retried).
fn throughput(addr: SocketAddr) -> Result<f64, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match send_once(addr) {
            Ok(rate) => return Ok(rate),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{addr}: {e}")),
        }
    }
}

fn send_once(addr: SocketAddr) -> std::io::Result<f64> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    let chunk = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    for _ in 0..64 {
        s.write_all(&chunk)?;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    Ok(64.0 / start.elapsed().as_secs_f64())
}

/// What podman's CNI bridge adds to the host (the `cni-podman0` link, iptables-nft tables
/// `ip nat` and `ip filter`): links and tables that appear while this guard lives are
/// removed when it goes, however the bench ends.
struct HostChanges {
    tables: Vec<String>,
    links: Vec<String>,
}

impl HostChanges {
    fn tables() -> Vec<String> {
        Command::new("nft")
            .args(["list", "tables"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| l.strip_prefix("table "))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn links() -> Vec<String> {
        std::fs::read_dir("/sys/class/net")
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn watch() -> Self {
        Self {
            tables: Self::tables(),
            links: Self::links(),
        }
    }
}

impl Drop for HostChanges {
    fn drop(&mut self) {
        for t in Self::tables()
            .into_iter()
            .filter(|t| !self.tables.contains(t))
        {
            let mut del = vec!["delete", "table"];
            del.extend(t.split(' '));
            let _ = Command::new("nft").args(&del).status();
        }
        for l in Self::links()
            .into_iter()
            .filter(|l| !self.links.contains(l))
        {
            let _ = Command::new("ip").args(["link", "del", &l]).status();
        }
    }
}

fn main() {
    if !support::ready("network", &["podman", "crun", "nft"]) {
        return;
    }
    let runs: usize = support::env_or("WHARF_BENCH_RUNS", 15);
    let hull = support::hull().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("busybox.tar");
    support::rootfs_tar(&tar, &["sh", "true", "nc", "sleep"]);
    let w = Wharf {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_wharf")),
        root: dir.path().join("wharf"),
    };
    let mut import = w.cmd("runc");
    import
        .args(["import", "-c", "CMD [\"sh\"]"])
        .arg(&tar)
        .arg("busybox");
    output(import, "wharf import").unwrap();
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
    output(import, "podman import").unwrap();

    let docker = match dockerd::Dockerd::start(&dir.path().join("docker")) {
        Ok(d) => {
            let mut import = d.client()();
            import.arg("import").arg(&tar).arg("busybox");
            output(import, "docker import").unwrap();
            Some(d)
        }
        Err(why) => {
            println!("docker 20.10: not measured ({why})");
            None
        }
    };
    let host_changes = HostChanges::watch();
    let hugetlb = cgroup::ensure_hugetlb_v1().expect("hugetlb as cgroup v1 for crun");
    let result = measure(&w, &hull, &podman, docker.as_ref(), runs);
    // Everything that made cgroups goes before hugetlb returns to cgroup2: a cgroup left
    // in the v1 hierarchy would keep it there.
    drop(docker);
    let mut reset = podman();
    reset.args(["system", "reset", "--force"]);
    let _ = reset.stdout(Stdio::null()).stderr(Stdio::null()).status();
    if let Ok(o) = w.cmd(&hull).args(["ps", "-aq"]).output() {
        for id in String::from_utf8_lossy(&o.stdout).lines() {
            let _ = w.cmd(&hull).args(["rm", "-f", id]).output();
        }
    }
    common::remove_network_state(&w.root);
    common::remove_cgroup_tree("libpod_parent");
    common::remove_empty_cgroup_parents(&["wharf"]);
    drop(hugetlb);
    drop(host_changes);
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn measure(
    w: &Wharf,
    hull: &str,
    podman: &(impl Fn() -> Command + Clone + 'static),
    docker: Option<&dockerd::Dockerd>,
    runs: usize,
) -> Result<(), String> {
    let mut rows: Vec<Row> = Vec::new();
    for (label, rt) in [("hull", hull.to_string()), ("crun", "crun".to_string())] {
        for net in ["bridge", "none"] {
            let (bin, root, rt) = (w.bin.clone(), w.root.clone(), rt.clone());
            rows.push((
                format!("wharf + {label}, {net}"),
                Box::new(move || {
                    let mut c = Command::new(&bin);
                    c.arg("--data-root").arg(&root).arg("--runtime").arg(&rt);
                    c.args(["run", "--rm", "--network", net, "busybox", "true"]);
                    c
                }),
                Vec::new(),
            ));
        }
    }
    for net in ["bridge", "none"] {
        let podman = podman.clone();
        rows.push((
            format!("podman + crun, {net}"),
            Box::new(move || {
                let mut c = podman();
                c.args([
                    "--runtime",
                    "crun",
                    "run",
                    "--rm",
                    "--network",
                    net,
                    "busybox",
                    "true",
                ]);
                c
            }),
            Vec::new(),
        ));
    }
    if let Some(d) = docker {
        for net in ["bridge", "none"] {
            let client = d.client();
            rows.push((
                format!("docker + runc, {net}"),
                Box::new(move || {
                    let mut c = client();
                    c.args(["run", "--rm", "--network", net, "busybox", "true"]);
                    c
                }),
                Vec::new(),
            ));
        }
    }
    run_costs(&mut rows, runs)?;
    let medians: Vec<(String, Duration)> = rows
        .iter_mut()
        .map(|(n, _, s)| (n.clone(), support::median(s)))
        .collect();
    let get = |n: &str| medians.iter().find(|(m, _)| m == n).map(|m| m.1).unwrap();
    println!("run --rm busybox true, {runs} samples each, interleaved; median");
    for (n, m) in &medians {
        println!("{n:<26} {:>8.1}ms", ms(*m));
    }
    let cost =
        |tool: &str| get(&format!("{tool}, bridge")).saturating_sub(get(&format!("{tool}, none")));
    let (wh, wc, pc) = (
        cost("wharf + hull"),
        cost("wharf + crun"),
        cost("podman + crun"),
    );
    support::figure(
        "wharf run --rm busybox true, bridge (hull)",
        (ms(get("wharf + hull, bridge")), "ms"),
        ("podman + crun, bridge", ms(get("podman + crun, bridge"))),
        0.3,
    );
    println!("networking cost per container (bridge - none):");
    println!("  wharf + hull {:>7.1}ms", ms(wh));
    println!("  wharf + crun {:>7.1}ms", ms(wc));
    println!("  podman + crun {:>6.1}ms (netavark)", ms(pc));
    if docker.is_some() {
        println!(
            "  docker + runc {:>6.1}ms (libnetwork)",
            ms(cost("docker + runc"))
        );
    }
    println!(
        "  wharf / podman, same runtime (crun): {:.2}x (goal <= 0.33x)",
        wc.as_secs_f64() / pc.as_secs_f64().max(1e-9)
    );

    // Throughput: published port on 127.0.0.1 vs the container's own address.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut sink = w.cmd(hull);
    sink.args(["run", "-d", "--name", "sink", "-p"])
        .arg(format!("127.0.0.1:{port}:80"))
        .args([
            "busybox",
            "sh",
            "-c",
            "while :; do nc -l -p 80 >/dev/null; done",
        ]);
    output(sink, "wharf run sink")?;
    let mut ip = w.cmd(hull);
    ip.args(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "sink"]);
    let ip: std::net::Ipv4Addr = output(ip, "inspect")?
        .trim()
        .parse()
        .map_err(|e| format!("container address: {e}"))?;
    let mut direct = Vec::new();
    let mut published = Vec::new();
    for _ in 0..5 {
        direct.push(throughput(SocketAddr::from((ip, 80)))?);
        published.push(throughput(SocketAddr::from(([127, 0, 0, 1], port)))?);
    }
    direct.sort_by(f64::total_cmp);
    published.sort_by(f64::total_cmp);
    let (d, p) = (direct[2], published[2]);
    println!("throughput, 64 MiB per connection, median of 5:");
    println!("  wharf: container address {d:>8.0} MB/s");
    println!(
        "  wharf: 127.0.0.1 published {p:>6.0} MB/s  ({:.2}x, goal >= 0.9x)",
        p / d
    );
    let _ = w.cmd(hull).args(["rm", "-f", "sink"]).output();
    if let Some(dk) = docker {
        let mut sink = dk.client()();
        sink.args(["run", "-d", "--name", "sink", "-p", "127.0.0.1:8080:80"])
            .args([
                "busybox",
                "sh",
                "-c",
                "while :; do nc -l -p 80 >/dev/null; done",
            ]);
        output(sink, "docker run sink")?;
        let mut ip = dk.client()();
        ip.args(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "sink"]);
        let ip: std::net::Ipv4Addr = output(ip, "docker inspect")?
            .trim()
            .parse()
            .map_err(|e| format!("docker container address: {e}"))?;
        let (mut dd, mut dp) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            dd.push(dk.inside(move || throughput(SocketAddr::from((ip, 80))))??);
            dp.push(dk.inside(|| throughput(SocketAddr::from(([127, 0, 0, 1], 8080))))??);
        }
        dd.sort_by(f64::total_cmp);
        dp.sort_by(f64::total_cmp);
        println!("  docker: container address {:>7.0} MB/s", dd[2]);
        println!(
            "  docker: 127.0.0.1 via docker-proxy {:>4.0} MB/s  ({:.2}x; wharf's published port is {:.2}x docker-proxy's)",
            dp[2],
            dp[2] / dd[2],
            p / dp[2]
        );
    }

    // The 1st and the 21st container with two published ports each, three rounds.
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let mut times = Vec::new();
        for i in 0..21 {
            let free = || -> Result<u16, String> {
                TcpListener::bind("0.0.0.0:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .map_err(|e| e.to_string())
            };
            let mut c = w.cmd(hull);
            c.args(["run", "-d", "--name", &format!("p{i}"), "-p"])
                .arg(format!("{}:80", free()?))
                .arg("-p")
                .arg(format!("{}:81", free()?))
                .args(["busybox", "sleep", "600"]);
            let start = Instant::now();
            output(c, "wharf run -d -p -p")?;
            times.push(start.elapsed());
        }
        first.push(times[0]);
        last.push(times[20]);
        for i in 0..21 {
            let _ = w.cmd(hull).args(["rm", "-f", &format!("p{i}")]).output();
        }
    }
    let (f, l) = (support::median(&mut first), support::median(&mut last));
    println!("run -d with two published ports (wharf + hull), median of 3 rounds:");
    println!("  1st container  {:>7.1}ms", ms(f));
    println!(
        "  21st container {:>7.1}ms  ({:.2}x the 1st)",
        ms(l),
        l.as_secs_f64() / f.as_secs_f64()
    );
    Ok(())
}
