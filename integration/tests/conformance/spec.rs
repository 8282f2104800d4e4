//! Cases for runtime-spec requirements the other modules do not reach: state fields and
//! annotations, kill and delete semantics, hook failure rules, masked paths, rlimit failure,
//! no_new_privs, cgroup paths and limits, and a seccomp rule.

use integration::{run_bundle, run_script, Bundle, Container, Runtime};
use serde_json::json;

pub fn state_fields_and_annotations() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "30"]);
    b.config["annotations"] = json!({"org.example.key": "value", "n": "1"});
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let s = rt.state(&c.id);
    assert_eq!(
        s["annotations"],
        json!({"org.example.key": "value", "n": "1"})
    );
    assert!(
        s["ociVersion"].as_str().is_some_and(|v| v.starts_with('1')),
        "{s}"
    );
    assert!(s["pid"].as_i64().is_some_and(|p| p > 0), "{s}");
}

pub fn kill_of_created_stops_it_and_kill_of_stopped_fails() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "30"]);
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    rt.ok(&["kill", &c.id, "KILL"]);
    rt.wait_status(&c.id, "stopped");
    let out = rt.run(&["kill", &c.id, "TERM"]);
    assert!(!out.status.success(), "kill of a stopped container");
}

pub fn start_container_hook_failure_fails_start() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "echo ran > /ran"]);
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let out = rt.run(&["start", &c.id]);
    if rt.is_hull() {
        assert!(
            !out.status.success(),
            "start must report the startContainer failure"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        !b.rootfs().join("ran").exists(),
        "the process ran after its hook failed"
    );
}

/// As runc (and the engines that rely on it), not as runtime-spec's "warn and run on": a failed
/// poststart hook fails `run` and `start`, and the container is stopped.
pub fn poststart_failure_fails_and_stops_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    let (code, _, err) = run_bundle(&rt, &b);
    assert_ne!(code, 0, "run succeeded with a failing poststart hook");
    let words = if rt.is_hull() {
        "error running poststart hook #0"
    } else {
        "hook #0"
    };
    assert!(err.contains(words), "{err}");
    assert!(
        std::fs::read_dir(&rt.root.path)
            .unwrap()
            .flatten()
            .all(|e| !e.path().is_dir() || hull::is_spare_state_dir(&e.path())),
        "run left the container behind"
    );
    if !rt.is_hull() {
        crate::skip("runc 1.1.5 runs poststart hooks at create; runc 1.5 at start, as hull");
    }
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
    let out = rt.run(&["start", &c.id]);
    assert!(
        !out.status.success(),
        "start succeeded with a failing poststart hook"
    );
    assert_eq!(rt.wait_status(&c.id, "stopped")["status"], "stopped");
}

pub fn masked_paths_hide_files_and_directories() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "wc -c < /proc/keys; ls /sys/firmware | wc -l; ls -d /sys/kernel",
        |c| {
            c["linux"]["maskedPaths"] = json!(["/proc/keys", "/sys/firmware", "/no/such/path"]);
        },
    );
    assert_eq!(out, "0\n0\n/sys/kernel\n");
}

pub fn readonly_paths_refuse_writes() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo rw || echo ro; touch /tmp/ok && echo tmp-rw",
        |c| c["linux"]["readonlyPaths"] = json!(["/proc/sys"]),
    );
    assert_eq!(out, "ro\ntmp-rw\n");
}

pub fn rlimit_soft_above_hard_fails_the_create() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 100, "soft": 200}]);
    let (code, _, err) = run_bundle(&rt, &b);
    assert_ne!(code, 0, "a soft limit above the hard one");
    if rt.is_hull() {
        assert!(
            err.contains("rlimits[0]") && err.contains("hard limit"),
            "{err}"
        );
    }
}

pub fn no_new_privileges_is_set_only_when_asked() {
    let rt = Runtime::new();
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let out = run_script(&rt, "grep NoNewPrivs /proc/self/status", |c| {
            c["process"]["noNewPrivileges"] = json!(nnp)
        });
        assert_eq!(out.split_whitespace().nth(1), Some(want), "{out}");
    }
}

pub fn oom_score_adj_is_applied() {
    let rt = Runtime::new();
    let out = run_script(&rt, "cat /proc/self/oom_score_adj", |c| {
        c["process"]["oomScoreAdj"] = json!(123)
    });
    assert_eq!(out, "123\n");
}

/// The container's cgroup path in the memory hierarchy, seen from the host.
fn memory_cgroup_of(rt: &Runtime, id: &str) -> String {
    let pid = rt.state(id)["pid"].as_i64().unwrap();
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            (ctrls.split(',').any(|c| c == "memory") || ctrls.is_empty()).then(|| path.to_string())
        })
        .unwrap()
}

pub fn cgroups_path_absolute_and_relative() {
    let rt = Runtime::new();
    for (path, absolute) in [
        (format!("/{}", integration::unique("conf-abs")), true),
        (integration::unique("conf-rel"), false),
    ] {
        let mut b = Bundle::new(&["sleep", "30"]);
        b.config["linux"]["cgroupsPath"] = json!(path);
        b.save();
        let c = Container::new(&rt);
        rt.ok(&["create", "--bundle", b.path_str(), &c.id]);
        let got = memory_cgroup_of(&rt, &c.id);
        if absolute {
            assert_eq!(got, path);
        } else {
            assert!(got.ends_with(&format!("/{path}")), "{got} for {path}");
        }
        rt.ok(&["delete", "--force", &c.id]);
        let gone = integration::cgroup_dirs(&got)
            .into_iter()
            .all(|d| !d.exists());
        integration::remove_empty_cgroups(&got);
        assert!(gone, "delete removes the cgroup {got}");
    }
}

pub fn cgroup_limits_hold_inside() {
    let rt = Runtime::new();
    let out = run_script(
        &rt,
        "sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait' 2>&1 | grep -c -i 'fork\\|resource' ; true",
        |c| c["linux"]["resources"] = json!({"pids": {"limit": 4}}),
    );
    assert_ne!(out.trim(), "0", "forks beyond pids.limit must fail: {out}");
}

pub fn seccomp_errno_rule_applies() {
    let rt = Runtime::new();
    let out = run_script(&rt, "mkdir /tmp/d 2>&1; echo rc=$?", |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        })
    });
    assert!(
        out.contains("Operation not permitted") && out.contains("rc=1"),
        "{out}"
    );
}

pub fn process_args_and_env_reach_the_process() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "echo \"$0|$1|$A\"", "zero", "one two"]);
    b.config["process"]["env"] = json!(["PATH=/bin", "A=b=c"]);
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "zero|one two|b=c\n");
}

/// A path listed twice is masked once, and masked directories share one read-only tmpfs.
pub fn masked_paths_are_deduplicated_and_directories_share_a_tmpfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&[]);
    for d in ["m1", "m2"] {
        std::fs::create_dir(b.rootfs().join(d)).unwrap();
    }
    b.script(
        "grep -c ' /m1 ' /proc/self/mounts; set -- $(stat -c %d /m1 /m2); \
         [ \"$1\" = \"$2\" ] && echo shared; touch /m2/x 2>/dev/null || echo read-only",
    );
    b.config["linux"]["maskedPaths"] = json!(["/m1", "/m2", "/m1"]);
    let (code, out, err) = run_bundle(&rt, &b);
    assert_eq!(code, 0, "{err}");
    if !rt.is_hull() && out.starts_with("2\n") {
        crate::skip(
            "runc 1.1.5 masks a path listed twice twice, each directory with its own tmpfs",
        );
    }
    assert_eq!(out, "1\nshared\nread-only\n");
}

/// startContainer hooks run in the container after its seccomp filter is on (runc's order), so
/// a hook that makes a killed syscall fails the run with the hook's fate in the error.
pub fn start_container_hooks_run_under_the_seccomp_profile() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]
    });
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]);
    b.config["hooks"] =
        json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/d"]}]});
    let (code, _, err) = run_bundle(&rt, &b);
    assert_ne!(code, 0, "{err}");
    // runc 1.1.5 names no hook kind ("error running hook #0").
    let kind = if rt.is_hull() {
        "startContainer hook"
    } else {
        "hook"
    };
    assert!(
        err.contains(&format!("error running {kind}")) && err.contains("bad system call"),
        "{err}"
    );
}

/// The filter flags as runc reports them in its debug log: TSYNC means nothing to a
/// single-threaded init and is left out; no list at all means SPEC_ALLOW.
pub fn seccomp_flags_are_reported_as_runc_does() {
    let rt = Runtime::new();
    if !rt.is_hull() {
        crate::skip("runc 1.1.5 does not log the seccomp filter flags");
    }
    for (flags, want) in [
        (
            json!(["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"]),
            "2",
        ),
        (json!([]), "0"),
        (serde_json::Value::Null, "4"),
    ] {
        let mut b = Bundle::new(&["sh", "-c", "mkdir /tmp/d"]);
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        });
        if !flags.is_null() {
            b.config["linux"]["seccomp"]["flags"] = flags.clone();
        }
        b.save();
        let c = Container::new(&rt);
        let out = rt.run(&["--debug", "run", "--bundle", b.path_str(), &c.id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags}: mkdir must fail");
        assert!(
            err.contains(&format!("seccomp filter flags: {want}\"")),
            "{flags}: {err}"
        );
    }
}

/// The container's process leads a session of its own even without a terminal, as runc's
/// does: the caller's terminal does not signal it, and CRIU can dump it (a session leader
/// outside its pid namespace cannot be).
pub fn the_process_leads_its_own_session() {
    let rt = Runtime::new();
    let out = run_script(&rt, "read -r pid comm state ppid pgrp sid rest < /proc/self/stat; [ $pid = $sid ] && echo leader", |_| {});
    assert_eq!(out, "leader\n");
}

/// stdio that is the host's /dev/null (an engine's, such as conmon's) is the container's own
/// /dev/null inside, as runc reopens it: no fd of the process keeps a file of the host's /dev.
pub fn stdio_on_the_hosts_dev_null_is_the_containers_own() {
    let rt = Runtime::new();
    // Detached, the runtime hands the process its own stdin: the harness's /dev/null.
    let mut b = Bundle::new(&[]);
    b.script(
        "[ \"$(stat -L -c %d:%i /proc/self/fd/0)\" = \"$(stat -c %d:%i /dev/null)\" ] \
         && echo own > /result || echo host > /result",
    );
    b.save();
    let c = Container::new(&rt);
    rt.ok(&["run", "-d", "--bundle", b.path_str(), &c.id]);
    rt.wait_status(&c.id, "stopped");
    let got = std::fs::read_to_string(b.rootfs().join("result")).unwrap_or_default();
    assert_eq!(got, "own\n");
}
