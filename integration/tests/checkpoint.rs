//! checkpoint and restore through CRIU: a counting process is dumped, the container is gone,
//! and a restore under a new ID carries on counting without starting again; `--leave-running`;
//! and the refusals that come before CRIU is ever started (these run on any machine). The
//! cases that need CRIU skip with the reason where `criu check` fails (Debian 12's CRIU 3.17
//! cannot run on this kernel; shared/conformance/criu-setup.sh builds 4.2).

use std::path::Path;
use std::time::{Duration, Instant};

use integration::features::{self, Feature};
use integration::{Bundle, Container, Runtime, TempDir};

/// A container counting in /count (its rootfs, seen from the host), that marks each start in
/// /starts. Its stdio goes to /dev/null: CRIU restores the files a process has open, and the
/// harness's output files are gone by then.
fn counter() -> Bundle {
    let mut b = Bundle::new(&[]);
    b.script(
        "exec </dev/null >/dev/null 2>&1; echo start >> /starts; i=0; \
         while true; do i=$((i+1)); echo $i > /count.new; mv /count.new /count; sleep 0.05; done",
    );
    b.save();
    b
}

fn count(b: &Bundle) -> u64 {
    std::fs::read_to_string(b.rootfs().join("count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits (bounded) until the counter passes `n`; returns what it read.
fn count_above(b: &Bundle, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = count(b);
        if c > n {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "the count stayed at {c}, not above {n}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn fails_with(rt: &Runtime, args: &[&str], text: &str) {
    let out = rt.run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    if rt.is_hull() {
        assert!(err.contains(text), "{args:?}: wanted {text:?} in: {err}");
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn refusals_come_before_criu_and_leave_nothing() {
    let rt = Runtime::new();
    let b = counter();
    let created = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &created.id]);
    fails_with(
        &rt,
        &["checkpoint", &created.id],
        "Container cannot be checkpointed in created state",
    );

    let c = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    let images = TempDir::new("images");
    let img = path(&images.path);
    for (flags, text) in [
        (
            &["--parent-path", "/abs"][..],
            "--parent-path must be relative",
        ),
        (&["--parent-path", "missing"][..], "invalid --parent-path"),
        (
            &["--manage-cgroups-mode", "loose"][..],
            "invalid manage-cgroups-mode value",
        ),
        (
            &["--empty-ns", "ipc"][..],
            "namespace \"ipc\" is not supported",
        ),
        (
            &["--page-server", "27277"][..],
            "--page-server ADDRESS:PORT",
        ),
    ] {
        let mut args = vec!["checkpoint", "--image-path", img];
        args.extend_from_slice(flags);
        args.push(&c.id);
        fails_with(&rt, &args, text);
        assert_eq!(rt.state(&c.id)["status"], "running", "{flags:?}");
    }

    // --criu names the binary; a missing one is named in the error and changes nothing.
    let out = rt.run(&[
        "--criu",
        "/no/such/criu",
        "checkpoint",
        "--image-path",
        img,
        &c.id,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/criu"), "{err}");
    assert_eq!(rt.state(&c.id)["status"], "running");

    // A restore from images that are not there makes no container.
    let id = integration::unique("restored");
    fails_with(
        &rt,
        &[
            "restore",
            "-d",
            "--image-path",
            img,
            "--bundle",
            b.path_str(),
            &id,
        ],
        "descriptors.json",
    );
    assert!(
        !rt.run(&["state", &id]).status.success(),
        "{id} was left behind"
    );
    assert!(!rt.root.path.join(&id).exists());
}

#[test]
fn a_restored_counter_carries_on_under_a_new_id() {
    if !features::require(Feature::Criu, "checkpoint and restore") {
        return;
    }
    let rt = Runtime::new();
    let b = counter();
    let first = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &first.id]);
    count_above(&b, 3);
    let images = TempDir::new("images");
    let work = TempDir::new("work");
    let (img, wrk) = (path(&images.path), path(&work.path));
    rt.ok(&[
        "checkpoint",
        "--image-path",
        img,
        "--work-path",
        wrk,
        &first.id,
    ]);
    assert!(
        !rt.run(&["state", &first.id]).status.success(),
        "a checkpointed container is gone"
    );
    let dumped = count(&b);
    assert!(
        work.path.join("dump.log").exists(),
        "CRIU's log is in --work-path"
    );

    let second = Container::new(&rt);
    rt.ok(&[
        "restore",
        "-d",
        "--image-path",
        img,
        "--work-path",
        wrk,
        "--bundle",
        b.path_str(),
        &second.id,
    ]);
    assert_eq!(rt.state(&second.id)["status"], "running");
    count_above(&b, dumped + 3);
    let starts = std::fs::read_to_string(b.rootfs().join("starts")).unwrap();
    assert_eq!(starts, "start\n", "the restored process started again");

    // --leave-running: the images are written and the container runs on.
    let again = TempDir::new("images");
    rt.ok(&[
        "checkpoint",
        "--leave-running",
        "--image-path",
        path(&again.path),
        &second.id,
    ]);
    assert_eq!(rt.state(&second.id)["status"], "running");
    let now = count(&b);
    count_above(&b, now + 2);
    assert!(again.path.join("inventory.img").exists());
}
