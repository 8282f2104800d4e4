//! Cases for config.json's areas (root, mounts, process, hostname, hooks and config-linux),
//! checked from inside the container with busybox.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use integration::features::{self, Feature};
use integration::{run_bundle, run_script, Bundle, Container, Runtime, TempDir};
use serde_json::json;

pub fn hostname_and_domainname() {
    let rt = Runtime::new();
    let out = run_script(&rt, "hostname; cat /proc/sys/kernel/domainname", |c| {
        c["hostname"] = json!("box1");
        c["domainname"] = json!("example.test");
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box1");
    if rt.is_hull() {
        assert_eq!(lines[1], "example.test");
    } else {
        // runc 1.1 predates domainname support (runtime-spec 1.1): listed in README.
        println!("reference runtime: domainname not checked ({})", lines[1]);
    }
}

pub fn namespaces_are_new_or_joined_by_path() {
    let rt = Runtime::new();
    let a = Bundle::new(&["sleep", "30"]);
    a.save();
    let ca = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", a.path_str(), &ca.id]);
    let pid = rt.state(&ca.id)["pid"].as_i64().unwrap();
    let net_a = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let uts_a = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();

    let out = run_script(
        &rt,
        "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname",
        |c| {
            c["linux"]["namespaces"] = json!([
                {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                {"type": "network", "path": format!("/proc/{pid}/ns/net")},
                {"type": "uts", "path": format!("/proc/{pid}/ns/uts")}
            ]);
            c.as_object_mut().unwrap().remove("hostname");
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], net_a.to_str().unwrap());
    assert_eq!(lines[1], uts_a.to_str().unwrap());
    assert_eq!(
        lines[2], "testbox",
        "joined the first container's uts namespace"
    );
    assert_ne!(net_a, host_net);
}

/// runc's "loopback" network: `lo` is up in a network namespace the runtime creates (with a
/// user namespace too), and a namespace joined by path is left as it was.
pub fn loopback_is_up_only_in_a_new_network_namespace() {
    let rt = Runtime::new();
    // IFF_UP is 0x1, IFF_LOOPBACK 0x8.
    let flags = "cat /sys/class/net/lo/flags";
    assert_eq!(run_script(&rt, flags, |_| {}), "0x9\n");

    let down = HeldNetns::new();
    let out = run_script(&rt, flags, |c| {
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "network", "path": down.path()}
        ]);
    });
    assert_eq!(out, "0x8\n", "a joined namespace keeps its lo down");

    if let Some(why) = features::missing(Feature::UserNamespace) {
        println!("not checked with a user namespace: {why}");
        return;
    }
    let out = run_script(&rt, flags, integration::add_user_namespace);
    assert_eq!(out, "0x9\n", "in a user namespace too");
}

/// A network namespace with `lo` down, held by a process of ours until dropped.
struct HeldNetns(std::process::Child);

impl HeldNetns {
    fn new() -> Self {
        let child = std::process::Command::new("unshare")
            .args(["--net", "sleep", "60"])
            .spawn()
            .expect("unshare --net sleep");
        let held = HeldNetns(child);
        let host = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_link(held.path()).ok().as_ref() == Some(&host) {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare --net did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        held
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }
}

impl Drop for HeldNetns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn pid_namespace_makes_the_process_pid_1() {
    let rt = Runtime::new();
    assert_eq!(run_script(&rt, "echo $$", |_| {}), "1\n");
}

pub fn user_namespace_maps_ids() {
    if let Some(why) = features::missing(Feature::UserNamespace) {
        crate::skip(&why);
    }
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "id -u; cat /proc/self/uid_map /proc/self/gid_map",
        |c| {
            integration::add_user_namespace(c);
        },
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[..4], ["0", "0", "100000", "65536"], "{out}");
    assert_eq!(words[4..7], ["0", "100000", "65536"], "{out}");
}

pub fn mounts_tmpfs_bind_and_flags() {
    let rt = Runtime::new();
    let host = TempDir::new("bindsrc");
    std::fs::write(host.path.join("file"), "from host\n").unwrap();
    let out = run_script(
        &rt,
        "cat /data/file; touch /data/new 2>/dev/null && echo rw || echo ro; \
         touch /scratch/x && echo scratch-rw; grep ' /scratch ' /proc/self/mountinfo | grep -c nosuid; \
         cat /single",
        |c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/data", "type": "bind", "source": host.path, "options": ["rbind", "ro"]}));
            mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}));
            mounts.push(json!({"destination": "/single", "type": "none", "source": host.path.join("file"), "options": ["bind"]}));
        },
    );
    assert_eq!(out, "from host\nro\nscratch-rw\n1\nfrom host\n");
    assert!(!host.path.join("new").exists());
}

pub fn mount_destination_symlink_stays_inside_the_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    let outside = TempDir::new("outside");
    // /evil -> the host directory, absolute: resolution must stay in the rootfs.
    std::os::unix::fs::symlink(&outside.path, b.rootfs().join("evil")).unwrap();
    b.script("grep -c ' /tmp/' /proc/self/mountinfo || true");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
    // Creating the destination through a dangling symlink may be refused (hull) or done inside
    // the rootfs (runc); either way nothing may land on the host path.
    let (code, _, _) = run_bundle(&rt, &b);
    assert!(
        integration::mounts_below(&outside.path).is_empty(),
        "a mount escaped to the host path"
    );
    if code == 0 {
        assert!(b
            .rootfs()
            .join(outside.path.strip_prefix("/").unwrap())
            .is_dir());
    }
    assert!(std::fs::read_dir(&outside.path).unwrap().next().is_none());
}

pub fn readonly_root_and_paths() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "touch /x 2>/dev/null && echo root-rw || echo root-ro; \
         echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-rw || echo sys-ro; \
         wc -c < /proc/timer_list; ls /sys/firmware | wc -l",
        |c| c["root"]["readonly"] = json!(true),
    );
    assert_eq!(out, "root-ro\nsys-ro\n0\n0\n");
}

pub fn default_and_configured_devices() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "for d in null zero full random urandom tty fuse; do stat -c '%n %t:%T %a' /dev/$d; done; \
         for l in fd stdin ptmx; do readlink /dev/$l; done",
        |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600}]);
        },
    );
    let want = "/dev/null 1:3 666\n/dev/zero 1:5 666\n/dev/full 1:7 666\n/dev/random 1:8 666\n\
                /dev/urandom 1:9 666\n/dev/tty 5:0 666\n/dev/fuse a:e5 600\n\
                /proc/self/fd\n/proc/self/fd/0\npts/ptmx\n";
    assert_eq!(out, want);
}

pub fn sysctl_in_the_network_namespace() {
    let rt = Runtime::new();
    let out = run_script(&rt, "cat /proc/sys/net/ipv4/ip_forward", |c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    assert_eq!(out, "1\n");
}

pub fn process_env_cwd_user_umask_rlimits_oom() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "echo $GREETING; pwd; id -u; id -g; id -G; umask; ulimit -n; cat /proc/self/oom_score_adj; \
         grep NoNewPrivs /proc/self/status",
        |c| {
            let p = &mut c["process"];
            p["env"].as_array_mut().unwrap().push(json!("GREETING=hi"));
            p["cwd"] = json!("/work/dir");
            p["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 7], "umask": 63});
            p["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
            p["oomScoreAdj"] = json!(500);
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hi");
    assert_eq!(lines[1], "/work/dir");
    assert_eq!(lines[2], "1000");
    assert_eq!(lines[3], "1000");
    assert_eq!(
        lines[4].split_whitespace().collect::<Vec<_>>(),
        ["1000", "5", "7"]
    );
    assert_eq!(lines[5], "0077");
    assert_eq!(lines[6], "256");
    assert_eq!(lines[7], "500");
    assert_eq!(
        lines[8].split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
}

pub fn capabilities_in_all_sets() {
    let rt = Runtime::new();
    let out = run_script(&rt, "grep ^Cap /proc/self/status", |c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"],
            "effective": ["CAP_KILL", "CAP_CHOWN"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        });
    });
    // CAP_CHOWN = bit 0, CAP_KILL = bit 5, CAP_NET_RAW = bit 13.
    let want = [
        ("CapInh:", 0x20u64),
        ("CapPrm:", 0x21),
        ("CapEff:", 0x21),
        ("CapBnd:", 0x2021),
        ("CapAmb:", 0x20),
    ];
    for (name, value) in want {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        let got = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_eq!(got, value, "{name} in {out}");
    }
}

/// A config written for a newer kernel runs, without the capabilities this one lacks, and says
/// so (runc 1.2+: "ignoring unknown or unavailable capabilities").
pub fn unknown_capabilities_are_ignored_with_a_warning() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script("grep ^CapBnd /proc/self/status");
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_LIKE_NOTHING_ELSE"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL"]
    });
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0000000000000020"), "{out}");
    assert!(
        err.contains("ignoring unknown or unavailable capabilities")
            && err.contains("CAP_LIKE_NOTHING_ELSE"),
        "{err}"
    );
}

pub fn hooks_run_in_order_with_state_on_stdin() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    let log = b.path().join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r s; echo \"{name} $s\" >> {}", log.display())]});
    b.config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    // startContainer runs inside the container: its path resolves there.
    b.config["hooks"]["startContainer"] = json!([{"path": "/bin/sh", "args": ["sh", "-c", "read -r s; echo started > /tmp/started"]}]);
    let shared =
        json!({"destination": "/tmp", "type": "bind", "source": b.path(), "options": ["bind"]});
    b.config["mounts"].as_array_mut().unwrap().push(shared);
    let (code, _, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        order,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ],
        "{text}"
    );
    for line in text.lines() {
        let state: serde_json::Value =
            serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert!(
            state["id"].is_string() && state["ociVersion"].is_string(),
            "{line}"
        );
        assert_eq!(state["bundle"], b.path_str());
    }
    assert!(
        b.path().join("started").exists(),
        "startContainer hook did not run"
    );
}

pub fn failing_or_slow_create_hooks_abort_and_leave_nothing() {
    let rt = Runtime::new();
    let complains = json!({"path": "/bin/sh", "args": ["sh", "-c", "echo bad state >&2; exit 3"]});
    for (kind, hook, says) in [
        ("prestart", json!({"path": "/bin/false"}), "exit status 1"),
        ("createRuntime", complains, "bad state"),
        (
            "prestart",
            json!({"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}),
            "",
        ),
    ] {
        let mut b = Bundle::new(&["true"]);
        // The second hook fails: runc numbers them from 0.
        b.config["hooks"] = json!({kind: [{"path": "/bin/true"}, hook]});
        b.save();
        let c = Container::new(&rt);
        let out = rt.run(&["create", "--bundle", b.path_str(), &c.id]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        // runc's words, which callers match on, with the hook's own output (runc 1.1.5 does
        // not name the kind yet).
        let words = if rt.is_hull() {
            format!("error running {kind} hook #1:")
        } else {
            "hook #1:".to_string()
        };
        assert!(err.contains(&words), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(!rt.root.path.join(&c.id).exists(), "state left behind");
        assert!(integration::mounts_below(b.path()).is_empty());
        for d in integration::cgroup_dirs(&format!("/{}", c.id)) {
            assert!(!d.exists(), "{d:?} left behind");
        }
    }
}

pub fn poststop_failure_only_warns() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] = json!({"poststop": [{"path": "/bin/false"}]});
    let (code, _, _) = run_bundle(&rt, &b);
    assert_eq!(code, 0);
    assert!(std::fs::read_dir(&rt.root.path)
        .unwrap()
        .all(|e| hull::is_spare_state_dir(&e.unwrap().path())));
}

pub fn no_pivot_moves_the_root() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sh", "-c", "ls / | wc -l"]);
    b.save();
    let c = Container::new(&rt);
    let out = rt.run(&["run", "--no-pivot", "--bundle", b.path_str(), &c.id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(n >= 8, "the container's root has the rootfs entries");

    // The host's procfs stays below the chroot: it must not let the container mount a bare
    // procfs from a user namespace of its own (the kernel allows it where a full one is
    // visible).
    if !rt.is_hull() {
        crate::skip("runc 1.1.5 leaves the host's procfs visible under --no-pivot");
    }
    let mut b = Bundle::new(&[
        "unshare",
        "-mrpf",
        "sh",
        "-c",
        "mount -t proc none /proc && echo mounted",
    ]);
    for set in ["bounding", "permitted", "effective"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SETFCAP"));
    }
    b.save();
    let c = Container::new(&rt);
    let out = rt.run(&["run", "--no-pivot", "--bundle", b.path_str(), &c.id]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("mounted"),
        "a bare procfs was mounted: {text}"
    );
    assert!(text.contains("ermission denied"), "{text}");
}

pub fn rootfs_propagation_shared_does_not_break_pivot() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        crate::skip(
            "runc 1.1.5 applies rootfsPropagation before pivot_root only (runc 1.2 after it too)",
        );
    }
    for (mode, shared) in [("shared", true), ("rshared", true), ("private", false)] {
        // The optional fields of the root's mountinfo line say "shared:N" for a shared mount.
        let out = run_script(
            &rt,
            "awk '$5 == \"/\" { print $7 }' /proc/self/mountinfo",
            |c| c["linux"]["rootfsPropagation"] = json!(mode),
        );
        assert_eq!(out.starts_with("shared:"), shared, "{mode}: {out}");
    }
}

pub fn time_namespace_with_offsets() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        crate::skip("the reference runtime (runc 1.1) has no time namespace support");
    }
    if let Some(why) = features::missing(Feature::TimeNamespace) {
        crate::skip(&why);
    }
    // Also in a user namespace of its own, where the offsets are written before init becomes
    // the namespace's root.
    for userns in [false, true] {
        let out = run_script(&rt, "cut -d. -f1 /proc/uptime", |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            if userns {
                integration::add_user_namespace(c);
            }
            c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 10_000_000, "nanosecs": 0}});
        });
        let uptime: u64 = out.trim().parse().unwrap();
        assert!(
            uptime >= 10_000_000,
            "userns {userns}: uptime {uptime} lacks the boottime offset"
        );
    }
}

/// A container that joins another's user namespace by path: it becomes that namespace's root
/// (the other's mappings), may still join a network namespace the user namespace does not
/// own (joined first, as host root), and an idmapped mount takes the joined namespace's
/// mapping.
pub fn joining_another_containers_user_namespace() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        crate::skip("runc 1.1.5 joins the user namespace first and has no idmapped mounts");
    }
    let mut owner = Bundle::new(&["sleep", "1000"]);
    integration::add_user_namespace(&mut owner.config);
    owner.save();
    let first = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", owner.path_str(), &first.id]);
    let pid = rt.state(&first.id)["pid"].as_i64().unwrap();

    let src = TempDir::new("idmapsrc");
    std::fs::write(src.path.join("f"), "").unwrap();
    let mut b = Bundle::new(&[]);
    std::fs::create_dir_all(b.rootfs().join("mapped")).unwrap();
    b.script("cat /proc/self/uid_map; readlink /proc/self/ns/net; stat -c %u /mapped/f");
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/proc/{}/ns/net", std::process::id()));
        }
    }
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
    // Without its own network namespace the container may not mount sysfs: the host's, bound.
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["type"] == "sysfs" {
            *m = json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "ro"]});
        }
    }
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/mapped", "type": "bind", "source": src.path, "options": ["bind", "idmap"]}),
    );
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let words: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(words, ["0", "100000", "65536"], "{out}");
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(lines[1], host_net.to_str().unwrap(), "{out}");
    assert_eq!(
        lines[2], "0",
        "host root's file, idmapped to the namespace's root: {out}"
    );
}

pub fn cgroup_mount_shows_the_containers_own_cgroups_read_only() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "grep ':memory:' /proc/self/cgroup; test -r /sys/fs/cgroup/memory/memory.limit_in_bytes && echo readable; \
         mkdir /sys/fs/cgroup/memory/x 2>/dev/null && echo rw || echo ro",
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    // The hierarchy number differs between hosts; the cgroup namespace makes the path "/".
    assert!(lines[0].ends_with(":memory:/"), "{out}");
    assert_eq!(lines[1..], ["readable", "ro"], "{out}");
}

pub fn mount_propagation_options() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "grep ' /shared ' /proc/self/mountinfo | grep -o 'shared:[0-9]*' | wc -l",
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}));
        },
    );
    assert_eq!(out.trim(), "1");
}

pub fn socket_activation_fds_pass_with_listen_env() {
    let rt = Runtime::new();
    let dir = TempDir::new("listen");
    std::fs::write(dir.path.join("sock"), "activated\n").unwrap();
    let mut b = Bundle::new(&[]);
    b.script("echo $LISTEN_FDS $LISTEN_PID; cat <&3");
    b.save();
    let c = Container::new(&rt);
    // exec keeps the shell's pid, so LISTEN_PID names the runtime process as systemd would.
    let script = format!(
        "LISTEN_FDS=1 LISTEN_PID=$$ exec {} --root {} run --bundle {} {} 3<{}",
        rt.bin.display(),
        rt.root.path.display(),
        b.path_str(),
        c.id,
        dir.path.join("sock").display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 1\nactivated\n");
}

/// Duplicate names in process.env: the last value wins, and the name appears once.
pub fn duplicate_env_names_keep_the_last_value_once() {
    let rt = Runtime::new();
    let out = run_script(&rt, "env | grep '^DUP='", |c| {
        c["process"]["env"] = json!(["PATH=/bin", "DUP=first", "OTHER=x", "DUP=last"]);
    });
    assert_eq!(out, "DUP=last\n");
}

/// Hooks without an `env` of their own: those init runs get the process's environment (a
/// startContainer hook sees HOME too), and createContainer hooks run in the rootfs, before
/// pivot_root, as in runc.
pub fn init_hooks_get_the_process_env_and_the_rootfs_as_cwd() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    let log = b.path().join("hooks.log");
    b.config["process"]["env"] = json!(["PATH=/bin", "ONE=two"]);
    let record = |name: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("echo \"{name} $ONE ${{HOME:-unset}} $(pwd)\" >> {}", log.display())]})
    };
    b.config["hooks"] = json!({
        "createContainer": [record("createContainer")],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
            "echo \"startContainer $ONE $HOME $(pwd)\" > /started"]}]
    });
    let (code, _, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    let created = std::fs::read_to_string(&log).unwrap();
    let rootfs = b.rootfs().canonicalize().unwrap();
    assert_eq!(
        created.split_whitespace().collect::<Vec<_>>()[..2],
        ["createContainer", "two"],
        "{created}"
    );
    assert!(
        created.trim_end().ends_with(&rootfs.display().to_string()),
        "{created}"
    );
    let started = std::fs::read_to_string(b.rootfs().join("started")).unwrap();
    assert_eq!(started, "startContainer two /root /\n");
}

/// process.ioPriority and linux.personality reach init and exec'd processes.
pub fn io_priority_and_personality_are_applied() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 4});
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    let init = rt.ok(&["exec", &c.id, "sh", "-c", "ionice -p 1; uname -m"]);
    let own = rt.ok(&["exec", &c.id, "sh", "-c", "ionice; uname -m"]);
    if !rt.is_hull() && !init.contains("prio 4") {
        crate::skip("runc 1.1.5 predates process.ioPriority and linux.personality");
    }
    for out in [init, own] {
        assert_eq!(out, "best-effort: prio 4\ni686\n");
    }
}

/// A tmpfs over an existing directory takes its mode unless mode= says otherwise; a new mount
/// point is tmpfs' default 1777 (runc 1.2+).
pub fn tmpfs_takes_the_mode_of_the_directory_it_covers() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script("stat -c %a /inherit /explicit /new/dir");
    for d in ["inherit", "explicit"] {
        std::fs::create_dir(b.rootfs().join(d)).unwrap();
        std::fs::set_permissions(
            b.rootfs().join(d),
            std::os::unix::fs::PermissionsExt::from_mode(0o710),
        )
        .unwrap();
    }
    let tmpfs = |dest: &str, extra: &[&str]| {
        let mut options = vec!["rw", "nodev", "nosuid"];
        options.extend(extra);
        json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
    };
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(tmpfs("/inherit", &[]));
    mounts.push(tmpfs("/explicit", &["mode=1500"]));
    mounts.push(tmpfs("/new/dir", &[]));
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    if !rt.is_hull() && out == "710\n710\n1777\n" {
        crate::skip("runc 1.1.5 lets the directory's mode beat an explicit mode= (runc#4971)");
    }
    assert_eq!(out, "710\n1500\n1777\n");
}

/// process.scheduler reaches the process (its nice value and policy in /proc/self/stat).
pub fn scheduler_is_applied() {
    let rt = Runtime::new();
    let out = run_script(&rt, "cut -d' ' -f19,41 /proc/self/stat", |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 19, "priority": 0});
    });
    if !rt.is_hull() && out == "0 0\n" {
        crate::skip("runc 1.1.5 predates process.scheduler");
    }
    // nice 19, policy 3 (SCHED_BATCH)
    assert_eq!(out, "19 3\n");
}

/// linux.memoryPolicy reaches init and exec'd processes; bad policies are refused in runc's
/// words before anything is made.
pub fn memory_policy_is_applied_and_checked() {
    if let Some(why) = features::missing(Feature::Numa) {
        crate::skip(&why);
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script("head -n 1 /proc/self/numa_maps | cut -d ' ' -f 2");
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"});
    let (code, out, err) = run_bundle(&rt, &b);
    if !rt.is_hull() && out.starts_with("default") {
        crate::skip("runc 1.1.5 predates linux.memoryPolicy");
    }
    assert_eq!((code, out.as_str()), (0, "interleave:0\n"), "{err}");
    for (policy, says) in [
        (json!({}), "invalid memory policy"),
        (
            json!({"mode": "INTERLEAVE", "nodes": "0"}),
            "invalid memory policy mode",
        ),
        (
            json!({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["badflag"]}),
            "invalid memory policy flag",
        ),
        (
            json!({"mode": "MPOL_DEFAULT", "nodes": "0-7"}),
            "mode requires 0 nodes but got 8",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0-9876543210"}),
            "invalid memory policy node",
        ),
    ] {
        b.config["linux"]["memoryPolicy"] = policy.clone();
        let (code, _, err) = run_bundle(&rt, &b);
        assert_ne!(code, 0, "{policy} was accepted");
        assert!(err.contains(says), "{policy}: {err}");
    }
}

/// A program only its owner (root) may run is refused to another user, and runs for one that
/// holds CAP_DAC_OVERRIDE, as execve decides: the runtime checks with the effective ids and
/// capabilities.
pub fn cap_dac_override_runs_a_program_without_the_exec_bit() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["/priv/true"]);
    std::fs::create_dir(b.rootfs().join("priv")).unwrap();
    let copy = b.rootfs().join("priv/true");
    std::fs::copy(b.rootfs().join("bin/busybox"), &copy).unwrap();
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o744)).unwrap();
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 100});
    let (code, _, _) = run_bundle(&rt, &b);
    assert_ne!(code, 0, "a user without the exec bit ran it");
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        b.config["process"]["capabilities"][set] = json!(["CAP_DAC_OVERRIDE"]);
    }
    let (code, _, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
}

/// Idmapped bind mounts: a mount's own uidMappings/gidMappings (or `idmap` with the container's)
/// show the source's files through the mapping, with and without a user namespace; a plain bind
/// of the same source is not mapped.
pub fn idmapped_bind_mounts() {
    if let Some(why) = features::missing(Feature::IdmappedMounts) {
        crate::skip(&why);
    }
    let rt = Runtime::new();
    if !rt.is_hull() {
        crate::skip("runc 1.1.5 predates idmapped mounts (runc 1.2)");
    }
    for userns in [false, true] {
        let mut b = Bundle::new(&[]);
        let src = b.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("root.txt"), "").unwrap();
        std::fs::write(src.join("multi.txt"), "").unwrap();
        std::os::unix::fs::chown(src.join("multi.txt"), Some(100), Some(211)).unwrap();
        // Made here: root of a user namespace cannot create them in a rootfs host root owns.
        for d in ["mapped", "plain", "by-container"] {
            std::fs::create_dir(b.rootfs().join(d)).unwrap();
        }
        let map = |c: u32, h: u32, n: u32| json!([{"containerID": c, "hostID": h, "size": n}]);
        let mounts = b.config["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/mapped", "type": "bind", "source": src,
            "options": ["bind"], "uidMappings": map(0, 100000, 65536),
            "gidMappings": map(0, 100000, 65536)}),
        );
        mounts.push(
            json!({"destination": "/plain", "type": "bind", "source": src,
            "options": ["bind"]}),
        );
        if userns {
            integration::add_user_namespace(&mut b.config);
            let mounts = b.config["mounts"].as_array_mut().unwrap();
            mounts.push(
                json!({"destination": "/by-container", "type": "bind", "source": src,
                "options": ["bind", "idmap"]}),
            );
        }
        let mut script =
            "stat -c %n=%u:%g /mapped/root.txt /mapped/multi.txt /plain/root.txt".to_string();
        if userns {
            script.push_str(" /by-container/root.txt");
        }
        b.script(&script);
        // Each copy is closed once attached: many idmapped mounts fit a low RLIMIT_NOFILE.
        for i in 0..12 {
            std::fs::create_dir(b.rootfs().join(format!("many{i}"))).unwrap();
            b.config["mounts"].as_array_mut().unwrap().push(json!({
                "destination": format!("/many{i}"), "type": "bind", "source": src,
                "options": ["bind"], "uidMappings": map(0, 100000, 65536),
                "gidMappings": map(0, 100000, 65536)}));
        }
        b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 20, "soft": 20}]);
        let (code, out, err) = run_bundle(&rt, &b);
        assert_eq!(code, 0, "userns {userns}: {err}");
        let want = if userns {
            // Through the container's mapping the idmapped ids are its own; the plain bind's
            // host root is unmapped there.
            "/mapped/root.txt=0:0\n/mapped/multi.txt=100:211\n/plain/root.txt=65534:65534\n\
             /by-container/root.txt=0:0\n"
        } else {
            "/mapped/root.txt=100000:100000\n/mapped/multi.txt=100100:100211\n/plain/root.txt=0:0\n"
        };
        assert_eq!(out, want, "userns {userns}");
    }
}

/// A read-only /dev still gets devpts, mqueue and the device nodes below it, and is read-only
/// for the process.
pub fn read_only_dev_still_gets_its_mounts_and_devices() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "touch /dev/x 2>/dev/null || echo ro; [ -d /dev/pts/ ] && [ -c /dev/null ] && echo ok",
        |c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/dev" {
                    m["options"].as_array_mut().unwrap().push(json!("ro"));
                }
            }
        },
    );
    assert_eq!(out, "ro\nok\n");
}

/// A bind mount's options replace its source's per-mount flags (bar the access-time mode the
/// kernel keeps), except that in a user namespace the flags the kernel locked stay, and asking
/// to clear a locked one fails rather than giving a different mount. runc 1.2's rules.
pub fn bind_flags_over_a_source_with_locked_flags() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        crate::skip("runc 1.1.5 predates runc 1.2's rules for locked bind-mount flags");
    }
    let src = TempDir::new("locked");
    let host_mount = |opts: &str| {
        let st = std::process::Command::new("mount")
            .args(["--bind", "-o", &format!("remount,{opts}")])
            .arg(&src.path)
            .status()
            .unwrap();
        assert!(st.success(), "mount --bind -o remount,{opts}");
    };
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "rw,suid,dev,exec,strictatime", "tmpfs"])
        .arg(&src.path)
        .status()
        .unwrap();
    assert!(st.success());
    let run = |host: &str, bind: &str, userns: bool| {
        host_mount("rw,suid,dev,exec,diratime,atime,strictatime");
        host_mount(host);
        let mut b = Bundle::new(&[]);
        // Made here: root of a user namespace cannot create it in a rootfs host root owns.
        std::fs::create_dir_all(b.rootfs().join("mnt")).unwrap();
        b.script("grep ' /mnt ' /proc/self/mounts | cut -d' ' -f4");
        let opts: Vec<&str> = bind.split(',').collect();
        b.config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/mnt", "type": "bind", "source": src.path, "options": opts}),
        );
        if userns {
            integration::add_user_namespace(&mut b.config);
        }
        let (code, out, err) = run_bundle(&rt, &b);
        let flags: Vec<String> = out.trim().split(',').map(String::from).collect();
        (code, flags, err)
    };
    let has = |flags: &[String], f: &str| flags.iter().any(|x| x == f);

    // Without a user namespace nothing is locked: unasked flags go, the atime mode stays.
    let (code, f, err) = run("ro,noexec,nodiratime", "bind,dev", false);
    assert_eq!(code, 0, "{err}");
    assert!(
        has(&f, "rw") && !has(&f, "noexec") && has(&f, "nodiratime"),
        "{f:?}"
    );
    // No option at all: the source's flags unchanged.
    let (code, f, err) = run("ro,noexec", "bind", true);
    assert_eq!(code, 0, "{err}");
    assert!(has(&f, "ro") && has(&f, "noexec"), "{f:?}");
    // In a user namespace the locked flags stay beside the asked ones.
    let (code, f, err) = run("nodev,nosuid,noatime", "bind,ro,exec", true);
    assert_eq!(code, 0, "{err}");
    for want in ["ro", "nosuid", "nodev", "noatime"] {
        assert!(has(&f, want), "{want} missing: {f:?}");
    }
    assert!(!has(&f, "noexec"), "{f:?}");
    // Clearing a locked flag, or changing a locked atime mode, is refused.
    let (code, _, err) = run("ro", "bind,rw,nosuid", true);
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot clear locked flags ro") && err.contains("operation not permitted"),
        "{err}"
    );
    let (code, _, err) = run("noatime", "bind,relatime", true);
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot change locked atime flags noatime"),
        "{err}"
    );
    // Without a user namespace an atime option is taken as asked.
    let (code, f, err) = run("noatime", "bind,nodiratime", false);
    assert_eq!(code, 0, "{err}");
    assert!(
        has(&f, "relatime") && has(&f, "nodiratime") && !has(&f, "noatime"),
        "{f:?}"
    );
}

/// A bind mount whose destination is (or passes through) a dangling symlink is made where the
/// link points, inside the rootfs, as runc makes it.
pub fn bind_mounts_through_dangling_symlinks_land_inside() {
    let rt = Runtime::new();
    let host = TempDir::new("bindsrc");
    std::fs::write(host.path.join("file"), "from host\n").unwrap();
    let mut b = Bundle::new(&[]);
    let r = b.rootfs();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    let _ = std::fs::remove_file(r.join("etc/hosts"));
    std::os::unix::fs::symlink("/jump/baz/hosts", r.join("etc/hosts")).unwrap();
    std::os::unix::fs::symlink("/tmp/foo/bar", r.join("jump")).unwrap();
    std::os::unix::fs::symlink("/tmp/made", r.join("dirlink")).unwrap();
    b.script("cat /tmp/foo/bar/baz/hosts; cat /tmp/made/file");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/etc/hosts", "source": host.path.join("file"), "options": ["bind"]}),
    );
    mounts.push(json!({"destination": "/dirlink", "source": host.path, "options": ["bind"]}));
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from host\nfrom host\n");
    assert!(!Path::new("/tmp/foo/bar/baz/hosts").exists() && !Path::new("/tmp/made").exists());
}

/// `tmpcopyup`: the tmpfs starts with a copy of the directory it covers (modes, owners and
/// symlinks as they were), and writes stay in memory.
pub fn tmpcopyup_copies_the_covered_directory() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        crate::skip("runc 1.1.5 applies its umask to the copied modes (runc 1.2 keeps them)");
    }
    let mut b = Bundle::new(&[]);
    let d = b.rootfs().join("data");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/file"), "image\n").unwrap();
    std::os::unix::fs::chown(d.join("sub/file"), Some(100), Some(200)).unwrap();
    std::fs::set_permissions(d.join("sub"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink("sub/file", d.join("link")).unwrap();
    b.script(
        "stat -c '%A %n' /data/sub; stat -c '%u:%g' /data/sub/file; cat /data/link; \
         echo new > /data/sub/file; grep ' /data ' /proc/self/mounts | cut -d' ' -f3",
    );
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "drwxrwxrwx /data/sub\n100:200\nimage\ntmpfs\n");
    assert_eq!(
        std::fs::read_to_string(d.join("sub/file")).unwrap(),
        "image\n"
    );
}

/// Bind sources that only exist in the container's mount tree (a path inside the rootfs, under
/// an earlier mount) and, in a user namespace, sources the container's root may not search;
/// destinations that name the rootfs are taken inside it (runc's reading).
pub fn bind_sources_from_earlier_mounts_and_out_of_reach() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        crate::skip("runc 1.1.5 neither resolves sources in the container's mounts nor opens unreachable ones for a user namespace (runc 1.2 does)");
    }
    for userns in [false, true] {
        let mut b = Bundle::new(&[]);
        let hidden = TempDir::new("hidden");
        let src = hidden.path.join("a");
        std::fs::create_dir_all(src.join("x")).unwrap();
        std::fs::write(src.join("x/file"), "a/x\n").unwrap();
        std::fs::set_permissions(&hidden.path, std::fs::Permissions::from_mode(0o700)).unwrap();
        let rootfs = b.rootfs();
        for d in ["mnt", "final"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        let mounts = b.config["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind"]}),
        );
        mounts.push(json!({"destination": rootfs.join("final"), "type": "bind",
            "source": rootfs.join("mnt/x"), "options": ["rbind"]}));
        if userns {
            integration::add_user_namespace(&mut b.config);
        }
        b.script("cat /final/file");
        let (code, out, err) = run_bundle(&rt, &b);
        assert_eq!(code, 0, "userns {userns}: {err}");
        assert_eq!(out, "a/x\n", "userns {userns}");
        assert!(!rootfs.join(rootfs.strip_prefix("/").unwrap()).exists());
    }
}

/// A relative mount destination is taken from the container's / with a warning, as runc takes
/// it (runtime-spec asks for absolute ones).
pub fn relative_mount_destinations_are_taken_from_root() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    b.script("grep -c ' /data tmpfs ' /proc/self/mounts");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "data", "type": "tmpfs", "source": "tmpfs"}));
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\n");
    assert!(err.contains("not absolute"), "a warning says so: {err}");
}

/// `"path": ""` asks for a new namespace, as runc reads it.
pub fn an_empty_namespace_path_means_a_new_namespace() {
    let rt = Runtime::new();
    let out = run_script(&rt, "readlink /proc/self/ns/net", |c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!("");
            }
        }
    });
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(
        out.starts_with("net:[") && out.trim() != host.to_str().unwrap(),
        "{out}"
    );
}

/// In the host's pid namespace /proc may be a bind of the host's procfs (a whole procfs is a
/// procfs); anything else there stays refused.
pub fn proc_may_be_a_bind_of_a_whole_procfs() {
    let rt = Runtime::new();
    let edit = |c: &mut serde_json::Value, source: &str| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["type"] == "proc" {
                *m = json!({"destination": "/proc", "type": "none", "source": source,
                    "options": ["rbind", "nosuid", "nodev", "noexec"]});
            }
        }
    };
    let out = run_script(&rt, "cat /proc/1/comm >/dev/null && echo host-proc", |c| {
        edit(c, "/proc")
    });
    assert_eq!(out, "host-proc\n");
    if rt.is_hull() {
        let mut b = Bundle::new(&["true"]);
        edit(&mut b.config, "/tmp");
        let (code, _, err) = run_bundle(&rt, &b);
        assert_ne!(code, 0);
        assert!(err.contains("/proc"), "{err}");
    }
}

/// Without a mount namespace the container's mounts are made in the host's, under the rootfs
/// (runc's behaviour), and the root is a chroot; the host's own propagation stays as it was
/// (runc makes the host's / an rslave mount there, hull does not).
pub fn no_mount_namespace_mounts_under_the_rootfs_and_leaves_the_host_alone() {
    let rt = Runtime::new();
    let root_line = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .map(|l| {
                l.split(" - ")
                    .next()
                    .unwrap()
                    .split(' ')
                    .skip(6)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let before = root_line();
    let mut b = Bundle::new(&[]);
    b.script("cat /proc/self/comm; ls /");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh",
        "args": ["sh", "-c", format!("echo ran >> {}/hook-ran", b.path().display())]}]});
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("cat\n") && out.contains("bin"), "{out}");
    // runc 1.1.5 runs createRuntime hooks twice here (fixed in runc 1.2).
    if rt.is_hull() {
        assert_eq!(
            std::fs::read_to_string(b.path().join("hook-ran")).unwrap(),
            "ran\n"
        );
    }
    let on_host = integration::mounts_below(b.path());
    assert!(
        on_host.contains(&b.rootfs().join("proc")),
        "the container's /proc is a host mount under the rootfs: {on_host:?}"
    );
    if rt.is_hull() {
        assert_eq!(root_line(), before, "the host's / propagation changed");
    }
}
