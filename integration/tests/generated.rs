//! Configs that real callers generate, run through hull and through the reference runtime
//! (runc, or `REFERENCE=`), comparing what the process sees: its capability sets, user and
//! groups, no_new_privs and seccomp mode, rlimits, mounts, cgroup placement, hostname, cwd,
//! umask and environment.
//!
//! The harness's own default config was written by hand, so it never met what `runc spec` or
//! an engine writes; Debian's `runc spec` (ambient capabilities with no inheritable set) failed
//! under hull while runc ran it. These configs come from `runc spec`, `crun spec` and
//! `hull spec` on this machine, and from podman, docker and containerd as captured in
//! `bundle-fixtures/generated/` (see its README for how). Each is made runnable here the same
//! way for both runtimes: our busybox rootfs, a probe script as the process, no hooks (they
//! call the engine's binaries), new namespaces instead of paths to the engine's, and files in
//! the bundle for bind sources that live in the engine's directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use integration::{hull_bin, make_rootfs, unique, TempDir};
use serde_json::{json, Value};

/// What the process reports about itself, one fact per line.
const PROBE: &str = r#"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|Uid|Gid|Groups|NoNewPrivs|Seccomp):' /proc/self/status
sed 's/  */ /g' /proc/self/limits | sed 's/^/limit: /'
while read -r src dst fstype opts rest; do echo "mount: $dst $fstype $opts"; done < /proc/self/mounts
sed 's/^/cgroup: /' /proc/self/cgroup
echo "oom_score_adj: $(cat /proc/self/oom_score_adj)"
echo "hostname: $(hostname)"
echo "cwd: $(pwd)"
echo "umask: $(umask)"
env | sort | sed 's/^/env: /'
"#;

/// A runtime and its private state root.
struct Side {
    name: String,
    bin: PathBuf,
    root: TempDir,
}

impl Side {
    fn new(name: &str, bin: PathBuf) -> Side {
        Side {
            name: name.to_string(),
            bin,
            root: TempDir::new(&format!("gen-root-{name}")),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root.path);
        c
    }

    /// Runs `config` in a fresh bundle; returns what the probe printed, or the failure.
    fn probe(&self, config: &Value) -> Result<String, String> {
        let bundle = TempDir::new("gen-bundle");
        let id = unique("gen");
        let _cgroups = CgroupParent(parent_of(&id));
        let config = runnable(config, &bundle.path, &id);
        std::fs::write(
            bundle.path.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let out = self
            .cmd()
            .args(["run", "--bundle"])
            .arg(&bundle.path)
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .expect("run the runtime");
        let _ = self.cmd().args(["delete", "--force", &id]).output();
        if !out.status.success() {
            return Err(format!(
                "{} exited {}: {}{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(normalise(&String::from_utf8_lossy(&out.stdout), &id))
    }
}

/// The cgroup parent that stands in for an engine's, one per container.
fn parent_of(id: &str) -> String {
    format!("{id}-parent")
}

/// Removes a cgroup parent made for one run, in every hierarchy, even when the test fails.
struct CgroupParent(String);

impl Drop for CgroupParent {
    fn drop(&mut self) {
        integration::remove_empty_cgroups(&self.0);
    }
}

/// The same config made runnable on this machine (see the module comment).
fn runnable(config: &Value, bundle: &Path, id: &str) -> Value {
    let mut c = config.clone();
    make_rootfs(&bundle.join("rootfs"));
    c["root"]["path"] = json!("rootfs");
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(["sh", "-c", PROBE]);
    if let Some(o) = c.as_object_mut() {
        o.remove("hooks");
    }
    if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
        for n in ns.iter_mut().filter_map(Value::as_object_mut) {
            n.remove("path");
        }
    }
    if c["linux"]["cgroupsPath"].is_string() {
        // The engine's shape (/docker/<id>, /libpod_parent/libpod-<id>, /default/<id>) under a
        // parent of this run's own, which the bundle's guard removes.
        c["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", parent_of(id)));
    }
    let mut n = 0;
    for m in c["mounts"].as_array_mut().into_iter().flatten() {
        let bind = m["type"] == "bind"
            || m["options"]
                .as_array()
                .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"));
        let source = m["source"].as_str().unwrap_or_default().to_string();
        if !bind || Path::new(&source).exists() {
            continue;
        }
        n += 1;
        let dest = m["destination"].as_str().unwrap_or_default();
        let stand_in = bundle.join(format!("bind-{n}"));
        if dest.starts_with("/etc/") || dest.ends_with("env") {
            std::fs::write(&stand_in, "stand-in for an engine's file\n").unwrap();
        } else {
            std::fs::create_dir_all(&stand_in).unwrap();
        }
        m["source"] = json!(stand_in);
    }
    c
}

/// The container's id and the runtime's default cgroup parent vary between runs and runtimes;
/// everything else is compared as printed.
fn normalise(out: &str, id: &str) -> String {
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("cgroup: ") {
                // hierarchy:controllers:path -> the path's last component when it is our id.
                let mut f = rest.splitn(3, ':');
                let (h, ctrl, path) = (f.next(), f.next(), f.next().unwrap_or(""));
                let path = match path.rsplit_once('/') {
                    Some((_, last)) if last == id => "<parent>/<id>".to_string(),
                    _ => path.replace(id, "<id>"),
                };
                format!("cgroup: {}:{}:{path}", h.unwrap_or(""), ctrl.unwrap_or(""))
            } else {
                l.replace(id, "<id>")
            }
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// The differences between two probe outputs, line by line.
fn diff(a: &str, b: &str) -> Vec<String> {
    let count = |s: &str| {
        let mut m: BTreeMap<String, i32> = BTreeMap::new();
        for l in s.lines() {
            *m.entry(l.to_string()).or_default() += 1;
        }
        m
    };
    let (ca, cb) = (count(a), count(b));
    let mut out = Vec::new();
    for (l, n) in &ca {
        if cb.get(l) != Some(n) {
            out.push(format!("- {l}"));
        }
    }
    for (l, n) in &cb {
        if ca.get(l) != Some(n) {
            out.push(format!("+ {l}"));
        }
    }
    out
}

/// `<runtime> spec` in a fresh directory, or None (with a printed skip) where it is missing.
fn spec_of(bin: &str) -> Option<Value> {
    let dir = TempDir::new("gen-spec");
    match Command::new(bin)
        .args(["spec", "--bundle"])
        .arg(&dir.path)
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("{bin} spec failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            integration::skip(&format!("{bin} spec not run: {e}"));
            return None;
        }
    }
    let text = std::fs::read_to_string(dir.path.join("config.json")).unwrap();
    Some(serde_json::from_str(&text).unwrap())
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bundle-fixtures/generated")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Runs `config` through hull and the reference; they must both run it and see the same.
fn same_as_reference(what: &str, config: &Value) {
    if std::env::var("REFERENCE").is_ok_and(|r| !r.is_empty()) {
        return integration::skip(&format!(
            "{what}: this suite compares hull with the reference; run it without REFERENCE"
        ));
    }
    let hull = Side::new("hull", hull_bin());
    let reference = Side::new("runc", PathBuf::from("runc"));
    let theirs = reference
        .probe(config)
        .unwrap_or_else(|e| panic!("{what}: the reference runtime failed: {e}"));
    let ours = hull
        .probe(config)
        .unwrap_or_else(|e| panic!("{what}: runc ran it, hull did not: {e}"));
    let d = diff(&theirs, &ours);
    assert!(
        d.is_empty(),
        "{what}: what the process sees differs (- runc, + hull):\n{}",
        d.join("\n")
    );
}

#[test]
fn runc_spec() {
    if let Some(c) = spec_of("runc") {
        same_as_reference("runc spec", &c);
    }
}

#[test]
fn crun_spec() {
    if let Some(c) = spec_of("crun") {
        same_as_reference("crun spec", &c);
    }
}

#[test]
fn hull_spec() {
    if let Some(c) = spec_of(hull_bin().to_str().unwrap()) {
        same_as_reference("hull spec", &c);
    }
}

#[test]
fn podman_config() {
    same_as_reference("podman 4.3", &fixture("podman.json"));
}

#[test]
fn podman_config_network_none() {
    same_as_reference(
        "podman 4.3 --network none",
        &fixture("podman-network-none.json"),
    );
}

#[test]
fn docker_config() {
    same_as_reference("docker 20.10", &fixture("docker.json"));
}

/// Syscalls newer than docker 19.03's default profile (kernel 5.3 and later).
const NEWER_THAN_DOCKER_19_03: &[&str] = &[
    "clone3",
    "close_range",
    "openat2",
    "pidfd_getfd",
    "faccessat2",
    "process_madvise",
    "epoll_pwait2",
    "mount_setattr",
    "quotactl_fd",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "memfd_secret",
    "process_mrelease",
    "futex_waitv",
    "set_mempolicy_home_node",
    "cachestat",
    "fchmodat2",
    "map_shadow_stack",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "statmount",
    "listmount",
    "mseal",
];

/// docker's profile as docker 19.03 wrote it: the allowlist without the syscalls kernels added
/// since (close_range among them), and a default errno other than EPERM. The runtime's last
/// steps under the filter (closing fds, the fifo, the exec) must still get through, and the
/// newer calls must fail as on an older kernel, as with runc.
#[test]
fn docker_config_with_its_19_03_era_profile() {
    let mut config = fixture("docker.json");
    let seccomp = &mut config["linux"]["seccomp"];
    seccomp["defaultErrnoRet"] = serde_json::json!(libc::ENXIO);
    for rule in seccomp["syscalls"].as_array_mut().unwrap() {
        rule["names"]
            .as_array_mut()
            .unwrap()
            .retain(|n| !NEWER_THAN_DOCKER_19_03.contains(&n.as_str().unwrap_or("")));
    }
    same_as_reference("docker 20.10 with a 19.03-era profile", &config);
}

#[test]
fn containerd_config() {
    same_as_reference("containerd 1.6 (ctr run)", &fixture("containerd.json"));
}

#[test]
fn normalising_keeps_facts_and_hides_ids() {
    let out = "cgroup: 3:memory:/gen-1\ncgroup: 2:pids:/docker/gen-1\nhostname: gen-1\n";
    assert_eq!(
        normalise(out, "gen-1"),
        "cgroup: 2:pids:<parent>/<id>\ncgroup: 3:memory:<parent>/<id>\nhostname: <id>"
    );
    assert_eq!(diff("a\nb", "b\nc"), ["- a", "+ c"]);
}

/// Random combinations of the five capability sets (and root or not), each run by runc and by
/// hull: both must refuse it, or both run it and the process sees the same Cap* lines (and
/// everything else the probe prints). A fixed seed, so a failure names a reproducible case.
#[test]
fn capability_set_combinations_match_runc() {
    if std::env::var("REFERENCE").is_ok_and(|r| !r.is_empty()) {
        return integration::skip("compares hull with the reference; run it without REFERENCE");
    }
    let Some(base) = spec_of("runc") else { return };
    const POOL: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
        "CAP_SYS_ADMIN",
        "CAP_AUDIT_WRITE",
        "CAP_SETFCAP",
    ];
    // xorshift64*: enough to spread the cases, and the same cases on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let hull = Side::new("hull", hull_bin());
    let runc = Side::new("runc", PathBuf::from("runc"));
    let (mut ran, mut refused) = (0, 0);
    for case in 0..24 {
        let mut config = base.clone();
        // Mostly what callers write (effective within permitted, bounding around them), and
        // sometimes not, so that both outcomes are covered.
        let permitted = next();
        let bounding = permitted | next();
        let mostly_within = |bits: u64, within: u64, roll: u64| {
            if roll.is_multiple_of(6) {
                bits
            } else {
                bits & within
            }
        };
        let effective = mostly_within(next(), permitted, next());
        let inheritable = mostly_within(next(), bounding, next());
        let ambient = next() & (inheritable | next());
        let mut sets = serde_json::Map::new();
        for (set, bits) in [
            ("bounding", bounding),
            ("effective", effective),
            ("permitted", permitted),
            ("inheritable", inheritable),
            ("ambient", ambient),
        ] {
            let caps: Vec<&str> = POOL
                .iter()
                .enumerate()
                .filter(|(i, _)| bits >> i & 1 == 1)
                .map(|(_, c)| *c)
                .collect();
            sets.insert(set.into(), json!(caps));
        }
        let uid = if next().is_multiple_of(3) { 1000 } else { 0 };
        config["process"]["capabilities"] = Value::Object(sets.clone());
        config["process"]["user"] = json!({"uid": uid, "gid": uid});
        let what = format!("case {case}: uid {uid}, {}", Value::Object(sets));
        match (runc.probe(&config), hull.probe(&config)) {
            (Ok(theirs), Ok(ours)) => {
                let d = diff(&theirs, &ours);
                assert!(
                    d.is_empty(),
                    "{what}: differs (- runc, + hull):\n{}",
                    d.join("\n")
                );
                ran += 1;
            }
            (Err(_), Err(_)) => refused += 1,
            (Ok(_), Err(e)) => panic!("{what}: runc ran it, hull did not: {e}"),
            (Err(e), Ok(_)) => panic!("{what}: hull ran what runc refused: {e}"),
        }
    }
    eprintln!("capability combinations: {ran} ran alike, {refused} refused by both");
    assert!(
        ran >= 6 && refused >= 1,
        "the cases must cover both outcomes"
    );
}
