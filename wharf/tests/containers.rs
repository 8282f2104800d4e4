//! Containers end to end, as root, through a real runtime: `WHARF_TEST_RUNTIME` picks it
//! (runc by default, which has every command; `hull` means the workspace's debug build).
//! Every test cleans up in a Drop guard: containers removed with `rm -f` (which stops
//! their monitors), anything still mounted under the temp dir unmounted deepest first,
//! and the temp dir removed without crossing filesystems.
//!
//! crun 1.8.1 refuses this machine's hybrid cgroup layout while cgroup2 holds hugetlb: with
//! crun, the tests mount hugetlb as a v1 hierarchy (the benches' helper) while any of them
//! runs, and the last one to finish undoes it.

#[path = "containers/api.rs"]
mod api;
#[path = "containers/building.rs"]
mod building;
#[path = "../../benches/src/cgroup.rs"]
mod cgroup;
mod common;
#[path = "containers/everyday.rs"]
mod everyday;
#[path = "containers/faults.rs"]
mod faults;
#[path = "containers/load.rs"]
mod load;
#[path = "containers/networking.rs"]
mod networking;

use std::path::PathBuf;
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::Env;

fn runtime() -> String {
    match std::env::var("WHARF_TEST_RUNTIME").as_deref() {
        Ok("hull") => hull().display().to_string(),
        Ok(other) => other.to_string(),
        Err(_) => "runc".to_string(),
    }
}

/// The workspace's debug hull, beside this crate (built with `cargo build -p hull`).
fn hull() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/hull")
}

struct Guard {
    env: Env,
    runtime: String,
    crun: bool,
}

/// What the running crun tests share on the host: the hugetlb v1 mount. (The /wharf cgroup
/// parent is the last `common::Env`'s to remove.)
struct HostShare {
    hugetlb_holders: usize,
    hugetlb: Option<cgroup::HugetlbV1>,
}

static HOST: Mutex<HostShare> = Mutex::new(HostShare {
    hugetlb_holders: 0,
    hugetlb: None,
});

fn host_share() -> std::sync::MutexGuard<'static, HostShare> {
    HOST.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a share, mounting hugetlb as v1 for the first crun taker.
fn hold_host(crun: bool) {
    if !crun {
        return;
    }
    let mut host = host_share();
    if host.hugetlb_holders == 0 {
        host.hugetlb = cgroup::ensure_hugetlb_v1().expect("mount hugetlb as cgroup v1 for crun");
    }
    host.hugetlb_holders += 1;
}

/// Gives a share back; the last one undoes what the first did.
fn release_host(crun: bool) {
    if !crun {
        return;
    }
    let mut host = host_share();
    host.hugetlb_holders -= 1;
    if host.hugetlb_holders == 0 {
        host.hugetlb = None;
    }
}

impl Guard {
    /// None (after printing why) when we are not root or the runtime is missing.
    fn new(runtime: &str) -> Option<Self> {
        if !nix_is_root() {
            integration::skip("containers need root");
            return None;
        }
        if wharf::runtime::resolve(runtime).is_err() {
            integration::skip(&format!("runtime {runtime} not found"));
            return None;
        }
        // Any guard of the crun suite (hull's too) holds the hugetlb mount: the last
        // crun guard to go would otherwise unmount it under this one's containers.
        let crun = [runtime, self::runtime().as_str()]
            .iter()
            .any(|r| r.rsplit('/').next() == Some("crun"));
        hold_host(crun);
        let g = Self {
            env: Env::new(),
            runtime: runtime.to_string(),
            crun,
        };
        g.import();
        Some(g)
    }

    fn import(&self) {
        let t = self.env.path("busybox.tar");
        write_rootfs(&t);
        self.env.ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            t.to_str().unwrap(),
            "busybox",
        ]);
    }

    /// busybox as the image `withvol`, whose config declares `VOLUME /tmp`.
    fn import_with_volume_at_tmp(&self) {
        let tar = self.env.path("busybox.tar").display().to_string();
        self.ok(&[
            "import",
            "-c",
            "VOLUME /tmp",
            "-c",
            "CMD [\"sh\"]",
            &tar,
            "withvol",
        ]);
    }

    /// A build context directory `name` in the test's directory holding `dockerfile`.
    fn build_context(&self, name: &str, dockerfile: &str) -> PathBuf {
        let ctx = self.env.path(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        ctx
    }

    fn run(&self, args: &[&str]) -> Output {
        self.env
            .wharf()
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args)
            .output()
            .expect("run wharf")
    }

    /// A plain process command for wharf with this guard's data root and runtime, for
    /// tests that need to control its stdio or terminal.
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("wharf"));
        c.arg("--data-root")
            .arg(self.env.root())
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args)
            .env_remove("WHARF_ROOT")
            .env("DOCKER_CONFIG", self.env.dir.path().join("docker-config"));
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wharf {args:?} failed ({:?}): {}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `f` until it returns Some or `secs` pass.
    fn until<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid of the monitor of the running container `name`: its process's parent.
    fn monitor_of(&self, name: &str) -> i32 {
        let pid = self.inspect(name, "{{.State.Pid}}");
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    fn inspect(&self, name: &str, template: &str) -> String {
        self.ok(&["inspect", "-f", template, name])
            .trim()
            .to_string()
    }

    /// Nothing of any container is left: no record, directory, mount or runtime state.
    fn assert_clean(&self) {
        assert_eq!(self.ok(&["ps", "-a", "-q"]), "");
        let cdir = self.env.root().join("containers");
        let left: Vec<_> = std::fs::read_dir(&cdir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert!(mounts_under(&self.env.root()).is_empty());
        let rt_root = self.env.root().join("runtime");
        if rt_root.exists() {
            for r in std::fs::read_dir(&rt_root).unwrap().filter_map(Result::ok) {
                let states: Vec<_> = std::fs::read_dir(r.path())
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| !hull::is_spare_state_dir(p))
                    .collect();
                assert!(states.is_empty(), "runtime state left: {states:?}");
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        common::remove_network_state(&self.env.root());
        release_host(self.crun);
        let mut mounts = mounts_under(self.env.dir.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&m)
                .status();
        }
        let _ = std::process::Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(self.env.dir.path())
            .status();
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// A busybox rootfs with the applets the tests use and a passwd/group with a user.
fn write_rootfs(out: &std::path::Path) {
    let f = std::fs::File::create(out).unwrap();
    let mut b = tar::Builder::new(f);
    for d in ["bin/", "etc/", "tmp/", "root/"] {
        let mut h = common::tar_header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, d, std::io::empty()).unwrap();
    }
    b.append_path_with_name(common::busybox(), "bin/busybox")
        .unwrap();
    for applet in [
        "sh", "echo", "sleep", "ps", "cat", "id", "ls", "true", "false", "dd", "touch", "rm",
        "hostname", "env", "trap", "mkdir", "stty", "ln", "chroot", "stat", "ip", "ping", "wget",
        "nslookup", "httpd",
    ] {
        let mut h = common::tar_header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    for (name, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:100::/tmp:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\nusers:x:100:\nwheel:x:10:bob\n"),
        // /etc/hosts before DNS (glibc's default without this file asks DNS first).
        ("etc/nsswitch.conf", "hosts: files dns\n"),
    ] {
        let mut h = common::tar_header(tar::EntryType::Regular, 0o644, text.len() as u64);
        b.append_data(&mut h, name, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap();
}

/// Yesterday's local date: as a --since it covers every line even if midnight passes
/// while the test runs.
fn yesterday_date() -> String {
    let out = std::process::Command::new("date")
        .args(["-d", "yesterday", "+%F"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The first port of the kernel's ephemeral range (`ip_local_port_range`).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// How many ports just below the ephemeral range are kept for tests that take a block
/// of ports at once (`port_block`); `free_port` never hands one of them out.
const BLOCK: u16 = 1000;

/// A TCP port free on every address now, below the kernel's ephemeral range and the
/// block: the test publishes it a moment later, and in that moment no `-P`, outgoing
/// connection or port-0 bind of a test beside it can be handed it, as they could a port
/// the kernel had picked. No port is handed out twice in one run of the tests.
fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let top = ephemeral_low().saturating_sub(BLOCK);
    let low = top.min(20000) / 2;
    let span = u64::from(top - low);
    // A fresh RandomState hashes nothing to a new value: tests beside each other start
    // their search at different ports.
    let start = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let port = (0..span)
        .map(|i| low + ((start.wrapping_add(i)) % span) as u16)
        .find(|&p| !given.contains(&p) && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok())
        .unwrap_or_else(|| panic!("no free TCP port in {low}-{top}"));
    given.push(port);
    port
}

/// `n` ports free now from the block just below the ephemeral range, which `free_port`
/// leaves alone.
fn port_block(n: usize) -> Vec<u16> {
    let high = ephemeral_low();
    let held: Vec<std::net::TcpListener> = (high.saturating_sub(BLOCK)..high)
        .rev()
        .filter_map(|p| std::net::TcpListener::bind(("0.0.0.0", p)).ok())
        .take(n)
        .collect();
    assert_eq!(held.len(), n, "{n} free ports below {high}");
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// The first /24 of 10.`second`.0.0/16 (outside docker's pools) that no host route
/// overlaps, for a network that must keep its subnet while its bridge is gone: no other
/// test's data root picks one of these meanwhile, and each test passes its own `second`.
fn unrouted_subnet(second: u8) -> Option<String> {
    (0..=255u8)
        .map(|i| format!("10.{second}.{i}.0/24"))
        .find(|s| !routed(s))
}

/// Whether a host route other than the default overlaps `subnet`: one that holds it
/// (`match`) or one inside it (`root`).
fn routed(subnet: &str) -> bool {
    ["match", "root"].iter().any(|how| {
        let out = std::process::Command::new("ip")
            .args(["-4", "route", "show", "table", "all", how, subnet])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| !l.starts_with("default"))
    })
}

/// $PATH without the directories that hold `program`.
fn path_without(program: &str) -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::env::split_paths(&path).filter(|d| !d.join(program).exists()))
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn foreground_runs_exit_like_docker() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let out = g.run(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(text(&out).0, "hello\n");
    assert_eq!(out.status.code(), Some(0));
    let out = g.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out), ("out\n".into(), "err\n".into()));
    // The streams are relayed byte for byte, not through the json log.
    let data: Vec<u8> = (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut child = g
        .command(&["run", "--rm", "-i", "busybox", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = data.clone();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &feed));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout == data,
        "{} bytes back of {}",
        out.stdout.len(),
        data.len()
    );
    // A single host file binds as a file.
    std::fs::write(g.env.path("one.txt"), "one\n").unwrap();
    let one = format!("{}:/one.txt:ro", g.env.path("one.txt").display());
    assert_eq!(
        g.ok(&["run", "--rm", "-v", &one, "busybox", "cat", "/one.txt"]),
        "one\n"
    );
    // Image config and options: env, workdir, user, hostname, /.dockerenv, hosts.
    let out = g.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "bob",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u):$(id -g):$(id -G) $(hostname); ls /.dockerenv; cat /etc/hostname",
    ]);
    assert_eq!(out, "1 /tmp 1000:100:100 10 box\n/.dockerenv\nbox\n");
    // docker's process environment: PATH, HOSTNAME (the short id by default), TERM with -t;
    // Config.Env keeps only what the image and -e gave.
    let id = g.ok(&["create", "--name", "envs", "-t", "busybox", "env"]);
    let out = g.ok(&["start", "-a", "envs"]);
    let mut env: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    env.sort();
    assert_eq!(
        env,
        [
            "HOME=/root".to_string(),
            format!("HOSTNAME={}", &id[..12]),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "TERM=xterm".into(),
        ]
    );
    assert_eq!(g.inspect("envs", "{{json .Config.Env}}"), "null");
    g.ok(&["rm", "envs"]);
    // The primary group is a supplementary group too, as docker sets it.
    assert_eq!(
        g.ok(&[
            "run",
            "--rm",
            "-u",
            "1234:4321",
            "busybox",
            "cat",
            "/proc/self/status"
        ])
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")),
        Some("4321".to_string())
    );
    g.assert_clean();
}

#[test]
fn bad_input_leaves_nothing_behind() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let out = g.run(&["run", "--rm", "busybox", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{:?}", text(&out));
    assert!(text(&out).1.contains("nosuchcmd"), "{:?}", text(&out));
    // Every runtime's wording for a missing path and for a directory gives docker's codes.
    let out = g.run(&["run", "--rm", "busybox", "/no/such"]);
    assert_eq!(out.status.code(), Some(127), "{:?}", text(&out));
    assert!(text(&out).1.contains("/no/such"), "{:?}", text(&out));
    let out = g.run(&["run", "--rm", "busybox", "/etc"]);
    assert_eq!(out.status.code(), Some(126), "{:?}", text(&out));
    let out = g.run(&["run", "--memory", "12qb", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out).1.contains("invalid size: '12qb'"),
        "{:?}",
        text(&out)
    );
    let out = g.run(&["run", "-u", "alice", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out).1.contains("unable to find user alice"));
    let missing = g.env.path("no-such-dir");
    let spec = format!("type=bind,source={},target=/x", missing.display());
    let out = g.run(&["run", "--mount", &spec, "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out).1.contains("bind source path does not exist"));
    // docker's own checks of values, each refused with its message before anything is made.
    for (args, msg) in [
        (
            &["--cap-add", "BOGUS"][..],
            "invalid CapAdd: unknown capability: \"CAP_BOGUS\"",
        ),
        (
            &["--cap-drop", "nope"],
            "invalid CapDrop: unknown capability: \"CAP_NOPE\"",
        ),
        (&["--stop-signal", "FOO"], "Invalid signal: FOO"),
        (
            &["--tmpfs", "rel"],
            "invalid mount path: 'rel' mount path must be absolute",
        ),
        (&["--memory", "1k"], "Minimum memory limit allowed is 6MB"),
        (
            &["--memory", "64m", "--memory-reservation", "128m"],
            "Minimum memory limit can not be less than memory reservation limit",
        ),
        (&["--cpus", "-1"], "Range of CPUs is from 0.01 to"),
        (
            &["--cpuset-cpus", "abc"],
            "Invalid value abc for cpuset cpus",
        ),
        (
            &["--cpuset-cpus", "4096"],
            "Requested CPUs are not available",
        ),
        (&["-w", "rel"], "the working directory 'rel' is invalid"),
        (&["-e", "=x"], "invalid environment variable: =x"),
        (
            &["-v", "bad/name:/x"],
            "includes invalid characters for a local volume name",
        ),
    ] {
        let out = g.run(&[&["run", "--rm"][..], args, &["busybox", "true"]].concat());
        assert_eq!(out.status.code(), Some(125), "{args:?}: {:?}", text(&out));
        assert!(text(&out).1.contains(msg), "{args:?}: {:?}", text(&out));
    }
    let out = g.run(&["run", "-it", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out).1, "the input device is not a TTY\n");
    // A missing image is pulled first; a loopback port nobody serves makes that fail.
    let out = g.run(&["run", "127.0.0.1:1/nope", "true"]);
    assert!(
        text(&out)
            .1
            .contains("Unable to find image '127.0.0.1:1/nope:latest' locally"),
        "{:?}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(125));
    g.assert_clean();
    // A wharf installed without its monitor program names it, and `run --rm` leaves
    // nothing behind.
    let alone = g.env.path("alone");
    std::fs::create_dir_all(&alone).unwrap();
    let copy = alone.join("wharf");
    let built = assert_cmd::cargo::cargo_bin("wharf");
    if std::fs::hard_link(&built, &copy).is_err() {
        std::fs::copy(&built, &copy).unwrap();
    }
    let out = std::process::Command::new(&copy)
        .arg("--data-root")
        .arg(g.env.root())
        .arg("--runtime")
        .arg(&g.runtime)
        .args(["run", "--rm", "busybox", "true"])
        .env("PATH", path_without("wharf-monitor"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{:?}", text(&out));
    assert!(
        text(&out).1.contains(&format!(
            "container monitor, wharf-monitor, is neither in {} (next to wharf) nor in $PATH",
            alone.display()
        )),
        "{:?}",
        text(&out)
    );
    g.assert_clean();
    g.ok(&["create", "--name", "web", "busybox"]);
    let out = g.run(&["create", "--name", "web", "busybox"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out)
        .1
        .contains("The container name \"/web\" is already in use"));
    let out = g.run(&["rmi", "busybox"]);
    assert!(text(&out)
        .1
        .contains("image is being used by stopped container"));
    g.ok(&["rm", "web"]);
    g.assert_clean();
}

#[test]
fn detached_container_lifecycle() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let id = g.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "--label",
        "app=t",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do echo tick; sleep 0.2; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    // inspect's keys come in docker's order, not sorted.
    let inspect: serde_json::Value = serde_json::from_str(&g.ok(&["inspect", "ticker"])).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v.as_object().unwrap().keys().take(5).cloned().collect()
    };
    assert_eq!(
        keys(&inspect[0]),
        ["Id", "Created", "Path", "Args", "State"]
    );
    assert_eq!(
        keys(&inspect[0]["Config"]),
        [
            "Hostname",
            "Domainname",
            "User",
            "AttachStdin",
            "AttachStdout"
        ]
    );
    g.until(10, "logs", || {
        g.ok(&["logs", "ticker"]).contains("tick").then_some(())
    });
    let ps = g.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{ps}");
    let row = ps.lines().nth(1).unwrap();
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("Up "), "{row}");
    assert!(row.ends_with("ticker"), "{row}");
    // Prefix, name and full id all find it; templates see docker's shape.
    assert_eq!(g.inspect(&id[..5], "{{.Name}}"), "/ticker");
    assert_eq!(
        g.inspect("ticker", "{{.State.Status}} {{.State.Running}} {{index .Config.Labels \"app\"}} {{.HostConfig.NetworkMode}}"),
        "running true t default"
    );
    assert_eq!(
        g.inspect("ticker", "{{json .Config.Cmd}}")
            .matches("trap")
            .count(),
        1
    );
    // On the default bridge, as in docker.
    let ip = g.inspect("ticker", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    // rm of a running container is refused with docker's message.
    let out = g.run(&["rm", "ticker"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out)
        .1
        .contains("You cannot remove a running container"));
    g.ok(&["rename", "ticker", "tocker"]);
    let logs = g.ok(&["logs", "-t", "-n", "1", "tocker"]);
    assert_eq!(logs.lines().count(), 1);
    assert!(logs.ends_with(" tick\n") && logs.contains('T'), "{logs}");
    // --details adds the (empty) attributes and a space; docker's time forms all parse.
    assert_eq!(g.ok(&["logs", "--details", "-n", "1", "tocker"]), " tick\n");
    let yesterday = yesterday_date();
    for since in ["1h", "1m30s", yesterday.as_str()] {
        assert!(
            g.ok(&["logs", "--since", since, "tocker"]).contains("tick"),
            "{since}"
        );
    }
    assert_eq!(g.ok(&["logs", "--until", "2000-01-01T00:00", "tocker"]), "");
    // The process ignores SIGTERM: stop waits -t seconds, then kills.
    let start = Instant::now();
    g.ok(&["stop", "-t", "1", "tocker"]);
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(g.inspect("tocker", "{{.State.ExitCode}}"), "137");
    let ps = g.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("tocker Exited (137) "), "{ps}");
    assert_eq!(g.ok(&["wait", "tocker"]), "137\n");
    g.ok(&["rm", "tocker"]);
    g.assert_clean();
}

#[test]
fn exec_sees_pid_one_and_pause_freezes() {
    let rt = runtime();
    let Some(g) = Guard::new(&rt) else { return };
    g.ok(&["run", "-d", "--name", "sl", "busybox", "sleep", "300"]);
    let ps = g.ok(&["exec", "sl", "ps", "aux"]);
    let pid1 = ps
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or("");
    assert!(pid1.contains("sleep 300"), "{ps}");
    assert_eq!(
        g.ok(&[
            "exec",
            "-u",
            "bob",
            "-w",
            "/tmp",
            "-e",
            "X=y",
            "sl",
            "sh",
            "-c",
            "echo $X $(id -u) $(id -G) $(pwd)"
        ]),
        "y 1000 100 10 /tmp\n"
    );
    // An exec gets its container's capabilities, not the runtime's defaults.
    let caps = |file: &str| {
        g.ok(&["exec", "sl", "cat", file])
            .lines()
            .filter(|l| l.starts_with("Cap"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(caps("/proc/self/status"), caps("/proc/1/status"));
    let out = g.run(&["exec", "sl", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{:?}", text(&out));
    assert_eq!(
        g.run(&["exec", "sl", "sh", "-c", "exit 4"]).status.code(),
        Some(4)
    );
    g.ok(&["pause", "sl"]);
    assert_eq!(
        g.inspect("sl", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    assert!(g
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(Paused)"));
    let out = g.run(&["exec", "sl", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out)
            .1
            .contains("is paused, unpause the container before exec"),
        "{:?}",
        text(&out)
    );
    g.ok(&["unpause", "sl"]);
    assert_eq!(g.inspect("sl", "{{.State.Status}}"), "running");
    g.ok(&["rm", "-f", "sl"]);
    let out = g.run(&["exec", "sl", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out).1,
        "Error response from daemon: No such container: sl\n"
    );
    g.assert_clean();
}

#[test]
fn diff_and_top() {
    let rt = runtime();
    let Some(g) = Guard::new(&rt) else { return };
    g.ok(&[
        "run",
        "--name",
        "ch",
        "busybox",
        "sh",
        "-c",
        "touch /etc/new; rm /etc/group; mkdir /data",
    ]);
    assert_eq!(
        g.ok(&["diff", "ch"]),
        "A /data\nC /etc\nD /etc/group\nA /etc/new\n"
    );
    g.ok(&["run", "-d", "--name", "tp", "busybox", "sleep", "300"]);
    let top = g.ok(&["top", "tp"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 300"), "{top}");
    g.ok(&["rm", "-f", "tp", "ch"]);
    g.assert_clean();
}

#[test]
fn restart_policy_counts_and_rm_cleans_up() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 5",
    ]);
    g.until(20, "two restarts", || {
        (g.inspect("flaky", "{{.State.Status}} {{.RestartCount}}") == "exited 2").then_some(())
    });
    assert_eq!(g.inspect("flaky", "{{.State.ExitCode}}"), "5");
    assert_eq!(g.ok(&["logs", "flaky"]), "try\ntry\ntry\n");
    g.ok(&["rm", "flaky"]);
    g.ok(&["run", "-d", "--rm", "busybox", "sh", "-c", "sleep 0.3"]);
    g.until(10, "--rm removal", || {
        (g.ok(&["ps", "-a", "-q"]).is_empty()).then_some(())
    });
    g.assert_clean();
}

#[test]
fn memory_limit_kills_with_oom() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let out = g.run(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "8m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(out.status.code(), Some(137), "{:?}", text(&out));
    assert_eq!(
        g.inspect("hog", "{{.State.OOMKilled}} {{.HostConfig.Memory}}"),
        "true 8388608"
    );
    g.ok(&["rm", "hog"]);
    g.assert_clean();
}

#[test]
fn killed_monitor_is_reported_and_rm_f_cleans() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&["run", "-d", "--name", "orphan", "busybox", "sleep", "300"]);
    let root = g.env.root();
    let db_state = || g.inspect("orphan", "{{.State.Status}}");
    assert_eq!(db_state(), "running");
    // The monitor's pid is in the record; kill it the way a crash would.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ps -eo pid,args | grep '[w]harf-monitor' | grep {} | awk '{{print $1}}'",
            root.display()
        ))
        .output()
        .unwrap();
    let pid: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("monitor pid");
    // SAFETY: plain kill(2) of the monitor this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    g.until(10, "dead status", || (db_state() == "dead").then_some(()));
    // stop still reaches the process through the runtime and records the exit.
    let pid: i32 = g.inspect("orphan", "{{.State.Pid}}").parse().unwrap();
    g.ok(&["stop", "-t", "1", "orphan"]);
    assert_eq!(
        g.inspect("orphan", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    });
    assert!(!alive, "pid {pid} still runs");
    g.ok(&["rm", "orphan"]);
    // kill X && rm X: a SIGKILL returns once the container is down.
    g.ok(&["run", "-d", "--name", "kr", "busybox", "sleep", "300"]);
    g.ok(&["kill", "kr"]);
    g.ok(&["rm", "kr"]);
    // wait on a --rm container gives its exit code although the record is gone.
    let id = g.ok(&[
        "run",
        "-d",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; exit 3",
    ]);
    assert_eq!(g.ok(&["wait", id.trim()]), "3\n");
    // ...also once it is gone before wait starts, by its full id.
    let id = g.ok(&["run", "-d", "--rm", "busybox", "sh", "-c", "exit 4"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !g.ok(&["ps", "-aq", "--no-trunc"]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the --rm container was not removed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(g.ok(&["wait", id.trim()]), "4\n");
    g.assert_clean();
}

#[test]
fn hull_runs_a_container() {
    if !hull().is_file() {
        integration::skip(&format!(
            "{} not built (cargo build -p hull)",
            hull().display()
        ));
        return;
    }
    let Some(g) = Guard::new(&hull().display().to_string()) else {
        return;
    };
    let out = g.run(&["run", "--rm", "busybox", "echo", "via hull"]);
    assert_eq!(text(&out).0, "via hull\n", "{:?}", text(&out));
    assert_eq!(
        g.run(&["run", "--rm", "busybox", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    g.assert_clean();
}

/// A wharf process a test started, killed and reaped when dropped, so a failing test
/// leaves no client or live view running.
struct Spawned(std::process::Child);

impl std::ops::Deref for Spawned {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Waits for a child we started, killing it (and failing) after `secs`.
fn wait_child(child: &mut std::process::Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pseudo-terminal the test owns, so `-it` works without a terminal in CI: wharf gets
/// the slave as its controlling terminal and stdio; a thread collects everything written
/// to the master.
struct Pty {
    master: std::fs::File,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pty {
    fn spawn(rows: u16, cols: u16, mut cmd: std::process::Command) -> (Self, Spawned) {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty fills two new descriptors, which we own from here on.
        let r =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty");
        // SAFETY: fresh descriptors from openpty.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        cmd.stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = Spawned(cmd.spawn().expect("spawn wharf on a pty"));
        drop(cmd);
        let master = std::fs::File::from(master);
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), out.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every slave descriptor is closed.
            while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (Self { master, out }, child)
    }

    fn write(&mut self, data: &[u8]) {
        std::io::Write::write_all(&mut self.master, data).unwrap();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Whether `needle` shows up in the output within `secs`.
    fn saw(&self, needle: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn expect(&self, needle: &str) {
        assert!(self.saw(needle, 20), "no {needle:?} in:\n{}", self.text());
    }

    fn resize(&self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the local.
        assert_eq!(
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
            0
        );
    }
}

#[test]
fn interactive_terminal_resize_detach_attach_and_exec() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let (mut pty, mut child) = Pty::spawn(
        30,
        100,
        g.command(&["run", "-it", "--name", "tt", "busybox", "sh"]),
    );
    pty.write(b"stty size; echo $((6*7))-answer\r");
    pty.expect("30 100");
    pty.expect("42-answer");
    assert_eq!(g.inspect("tt", "{{.Config.Tty}}"), "true");
    // A resize of our terminal reaches the container's, through SIGWINCH in wharf.
    pty.resize(40, 120);
    let mut resized = false;
    for _ in 0..10 {
        pty.write(b"stty size\r");
        if pty.saw("40 120", 2) {
            resized = true;
            break;
        }
    }
    assert!(resized, "window size not propagated:\n{}", pty.text());
    // CTRL-P CTRL-Q leaves the container running and wharf exits 0.
    pty.write(b"\x10\x11");
    assert!(wait_child(&mut child, 20, "run -it after detach").success());
    assert_eq!(g.inspect("tt", "{{.State.Running}}"), "true");
    // exec -it gets its own terminal.
    let (mut ex, mut exec) = Pty::spawn(24, 80, g.command(&["exec", "-it", "tt", "sh"]));
    ex.write(b"echo in-exec $((3+4)); tty; exit 3\r");
    ex.expect("in-exec 7");
    ex.expect("/dev/pts/");
    assert_eq!(wait_child(&mut exec, 20, "exec -it").code(), Some(3));
    // attach with other detach keys: a partial sequence passes through.
    let (mut at, mut attach) = Pty::spawn(
        24,
        80,
        g.command(&["attach", "--detach-keys", "ctrl-a,x", "tt"]),
    );
    at.write(b"echo back-$((1+1))\r");
    at.expect("back-2");
    at.write(b"\x01x");
    // docker's attach ends a detach with "read escape sequence" and status 1.
    assert_eq!(
        wait_child(&mut attach, 20, "attach after detach").code(),
        Some(1)
    );
    at.expect("read escape sequence");
    assert_eq!(g.inspect("tt", "{{.State.Running}}"), "true");
    // attach again; the shell's exit status becomes attach's.
    let (mut at, mut attach) = Pty::spawn(24, 80, g.command(&["attach", "tt"]));
    at.write(b"exit 4\r");
    assert_eq!(
        wait_child(&mut attach, 20, "attach until exit").code(),
        Some(4)
    );
    assert_eq!(
        g.inspect("tt", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 4"
    );
    // create -it, then start -ai attaches a terminal the same way.
    g.ok(&["create", "-it", "--name", "later", "busybox", "sh"]);
    let (mut st, mut start) = Pty::spawn(24, 80, g.command(&["start", "-ai", "later"]));
    st.write(b"echo started-$((5*5)); exit 2\r");
    st.expect("started-25");
    assert_eq!(wait_child(&mut start, 20, "start -ai").code(), Some(2));
    g.ok(&["rm", "later"]);
    let out = g.run(&["run", "-t", "--detach-keys", "ctrl-1", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out).1.contains("Unknown character: 'ctrl-1'"),
        "{:?}",
        text(&out)
    );
    g.ok(&["rm", "tt"]);
    g.assert_clean();
}

/// Runs `wharf run ARGS` in the foreground, whose container prints "ready" first, sends
/// wharf SIGINT (CTRL-C) once that line arrives and `settled` returns, and returns wharf's
/// exit status and the rest of the output.
fn interrupt_foreground_run(g: &Guard, args: &[&str], settled: impl Fn()) -> (Option<i32>, String) {
    let mut child = Spawned(
        g.command(&[&["run"][..], args].concat())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    assert_eq!(first, "ready\n");
    settled();
    // SAFETY: kill(2) of the wharf process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let code = wait_child(&mut child, 20, "run after SIGINT").code();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    (code, rest)
}

#[test]
fn ctrl_c_stops_a_foreground_run() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    // A PID 1 without a SIGINT handler would never see it: the container is stopped (its
    // stop signal, then SIGKILL after --stop-timeout).
    let args = ["--name", "cc", "--stop-timeout", "1", "busybox"];
    let script = ["sh", "-c", "echo ready; exec sleep 300"];
    // busybox sh itself catches SIGINT, so until it has exec'd sleep the signal would be
    // forwarded to the shell and lost with its handler at exec.
    let sleeping = || {
        let pid = g.inspect("cc", "{{.State.Pid}}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap() != "sleep\n" {
            assert!(Instant::now() < deadline, "PID 1 never became sleep");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    assert_eq!(
        interrupt_foreground_run(&g, &[&args[..], &script].concat(), sleeping),
        (Some(137), String::new())
    );
    assert_eq!(
        g.inspect("cc", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    // A container that handles SIGINT gets it (docker's sig-proxy) and decides itself.
    let trap = "trap 'echo got INT; exit 42' INT; echo ready; while true; do sleep 0.1; done";
    assert_eq!(
        interrupt_foreground_run(&g, &["--name", "ci", "busybox", "sh", "-c", trap], || {}),
        (Some(42), "got INT\n".to_string())
    );
    g.ok(&["rm", "cc", "ci"]);
    g.assert_clean();
}

#[test]
fn init_reaps_zombies_and_forwards_sigterm() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    // The subshell's background sleep is orphaned to PID 1 and exits after 0.1 s.
    let script = "(sleep 0.1 &); exec sleep 300";
    g.ok(&[
        "run", "-d", "--name", "noinit", "busybox", "sh", "-c", script,
    ]);
    g.ok(&[
        "run", "-d", "--init", "--name", "withinit", "busybox", "sh", "-c", script,
    ]);
    let zombies = |name: &str| {
        g.ok(&["exec", name, "sh", "-c", "cat /proc/[0-9]*/stat"])
            .lines()
            .filter(|l| l.contains(") Z "))
            .count()
    };
    // Without an init, sleep as PID 1 never reaps the orphan: the check can see zombies.
    g.until(10, "a zombie without --init", || {
        (zombies("noinit") > 0).then_some(())
    });
    // With it, once the orphan is no longer running it must be gone, not a zombie.
    g.until(10, "the orphan reaped with --init", || {
        // A process may exit between the glob and its read: it is then simply not listed.
        let cmdlines = g.ok(&[
            "exec",
            "withinit",
            "sh",
            "-c",
            "cat /proc/[0-9]*/cmdline 2>/dev/null; true",
        ]);
        (!cmdlines.contains("sleep\x000.1\x00") && zombies("withinit") == 0).then_some(())
    });
    let pid1 = g.ok(&["exec", "withinit", "cat", "/proc/1/cmdline"]);
    assert!(pid1.starts_with("/sbin/docker-init\0--\0sh\0"), "{pid1:?}");
    // The init passes SIGTERM on to sleep, which (not being PID 1) dies of it: 143, where
    // the SIGKILL after the timeout would give 137.
    g.ok(&["stop", "-t", "60", "withinit"]);
    assert_eq!(
        g.inspect("withinit", "{{.State.ExitCode}} {{.HostConfig.Init}}"),
        "143 true"
    );
    assert_eq!(g.ok(&["diff", "withinit"]), "");
    g.ok(&["rm", "-f", "noinit", "withinit"]);
    g.assert_clean();
}

fn seccomp_mode(g: &Guard, opts: &[&str]) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "cat", "/proc/self/status"]);
    g.ok(&args)
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .unwrap_or("")
        .trim()
        .to_string()
}

#[test]
fn seccomp_default_unconfined_privileged_and_custom() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    assert_eq!(seccomp_mode(&g, &[]), "2");
    assert_eq!(
        seccomp_mode(&g, &["--security-opt", "seccomp=unconfined"]),
        "0"
    );
    assert_eq!(seccomp_mode(&g, &["--privileged"]), "0");
    // --privileged gets the host's devices, as in docker.
    use std::os::unix::fs::FileTypeExt;
    let block = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .find(|e| e.file_type().is_ok_and(|t| t.is_block_device()));
    match block {
        Some(dev) => {
            let path = dev.path().display().to_string();
            let out = g.run(&["run", "--rm", "--privileged", "busybox", "ls", &path]);
            assert!(out.status.success(), "{path}: {:?}", text(&out));
            let out = g.run(&["run", "--rm", "busybox", "ls", &path]);
            assert!(!out.status.success(), "{path} without --privileged");
        }
        None => integration::skip("no block device in /dev to look for"),
    }
    // The default profile refuses what reaches beyond the container.
    let out = g.run(&["run", "--rm", "busybox", "hostname", "other"]);
    assert_ne!(out.status.code(), Some(0), "{:?}", text(&out));
    // ... unless a capability unlocks it, as in docker's profile; a default container
    // holds CAP_SYS_CHROOT and may chroot.
    g.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "hostname",
        "other",
    ]);
    g.ok(&["run", "--rm", "busybox", "chroot", "/", "true"]);
    let profile = g.env.path("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = g.run(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/x",
    ]);
    assert_fails(&out, 1, "Operation not permitted");
    let out = g.run(&[
        "run",
        "--security-opt",
        "seccomp=/no/such.json",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out)
        .1
        .contains("opening seccomp profile (/no/such.json) failed"));
    g.assert_clean();
}

#[test]
fn stats_no_stream_reads_the_cgroup() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "64m",
        // Without a network nothing moves on it: the NET I/O column reads exactly 0B.
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    g.ok(&["run", "-d", "--name", "idle", "busybox", "sleep", "300"]);
    let out = g.ok(&["stats", "--no-stream"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{out}");
    let fields = |name: &str| -> String {
        g.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}|{{.NetIO}}",
            name,
        ])
        .trim()
        .to_string()
    };
    let busy = fields("busy");
    let f: Vec<&str> = busy.split('|').collect();
    let cpu: f64 = f[0].trim_end_matches('%').parse().unwrap();
    // Well above an idle container's 0.00%, and below what the loop gets even when a
    // test beside it keeps both CPUs busy with fifty starts.
    assert!(cpu > 2.0, "a busy loop uses CPU: {busy}");
    assert!(f[1].ends_with(" / 64MiB"), "{busy}");
    assert!(!f[1].starts_with("0B"), "{busy}");
    assert_eq!(f[3], "1", "{busy}");
    assert_eq!(f[4], "0B / 0B", "{busy}");
    let idle = fields("idle");
    let f: Vec<&str> = idle.split('|').collect();
    let cpu: f64 = f[0].trim_end_matches('%').parse().unwrap();
    assert!(cpu < 5.0, "{idle}");
    assert_eq!(f[3], "1", "{idle}");
    // The live view redraws every second until interrupted.
    let mut live = Spawned(
        g.command(&["stats", "idle"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = live.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&seen)
        .matches("CONTAINER ID")
        .count()
        < 2
    {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "stats ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains("\x1b[2J"));
    // Removing the container it watches ends it with docker's error.
    g.ok(&["rm", "-f", "busy", "idle"]);
    assert_eq!(
        wait_child(&mut live, 10, "stats of a removed container").code(),
        Some(1)
    );
    g.assert_clean();
}

fn tar_entries(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    tar::Archive::new(data)
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut body).unwrap();
            (name, body)
        })
        .collect()
}

#[test]
fn cp_both_ways_running_and_stopped() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let host = g.env.path("host");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap();
    std::fs::write(host.join("file.txt"), "from host\n").unwrap();
    std::fs::write(host.join("dir/sub/deep.txt"), "deep\n").unwrap();
    let h = |p: &str| host.join(p).display().to_string();
    g.ok(&["run", "-d", "--name", "cpr", "busybox", "sleep", "300"]);
    // Into a running container: into a directory, to a new name, a whole tree.
    g.ok(&["cp", &h("file.txt"), "cpr:/tmp/"]);
    g.ok(&["cp", &h("file.txt"), "cpr:/renamed.txt"]);
    g.ok(&["cp", &h("dir"), "cpr:/tree"]);
    assert_eq!(
        g.ok(&[
            "exec",
            "cpr",
            "cat",
            "/tmp/file.txt",
            "/renamed.txt",
            "/tree/sub/deep.txt"
        ]),
        "from host\nfrom host\ndeep\n"
    );
    // A symlink in the container resolves inside it, never to the host.
    g.ok(&["exec", "cpr", "ln", "-s", "/", "/esc"]);
    let marker = format!("wharf-cp-escape-{}", std::process::id());
    g.ok(&["cp", &h("file.txt"), &format!("cpr:/esc/tmp/{marker}")]);
    assert!(!std::path::Path::new("/tmp").join(&marker).exists());
    assert_eq!(
        g.ok(&["exec", "cpr", "cat", &format!("/tmp/{marker}")]),
        "from host\n"
    );
    // Out of it: a file, a directory's content, and a tar stream on stdout.
    g.ok(&["cp", "cpr:/tree/sub/deep.txt", &h("out.txt")]);
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).unwrap(),
        "deep\n"
    );
    g.ok(&["cp", "cpr:/tree/.", &h("copy")]);
    assert_eq!(
        std::fs::read_to_string(host.join("copy/sub/deep.txt")).unwrap(),
        "deep\n"
    );
    let out = g.run(&["cp", "cpr:/renamed.txt", "-"]);
    assert!(out.status.success());
    assert_eq!(
        tar_entries(&out.stdout),
        vec![("renamed.txt".to_string(), b"from host\n".to_vec())]
    );
    // A tar stream on stdin lands in a directory.
    let mut b = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_size(6);
    hd.set_mode(0o644);
    hd.set_uid(1000);
    hd.set_gid(0);
    hd.set_mtime(1_700_000_000);
    b.append_data(&mut hd, "streamed.txt", &b"piped\n"[..])
        .unwrap();
    let data = b.into_inner().unwrap();
    let out = g
        .env
        .wharf()
        .arg("--runtime")
        .arg(&g.runtime)
        .args(["cp", "-a", "-", "cpr:/tmp"])
        .write_stdin(data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(
        g.ok(&["exec", "cpr", "cat", "/tmp/streamed.txt"]),
        "piped\n"
    );
    // -a kept the archive's owner.
    let upper = g
        .env
        .root()
        .join("containers")
        .join(g.inspect("cpr", "{{.Id}}"))
        .join("upper/tmp/streamed.txt");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&upper.metadata().unwrap()),
        1000
    );
    let out = g.run(&["cp", "cpr:/nope", &h("x")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("Could not find the file /nope"),
        "{:?}",
        text(&out)
    );
    // A stopped container: its overlay is mounted only for the copy.
    g.ok(&["create", "--name", "cps", "busybox"]);
    g.ok(&["cp", &h("file.txt"), "cps:/etc/added.txt"]);
    g.ok(&["cp", "cps:/etc/added.txt", &h("back.txt")]);
    assert_eq!(
        std::fs::read_to_string(host.join("back.txt")).unwrap(),
        "from host\n"
    );
    assert_eq!(g.ok(&["diff", "cps"]), "C /etc\nA /etc/added.txt\n");
    g.ok(&["rm", "-f", "cpr", "cps"]);
    g.assert_clean();
}

#[test]
fn commit_history_and_run_of_the_committed_image() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&[
        "run",
        "--name",
        "ch",
        "busybox",
        "sh",
        "-c",
        "echo hi > /etc/greeting; rm /etc/group; mkdir -p /data/sub",
    ]);
    let id = g.ok(&[
        "commit",
        "-a",
        "Ann <ann@example.org>",
        "-m",
        "add greeting",
        "-c",
        "CMD [\"cat\", \"/etc/greeting\"]",
        "ch",
        "committed:v1",
    ]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    let hist = g.ok(&[
        "history",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "committed:v1",
    ]);
    let rows: Vec<&str> = hist.lines().collect();
    assert_eq!(rows.len(), 2, "{hist}");
    assert!(rows[0].ends_with("|add greeting"), "{hist}");
    assert!(rows[0].starts_with("sh -c echo hi"), "{hist}");
    assert_eq!(g.ok(&["run", "--rm", "committed:v1"]), "hi\n");
    // The deletion travelled as a whiteout; the new directory as an entry.
    let out = g.run(&["run", "--rm", "committed:v1", "ls", "/etc/group"]);
    assert_ne!(out.status.code(), Some(0));
    g.ok(&["run", "--rm", "committed:v1", "ls", "-d", "/data/sub"]);
    assert_eq!(
        g.inspect("committed:v1", "{{.Author}} {{json .Config.Cmd}}"),
        "Ann <ann@example.org> [\"cat\",\"/etc/greeting\"]"
    );
    let ch_id = g.inspect("ch", "{{.Id}}");
    assert_eq!(
        g.inspect(
            "committed:v1",
            "{{.Comment}}|{{.Container}}|{{json .Config.Env}}"
        ),
        format!("add greeting|{ch_id}|null")
    );
    // A running container is paused for the commit and keeps running.
    g.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo x > /live; sleep 300",
    ]);
    g.until(10, "the file", || {
        g.run(&["exec", "live", "cat", "/live"])
            .status
            .success()
            .then_some(())
    });
    // -p is a switch: the next word is the container.
    g.ok(&["commit", "-p", "live", "live:snap"]);
    assert_eq!(g.inspect("live", "{{.State.Status}}"), "running");
    assert_eq!(g.ok(&["run", "--rm", "live:snap", "cat", "/live"]), "x\n");
    let out = g.run(&["commit", "-c", "RUN make", "ch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("RUN is not a valid change command"),
        "{:?}",
        text(&out)
    );
    g.ok(&["rm", "-f", "ch", "live"]);
    g.assert_clean();
}

#[test]
fn export_writes_the_container_filesystem() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&[
        "run",
        "--name",
        "ex",
        "busybox",
        "sh",
        "-c",
        "echo data > /exported; rm /etc/group",
    ]);
    let file = g.env.path("ex.tar");
    g.ok(&["export", "-o", file.to_str().unwrap(), "ex"]);
    let entries = tar_entries(&std::fs::read(&file).unwrap());
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    for want in [".dockerenv", "bin/busybox", "etc/passwd", "exported"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(!names.contains(&"etc/group"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("proc/") && n.len() > 5),
        "{names:?}"
    );
    let exported = entries.iter().find(|(n, _)| n == "exported").unwrap();
    assert_eq!(exported.1, b"data\n");
    let out = g.run(&["export", "ex"]);
    assert!(out.status.success());
    assert_eq!(tar_entries(&out.stdout).len(), entries.len());
    g.ok(&["rm", "ex"]);
    g.assert_clean();
}

#[test]
fn prune_version_info_and_help() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let a = g.ok(&["run", "--name", "done1", "busybox", "true"]);
    assert_eq!(a, "");
    g.ok(&["create", "--name", "fresh", "busybox"]);
    g.ok(&["run", "-d", "--name", "alive", "busybox", "sleep", "300"]);
    let gone: Vec<String> = ["done1", "fresh"]
        .iter()
        .map(|n| g.inspect(n, "{{.Id}}"))
        .collect();
    assert_eq!(g.inspect("alive", "{{.Name}}"), "/alive");
    // Without -f a "no" leaves everything.
    let out = g
        .env
        .wharf()
        .arg("--runtime")
        .arg(&g.runtime)
        .args(["container", "prune"])
        .write_stdin("n\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(g.ok(&["ps", "-a", "-q"]).lines().count(), 3);
    let out = g.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    for id in &gone {
        assert!(out.contains(id.as_str()), "{out}");
    }
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(g.ok(&["ps", "-a", "--format", "{{.Names}}"]), "alive\n");
    assert_eq!(
        g.ok(&["container", "ls", "-a", "--format", "{{.Names}}"]),
        "alive\n"
    );
    assert_eq!(g.inspect("alive", "{{.Name}}"), "/alive");
    g.ok(&[
        "image",
        "import",
        g.env.path("busybox.tar").to_str().unwrap(),
    ]);
    let out = g.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Images:"), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    // The image in use stays; -a also takes tagged images no container uses.
    g.ok(&["image", "inspect", "busybox"]);
    g.ok(&[
        "image",
        "import",
        g.env.path("busybox.tar").to_str().unwrap(),
        "extra",
    ]);
    g.ok(&["system", "prune", "-f"]);
    g.ok(&["image", "inspect", "extra"]);
    let out = g.ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: extra:latest"), "{out}");
    assert!(g.run(&["image", "inspect", "extra"]).status.code() != Some(0));
    g.ok(&["image", "inspect", "busybox"]);
    assert_eq!(
        g.ok(&["version", "--format", "{{.Client.Version}}"]).trim(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        g.ok(&[
            "info",
            "--format",
            "{{.ContainersRunning}} {{.ContainersStopped}} {{.Images}}"
        ])
        .trim(),
        "1 0 1"
    );
    assert!(g.ok(&["info"]).contains(" Cgroup Driver: cgroupfs\n"));
    // --help works on every command and every container subcommand.
    let commands = |args: &[&str]| -> Vec<String> {
        let help = g.ok(args);
        help.split("Commands:\n")
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|c| c != "help")
            .collect()
    };
    let top = commands(&["--help"]);
    for c in [
        "run",
        "attach",
        "stats",
        "cp",
        "commit",
        "export",
        "version",
        "info",
        "system",
        "container",
        "volume",
    ] {
        assert!(top.contains(&c.to_string()), "{c} missing from {top:?}");
    }
    for c in &top {
        let out = g.ok(&[c.as_str(), "--help"]);
        assert!(out.contains(&format!("Usage: wharf {c}")), "{c}: {out}");
    }
    for group in ["container", "system", "image", "volume"] {
        for c in commands(&[group, "--help"]) {
            let out = g.ok(&[group, c.as_str(), "--help"]);
            assert!(
                out.contains(&format!("Usage: wharf {group} {c}")),
                "{group} {c}: {out}"
            );
        }
    }
    g.ok(&["rm", "-f", "alive"]);
    g.assert_clean();
}

#[test]
fn volumes_named_anonymous_from_the_image_cp_and_prune() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.import_with_volume_at_tmp();
    let volumes = || {
        let mut v: Vec<String> = g
            .ok(&["volume", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    // The image's VOLUME becomes an anonymous volume, listed in Mounts and Config.Volumes.
    g.ok(&[
        "run",
        "--name",
        "anon",
        "withvol",
        "sh",
        "-c",
        "echo hi > /tmp/f",
    ]);
    let mounts = g.inspect(
        "anon",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Name}}{{end}}",
    );
    let anon = mounts.rsplit(' ').next().unwrap().to_string();
    assert_eq!(mounts, format!("volume /tmp {anon}"));
    assert_eq!(anon.len(), 64, "{mounts}");
    assert_eq!(
        g.inspect("anon", "{{json .Config.Volumes}}"),
        r#"{"/tmp":{}}"#
    );
    assert_eq!(volumes(), vec![anon.clone()]);
    // A new named volume is filled from the image (owner and mode kept) and outlives its
    // container; read-only mounts refuse writes.
    assert_eq!(
        g.ok(&[
            "run",
            "--name",
            "named",
            "-v",
            "cfg:/etc",
            "busybox",
            "cat",
            "/etc/group"
        ]),
        "root:x:0:\nusers:x:100:\nwheel:x:10:bob\n"
    );
    let mp = g.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Driver}} {{.Mountpoint}}",
        "cfg",
    ]);
    let mp = mp.trim().strip_prefix("local ").unwrap().to_string();
    assert!(std::path::Path::new(&mp).join("passwd").is_file(), "{mp}");
    let out = g.run(&["run", "--rm", "-v", "cfg:/y:ro", "busybox", "touch", "/y/z"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let out = g.run(&["volume", "rm", "cfg"]);
    let named_id = g.inspect("named", "{{.Id}}");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out).1,
        format!("Error response from daemon: remove cfg: volume is in use - [{named_id}]\n")
    );
    // cp reaches binds and volumes of running containers, and leaves no mount behind.
    let host = g.env.path("bound");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(g.env.path("f.txt"), "from host\n").unwrap();
    g.ok(&[
        "run",
        "-d",
        "--name",
        "cpv",
        "-v",
        "cfg:/etc",
        "-v",
        &format!("{}:/h", host.display()),
        "busybox",
        "sleep",
        "300",
    ]);
    let before = mounts_under(&g.env.root());
    let f = g.env.path("f.txt").display().to_string();
    g.ok(&["cp", &f, "cpv:/h/"]);
    g.ok(&["cp", &f, "cpv:/etc/new"]);
    assert_eq!(
        std::fs::read_to_string(host.join("f.txt")).unwrap(),
        "from host\n"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/new")).unwrap(),
        "from host\n"
    );
    g.ok(&[
        "cp",
        "cpv:/etc/group",
        &g.env.path("group.out").display().to_string(),
    ]);
    assert!(std::fs::read_to_string(g.env.path("group.out"))
        .unwrap()
        .contains("wheel"));
    assert_eq!(mounts_under(&g.env.root()), before);
    // rm -v and --rm take anonymous volumes with them, never named ones.
    g.ok(&["rm", "-f", "cpv", "named"]);
    g.ok(&["rm", "-v", "anon"]);
    assert_eq!(volumes(), vec!["cfg".to_string()]);
    g.ok(&["run", "--rm", "withvol", "true"]);
    g.until(10, "--rm to remove the anonymous volume", || {
        (volumes() == vec!["cfg".to_string()]).then_some(())
    });
    // system prune --volumes: stopped containers, then the anonymous volumes they held.
    g.ok(&["create", "--name", "left", "withvol"]);
    assert_eq!(volumes().len(), 2);
    let pruned = g.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(pruned.contains("Deleted Volumes:"), "{pruned}");
    assert_eq!(volumes(), vec!["cfg".to_string()]);
    g.ok(&["volume", "prune", "-f"]);
    assert_eq!(volumes(), vec!["cfg".to_string()]);
    assert_eq!(
        g.ok(&["volume", "prune", "-a", "-f"]),
        // The image's /etc copied up: passwd, group and nsswitch.conf.
        "Deleted Volumes:\ncfg\n\nTotal reclaimed space: 124B\n"
    );
    assert!(volumes().is_empty());
    // A bad name: docker's message, exit 125, and nothing made.
    let out = g.run(&["run", "-v", "bad/name:/x", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out)
        .1
        .contains("\"bad/name\" includes invalid characters for a local volume name"));
    assert!(volumes().is_empty());
    // What a wharf killed mid-create leaves (a directory without a record) goes with the
    // next prune.
    let orphan_c = g
        .env
        .root()
        .join("containers")
        .join("f".repeat(64))
        .join("upper");
    let orphan_v = g.env.root().join("volumes").join("halfmade").join("_data");
    std::fs::create_dir_all(&orphan_c).unwrap();
    std::fs::create_dir_all(&orphan_v).unwrap();
    g.ok(&["container", "prune", "-f"]);
    assert!(!orphan_c.parent().unwrap().exists() && !orphan_v.parent().unwrap().exists());
    g.assert_clean();
}

#[test]
fn ps_filters_sizes_and_commands_like_docker() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&[
        "create",
        "--name",
        "web",
        "-l",
        "app=1",
        "-l",
        "tier=front",
        "busybox",
    ]);
    let out = g.run(&[
        "run", "--name", "done", "-l", "app=2", "busybox", "sh", "-c", "exit 2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    g.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "-v",
        "data:/data",
        "busybox",
        "sleep",
        "300",
    ]);
    let names = |filters: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            args.extend(["-f", f]);
        }
        let mut v: Vec<String> = g.ok(&args).lines().map(str::to_string).collect();
        v.sort();
        v.join(" ")
    };
    // One key's values widen the match, labels narrow it, different keys all apply.
    assert_eq!(names(&["name=web", "name=live"]), "live web");
    assert_eq!(names(&["name=^web$"]), "web");
    assert_eq!(names(&["status=running", "status=exited"]), "done live");
    assert_eq!(names(&["label=app", "label=tier=front"]), "web");
    assert_eq!(names(&["label=app", "status=exited"]), "done");
    assert_eq!(names(&["ancestor=busybox:latest"]), "done live web");
    assert_eq!(names(&["before=live"]), "done web");
    assert_eq!(names(&["since=web"]), "done live");
    assert_eq!(names(&["volume=data"]), "live");
    assert_eq!(names(&["exited=2"]), "done");
    // status= implies -a, as in docker.
    assert_eq!(
        g.ok(&["ps", "-q", "-f", "status=created"]).lines().count(),
        1
    );
    let out = g.run(&["ps", "-f", "status=bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("Invalid filter 'status=bogus'"),
        "{:?}",
        text(&out)
    );
    // COMMAND quotes arguments with spaces; -s adds the sizes.
    assert_eq!(
        g.ok(&[
            "ps",
            "-a",
            "--no-trunc",
            "-f",
            "name=done",
            "--format",
            "{{.Command}}"
        ]),
        "\"sh -c 'exit 2'\"\n"
    );
    let sized = g.ok(&["ps", "-s", "-f", "name=live"]);
    assert!(sized.lines().next().unwrap().ends_with("SIZE"), "{sized}");
    assert!(sized.contains("(virtual "), "{sized}");
    g.ok(&["rm", "-f", "web", "done", "live"]);
    g.assert_clean();
}

/// The command failed with `code` and said `needle` on stderr.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    assert_eq!(out.status.code(), Some(code), "{:?}", text(out));
    assert!(text(out).1.contains(needle), "{:?}", text(out));
}

#[test]
fn volumes_from_shares_the_sources_mounts() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.import_with_volume_at_tmp();
    let host = g.env.path("shared-ro");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("h"), "from host\n").unwrap();
    let ro_bind = format!("{}:/h:ro", host.display());
    // The source need not be running: a stopped container lends its mounts too.
    g.ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "vf-data:/data",
        "-v",
        &ro_bind,
        "withvol",
        "sh",
        "-c",
        "echo d > /data/f; echo t > /tmp/t",
    ]);
    let anon = g.inspect(
        "src",
        "{{range .Mounts}}{{if eq .Destination \"/tmp\"}}{{.Name}}{{end}}{{end}}",
    );
    assert_eq!(anon.len(), 64, "{anon}");
    // `run --rm --volumes-from FROM [-v ...] busybox ARGS`.
    let borrow = |from: &str, extra: &[&str], args: &[&str]| {
        let mut a = vec!["run", "--rm", "--volumes-from", from];
        a.extend(extra);
        a.push("busybox");
        a.extend(args);
        g.run(&a)
    };
    // The named volume, the image's anonymous volume and the bind, at the same places.
    let out = borrow("src", &[], &["cat", "/data/f", "/tmp/t", "/h/h"]);
    assert_eq!(text(&out).0, "d\nt\nfrom host\n", "{:?}", text(&out));
    // :ro makes every mount read-only; a read-only source mount stays read-only under :rw.
    let out = borrow("src:ro", &[], &["touch", "/data/x"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let out = borrow("src:rw", &[], &["touch", "/h/x"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let out = borrow("src", &[], &["touch", "/data/x"]);
    assert!(out.status.success(), "{:?}", text(&out));
    // The container's own -v wins over what it borrows.
    let out = borrow("src", &["-v", "vf-other:/data"], &["ls", "/data"]);
    assert_eq!(text(&out).0, "", "{:?}", text(&out));
    // docker's record: HostConfig.VolumesFrom as given, no Binds of the borrowed mounts, and
    // the borrowed mounts in .Mounts.
    g.ok(&[
        "create",
        "--name",
        "borrower",
        "--volumes-from",
        "src:ro",
        "busybox",
        "true",
    ]);
    assert_eq!(
        g.inspect(
            "borrower",
            "{{json .HostConfig.VolumesFrom}} {{json .HostConfig.Binds}}"
        ),
        r#"["src:ro"] null"#
    );
    assert_eq!(
        g.inspect(
            "borrower",
            "{{range .Mounts}}{{.Destination}}:{{.RW}} {{end}}"
        ),
        "/h:false /tmp:false /data:false"
    );
    g.ok(&["rm", "borrower"]);
    // Removing a borrower (with its anonymous volumes) leaves the source's volumes alone.
    assert!(g.ok(&["volume", "ls", "-q"]).lines().any(|v| v == anon));
    // Bad input: docker's messages, status 125, nothing made.
    assert_fails(
        &borrow("nosuch", &[], &["true"]),
        125,
        "No such container: nosuch",
    );
    assert_fails(
        &borrow("src:rshared", &[], &["true"]),
        125,
        "invalid mode: rshared",
    );
    assert_eq!(g.ok(&["ps", "-a", "--format", "{{.Names}}"]), "src\n");
    g.ok(&["rm", "-v", "src"]);
    g.ok(&["volume", "rm", "vf-data", "vf-other"]);
    g.assert_clean();
}
