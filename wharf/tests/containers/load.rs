//! Load: many wharf processes on one data root at once, as a compose file or a CI job
//! starts them. Every command must exit as it would alone, no "database is locked" may
//! reach a user, and no address, port or blob may be handed out twice or stored damaged.

use std::collections::BTreeSet;
use std::process::Output;

use super::{runtime, Guard};

fn say(out: &Output) -> String {
    format!(
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// Runs `n` wharf commands at once; asserts each succeeded without a lock error.
fn all_at_once(g: &Guard, n: usize, args: impl Fn(usize) -> Vec<String> + Sync) -> Vec<Output> {
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let a = args(i);
                s.spawn(move || {
                    let a: Vec<&str> = a.iter().map(String::as_str).collect();
                    g.run(&a)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in outs.iter().enumerate() {
        let text = say(out);
        assert!(out.status.success(), "command {i}: {text}");
        assert!(!text.contains("locked"), "command {i}: {text}");
    }
    outs
}

#[test]
fn fifty_runs_with_published_ports_at_once_then_fifty_removals() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&["network", "create", "load1"]);
    g.ok(&["network", "create", "load2"]);
    all_at_once(&g, 50, |i| {
        [
            "run",
            "-d",
            "--name",
            &format!("l{i}"),
            "--network",
            &format!("load{}", i % 2 + 1),
            "-p",
            "127.0.0.1::80",
            "busybox",
            "sleep",
            "300",
        ]
        .map(String::from)
        .to_vec()
    });
    let mut addresses = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for i in 0..50 {
        let name = format!("l{i}");
        let line = g.inspect(
            &name,
            "{{.State.Status}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}} {{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
        );
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.len(), 3, "{name}: {line}");
        assert_eq!(words[0], "running", "{name}: {line}");
        assert!(
            addresses.insert(words[1].to_string()),
            "{name}: address {line} given twice"
        );
        assert!(
            ports.insert(words[2].to_string()),
            "{name}: port {line} given twice"
        );
    }
    assert_eq!(
        g.ok(&["ps", "-q"]).lines().count(),
        50,
        "every container runs"
    );
    all_at_once(&g, 50, |i| {
        ["rm", "-f", &format!("l{i}")].map(String::from).to_vec()
    });
    g.assert_clean();
    let db = wharf::store::Db::open(&g.env.root().join("wharf.db")).expect("store");
    assert!(db.endpoints(None).expect("endpoints").is_empty());
    for name in ["load1", "load2"] {
        g.ok(&["network", "rm", name]);
    }
}

#[test]
fn twenty_builds_at_once_share_one_cache() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let ctx = g.build_context(
        "load-ctx",
        "FROM busybox\nRUN echo shared > /shared\nARG N\nRUN echo $N > /n\n",
    );
    let ctx = ctx.display().to_string();
    let build = |n: &str, tag: &str| {
        [
            "build",
            "--network",
            "none",
            "--build-arg",
            &format!("N={n}"),
            "-t",
            tag,
            &ctx,
        ]
        .map(String::from)
        .to_vec()
    };
    // One build fills the cache for the shared step; the twenty then all take it from there.
    let a: Vec<String> = build("warm", "warm");
    g.ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let outs = all_at_once(&g, 20, |i| build(&i.to_string(), &format!("b{i}")));
    let shared_layer = |tag: &str| g.inspect(tag, "{{index .RootFS.Layers 1}}");
    let warm = shared_layer("warm");
    for (i, out) in outs.iter().enumerate() {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Step 2/4 : RUN echo shared > /shared\n ---> Using cache\n"),
            "b{i}: {text}"
        );
        assert_eq!(shared_layer(&format!("b{i}")), warm, "b{i}");
        let content = g.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &format!("b{i}"),
            "cat",
            "/shared",
            "/n",
        ]);
        assert_eq!(content, format!("shared\n{i}\n"), "b{i}");
    }
    g.assert_clean();
}

/// Starts that overlap (a starter killed after it spawned the monitor, then `start` again,
/// or two clients at once) start the container once: every start succeeds, one process
/// runs, and its network namespace is the one its record names.
#[test]
fn eight_starts_of_one_container_at_once_start_it_once() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    g.ok(&["create", "--name", "once", "busybox", "sleep", "300"]);
    all_at_once(&g, 8, |_| ["start", "once"].map(String::from).to_vec());
    assert_eq!(g.inspect("once", "{{.State.Status}}"), "running");
    assert_eq!(g.inspect("once", "{{.RestartCount}}"), "0");
    let pid = g.inspect("once", "{{.State.Pid}}");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the recorded pid {pid} is not a live process"
    );
    let sandbox = g.inspect("once", "{{.NetworkSettings.SandboxKey}}");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("the process's netns");
    let recorded = std::fs::metadata(&sandbox).expect("the recorded sandbox exists");
    let live = std::fs::metadata(format!("/proc/{pid}/ns/net")).expect("netns");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (recorded.dev(), recorded.ino()),
        (live.dev(), live.ino()),
        "the container runs in {theirs:?}, not in the sandbox {sandbox} of its record"
    );
    g.ok(&["rm", "-f", "once"]);
    g.assert_clean();
}
