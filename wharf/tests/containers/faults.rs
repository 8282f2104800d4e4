//! Crash at every step: for each step `wharf::fault` declares and each command that passes
//! through it, a fresh data root is set up, the command runs with the step armed and dies
//! there by SIGKILL, and then the listings still work, the object is complete or absent,
//! and `rm -f` and the prunes leave no mount, namespace, veth, bridge, rule, cgroup,
//! address, snapshot, blob or temporary file behind. The steps come from the code's own
//! list, so a new step is covered without editing this test.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use wharf::fault::{Step, MARK_VAR, VAR};

use super::common::Registry;
use super::{mounts_under, runtime, unrouted_subnet, Guard};

/// What a scenario left that the leak check must find gone: containers and networks by id.
#[derive(Default)]
struct Seen {
    containers: BTreeSet<String>,
    networks: BTreeSet<String>,
}

/// The image the pull scenarios fetch, pushed once for the whole test.
struct Remote {
    reg: Option<Registry>,
    image: String,
}

const RUN_FLAGS: &[&str] = &[
    "--name",
    "fc",
    "--network",
    "fnet",
    "-p",
    "127.0.0.1::80",
    "-v",
    "fvol:/data",
    "-v",
    "/anon",
];

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

impl Guard {
    /// Runs wharf with `step` armed; a command still running after two minutes is hung (a
    /// crash left something waiting for ever) and fails the test instead of CI's hour.
    fn with_fault(&self, step: Step, mark: &Path, args: &[&str]) -> Output {
        let mut child = self
            .command(args)
            .env(VAR, step.name())
            .env(MARK_VAR, mark)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run wharf");
        let deadline = Instant::now() + Duration::from_secs(120);
        while child.try_wait().expect("wait for wharf").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wharf output");
                panic!(
                    "{} in {args:?}: hung after the kill: {}",
                    step.name(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("wharf output")
    }

    fn observe(&self, seen: &mut Seen) {
        let root = self.env.root();
        seen.containers
            .extend(lines(&self.ok(&["ps", "-a", "-q", "--no-trunc"])));
        for dir in ["containers", "netns"] {
            if let Ok(d) = std::fs::read_dir(root.join(dir)) {
                seen.containers.extend(
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned()),
                );
            }
        }
        seen.networks
            .extend(lines(&self.ok(&["network", "ls", "-q", "--no-trunc"])));
        if let Ok(db) = wharf::store::Db::open(&root.join("wharf.db")) {
            for ep in db.endpoints(None).unwrap_or_default() {
                seen.containers.insert(ep.container_id);
                seen.networks.insert(ep.network_id);
            }
        }
    }

    fn has(&self, list: &[&str], name: &str) -> bool {
        lines(&self.ok(list)).iter().any(|l| l == name)
    }
}

/// Sets up what `command` needs and returns its arguments.
fn prepare(g: &Guard, command: &str, remote: &Remote, step: Step) -> Vec<String> {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let run_flags = |extra: &[&str], cmd: &[&str]| {
        let mut v = own(extra);
        v.extend(own(RUN_FLAGS));
        v.push("busybox".into());
        v.extend(own(cmd));
        v
    };
    match command {
        "create" | "run" | "start" | "rm" => {
            g.ok(&["network", "create", "fnet"]);
        }
        "network connect" => {
            g.ok(&["network", "create", "fnet"]);
            g.ok(&["network", "create", "fnet2"]);
        }
        _ => {}
    }
    match command {
        "create" => run_flags(&["create"], &["sleep", "60"]),
        "run" => run_flags(&["run", "-d"], &["sleep", "60"]),
        "start" => {
            g.ok(&run_flags(&["create"], &["sleep", "60"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>());
            own(&["start", "fc"])
        }
        "monitor" | "monitor --rm" => {
            g.ok(&["network", "create", "fnet"]);
            let extra: &[&str] = if command == "monitor" {
                &["run", "-d"]
            } else {
                &["run", "-d", "--rm"]
            };
            run_flags(extra, &["true"])
        }
        "rm" => {
            g.ok(&run_flags(&["run", "-d"], &["sleep", "60"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>());
            own(&["rm", "-f", "fc"])
        }
        "pull" => own(&["pull", &remote.image]),
        "push" => {
            // A repository of its own per step: the registry has none of its blobs yet.
            let host = remote.reg.as_ref().expect("a registry").host();
            let name = format!("{host}/fault/{}:1", step.name());
            g.ok(&["tag", "busybox", &name]);
            own(&["push", &name])
        }
        "build" => {
            let ctx = g.build_context(
                "ctx",
                "FROM busybox\nRUN echo built > /built\nLABEL fault=1\n",
            );
            own(&[
                "build",
                "--network",
                "none",
                "-t",
                "built",
                ctx.to_str().unwrap(),
            ])
        }
        "commit" => {
            g.ok(&[
                "run",
                "--name",
                "fc",
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
                "echo committed > /committed",
            ]);
            own(&["commit", "fc", "committed"])
        }
        "load" => {
            let tar = g.env.path("saved.tar");
            g.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
            g.ok(&["rmi", "busybox"]);
            own(&["load", "-i", tar.to_str().unwrap()])
        }
        "volume create" => own(&["volume", "create", "fv"]),
        "volume rm" => {
            g.ok(&["volume", "create", "fv"]);
            own(&["volume", "rm", "fv"])
        }
        "network create" => network_fn(),
        "network rm" => {
            g.ok(&network_fn().iter().map(String::as_str).collect::<Vec<_>>());
            own(&["network", "rm", "fn"])
        }
        "network connect" => {
            g.ok(&[
                "run",
                "-d",
                "--name",
                "fc",
                "--network",
                "fnet",
                "busybox",
                "sleep",
                "60",
            ]);
            own(&["network", "connect", "fnet2", "fc"])
        }
        other => panic!("no crash scenario for the command {other:?} that a step names"),
    }
}

/// `network create fn`, on a subnet no other test's data root picks: killed after its
/// bridge went, `network rm` leaves a record whose bridge the next container makes again,
/// which it refuses if another root took the subnet meanwhile.
fn network_fn() -> Vec<String> {
    let mut v: Vec<String> = ["network", "create", "fn"].map(String::from).into();
    if let Some(s) = unrouted_subnet(253) {
        v.extend(["--subnet".to_string(), s]);
    }
    v
}

/// Whatever the kill left of the object is usable or gone: a half-made object fails here.
fn check_complete(g: &Guard, command: &str) {
    match command {
        "create" | "run" | "start" | "rm" | "monitor" | "monitor --rm" => {
            if g.has(&["ps", "-a", "--format", "{{.Names}}"], "fc") {
                g.ok(&["inspect", "fc"]);
                // A container an `rm` claimed is finished by `rm -f` (the cleanup), as in
                // docker; any other can start.
                if g.inspect("fc", "{{.State.Status}}") == "removing" {
                    let out = g.run(&["start", "fc"]);
                    assert!(!out.status.success());
                } else {
                    g.ok(&["start", "fc"]);
                }
            }
        }
        "pull" | "load" => {
            let image = lines(&g.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
            for i in image {
                g.ok(&["run", "--rm", "--network", "none", &i, "true"]);
            }
        }
        "push" => {
            // The same push again completes what the killed one began.
            let name = lines(&g.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]))
                .into_iter()
                .find(|n| n.contains("/fault/"))
                .expect("the tag pushed");
            g.ok(&["push", &name]);
        }
        "build" => {
            if g.has(&["images", "--format", "{{.Repository}}"], "built") {
                assert_eq!(
                    g.ok(&["run", "--rm", "--network", "none", "built", "cat", "/built"]),
                    "built\n"
                );
            }
        }
        "commit" => {
            if g.has(&["images", "--format", "{{.Repository}}"], "committed") {
                assert_eq!(
                    g.ok(&[
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "committed",
                        "cat",
                        "/committed"
                    ]),
                    "committed\n"
                );
            }
        }
        "volume create" | "volume rm" => {
            if g.has(&["volume", "ls", "-q"], "fv") {
                g.ok(&[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "-v",
                    "fv:/fv",
                    "busybox",
                    "touch",
                    "/fv/x",
                ]);
            }
        }
        "network create" | "network rm" => {
            if g.has(&["network", "ls", "--format", "{{.Name}}"], "fn") {
                g.ok(&["run", "--rm", "--network", "fn", "busybox", "true"]);
            }
        }
        "network connect" => {
            let nets = g.inspect(
                "fc",
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            );
            if nets.split(' ').any(|n| n == "fnet2") {
                // Recorded before it is wired: the same connect again finishes it.
                let links = g.ok(&["exec", "fc", "ls", "/sys/class/net"]);
                if !links.split_whitespace().any(|l| l == "eth1") {
                    g.ok(&["network", "connect", "fnet2", "fc"]);
                }
                let links = g.ok(&["exec", "fc", "ls", "/sys/class/net"]);
                assert!(
                    links.split_whitespace().any(|l| l == "eth1"),
                    "connected to fnet2 without an interface: {links}"
                );
            }
        }
        other => panic!("no completeness check for {other:?}"),
    }
}

/// Removes everything the way a user would, then asserts nothing of `seen` is left.
fn clean_and_check(g: &Guard, seen: &Seen, what: &str) {
    for id in lines(&g.ok(&["ps", "-a", "-q", "--no-trunc"])) {
        // A `--rm` container the completeness check started may remove itself meanwhile.
        let out = g.run(&["rm", "-f", &id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("No such container"),
            "{what}: rm -f {id}: {err}"
        );
    }
    g.ok(&["system", "prune", "-a", "-f", "--volumes"]);
    g.ok(&["volume", "prune", "-a", "-f"]);
    let root = g.env.root();
    assert_eq!(g.ok(&["ps", "-a", "-q"]), "", "{what}: containers");
    assert_eq!(g.ok(&["images", "-q"]), "", "{what}: images");
    assert_eq!(g.ok(&["volume", "ls", "-q"]), "", "{what}: volumes");
    let nets = lines(&g.ok(&["network", "ls", "--format", "{{.Name}}"]));
    assert_eq!(nets, ["bridge", "host", "none"], "{what}: networks");
    assert!(
        mounts_under(&root).is_empty(),
        "{what}: mounts {:?}",
        mounts_under(&root)
    );
    let empty = |rel: &str| {
        let dir = root.join(rel);
        let left: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| !hull::is_spare_state_dir(p))
            .collect();
        assert!(left.is_empty(), "{what}: left in {rel}: {left:?}");
    };
    for rel in [
        "containers",
        "volumes",
        "netns",
        "snapshots/tmp",
        "images/blobs/tmp",
        "images/blobs/sha256",
    ] {
        empty(rel);
    }
    let snapshots: Vec<String> = std::fs::read_dir(root.join("snapshots"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "tmp")
                .collect()
        })
        .unwrap_or_default();
    assert!(snapshots.is_empty(), "{what}: snapshots {snapshots:?}");
    if let Ok(rt) = std::fs::read_dir(root.join("runtime")) {
        for r in rt.flatten() {
            empty(&format!("runtime/{}", r.file_name().to_string_lossy()));
        }
    }
    let db = wharf::store::Db::open(&root.join("wharf.db")).expect("open the store");
    let eps = db.endpoints(None).expect("endpoints");
    assert!(eps.is_empty(), "{what}: addresses still held: {eps:?}");
    let live_nets: Vec<String> = db
        .networks()
        .expect("networks")
        .into_iter()
        .map(|n| n.id)
        .collect();
    for c in &seen.containers {
        for n in &seen.networks {
            let veth = wharf::network::veth_name(c, n);
            assert!(
                !Path::new("/sys/class/net").join(&veth).exists(),
                "{what}: veth {veth} of {c} left"
            );
        }
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let cg = h.path().join("wharf").join(c);
            assert!(!cg.exists(), "{what}: cgroup {} left", cg.display());
        }
    }
    for n in seen.networks.iter().filter(|n| !live_nets.contains(n)) {
        let bridge = format!("wh-{}", &n[..12]);
        assert!(
            !Path::new("/sys/class/net").join(&bridge).exists(),
            "{what}: bridge {bridge} of a removed network left"
        );
    }
    let table = wharf::network::nft::table(&root);
    let out = std::process::Command::new("nft")
        .args(["list", "table", "ip", &table])
        .output()
        .expect("nft");
    let listing = String::from_utf8_lossy(&out.stdout);
    for l in listing.lines().filter(|l| l.contains("comment")) {
        let owner = l
            .rsplit("comment \"")
            .next()
            .unwrap_or("")
            .trim_end_matches('"');
        let kept = owner
            .strip_prefix("net:")
            .is_some_and(|id| live_nets.iter().any(|n| n == id));
        assert!(kept, "{what}: rule left: {l}");
    }
}

/// One crash: `command` killed at `step`, then the checks.
fn crash(step: Step, command: &str, remote: Option<&Remote>) {
    let remote = match remote {
        Some(r) => r,
        None if matches!(command, "pull" | "push") => {
            integration::skip(&format!("{} in {command}: no registry", step.name()));
            return;
        }
        // Only the pull and push scenarios use the registry.
        None => &Remote {
            reg: None,
            image: String::new(),
        },
    };
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let what = format!("{} in {command}", step.name());
    println!("crash: {what}");
    let mut seen = Seen::default();
    let args = prepare(&g, command, remote, step);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    g.observe(&mut seen);
    let mark = g.env.path("fault-reached");
    let out = g.with_fault(step, &mark, &args);
    if command.starts_with("monitor") {
        // Killed before it reported the start, the monitor leaves `run` an error to tell.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("exited without reporting"),
            "{what}: {stderr}"
        );
        g.until(
            20,
            &format!("{what}: the monitor to reach the step"),
            || mark.exists().then_some(()),
        );
        // The monitor's own kill comes at its step: let its process be gone before looking.
        std::thread::sleep(Duration::from_millis(50));
    } else {
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "{what}: not killed at the step ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(mark.exists(), "{what}: killed, but not by the fault switch");
    }
    g.observe(&mut seen);
    for list in [
        &["ps", "-a"][..],
        &["images"],
        &["volume", "ls"],
        &["network", "ls"],
    ] {
        g.ok(list);
    }
    check_complete(&g, command);
    g.observe(&mut seen);
    clean_and_check(&g, &seen, &what);
}

#[test]
fn killed_at_every_step_nothing_is_half_made_or_left_behind() {
    if !super::common::have("/bin/busybox", "busybox-static") {
        return;
    }
    let Some(seed) = Guard::new(&runtime()) else {
        return;
    };
    let remote = Registry::start(None).map(|reg| {
        let image = format!("{}/fault/pulled:1", reg.host());
        seed.ok(&["tag", "busybox", &image]);
        seed.ok(&["push", &image]);
        Remote {
            reg: Some(reg),
            image,
        }
    });
    drop(seed);
    let mut crashes = 0;
    for step in Step::ALL {
        for command in step.commands() {
            crash(*step, command, remote.as_ref());
            crashes += 1;
        }
    }
    println!("{crashes} crashes at {} steps", Step::ALL.len());
}

/// A `--rm` container whose monitor is cut short while it removes the container: the exit
/// code is recorded before the removal starts, so `wait` still reports it. (It read 0, the
/// value a started container's record holds until its exit is recorded.)
#[test]
fn a_monitor_cut_short_while_removing_leaves_the_exit_code_for_wait() {
    if !super::common::have("/bin/busybox", "busybox-static") {
        return;
    }
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let mark = g.env.path("fault-reached");
    let args = [
        "run",
        "-d",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ];
    let out = g.with_fault(Step::MonitorAutoRemoving, &mark, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    g.until(20, "the monitor to reach the removal", || {
        mark.exists().then_some(())
    });
    assert_eq!(g.ok(&["wait", &id]), "3\n");
    g.ok(&["rm", "-f", &id]);
}
