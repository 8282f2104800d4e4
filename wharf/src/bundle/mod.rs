//! A container's OCI bundle: `config.json` made from its recorded spec with docker's
//! defaults, plus the /etc/hosts, /etc/hostname and /etc/resolv.conf files wharf writes
//! and bind-mounts. The rootfs is the container's overlay (see `container::rootfs`).

pub mod defaults;
pub mod seccomp;
pub mod user;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::container::{rootfs::Layout, Container};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn write(path: &Path, data: &[u8]) -> Result<(), BundleError> {
    fs::write(path, data).map_err(|source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `NET_ADMIN` and `cap_net_admin` both mean `CAP_NET_ADMIN`.
pub fn normalize_cap(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") || up == "ALL" {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// docker's capability arithmetic: defaults (or all with --privileged), plus adds, minus
/// drops; `ALL` on either side means every capability.
pub fn capabilities(c: &Container) -> Vec<String> {
    let h = &c.spec.host;
    let adds: Vec<String> = h
        .cap_add
        .iter()
        .flatten()
        .map(|s| normalize_cap(s))
        .collect();
    let drops: Vec<String> = h
        .cap_drop
        .iter()
        .flatten()
        .map(|s| normalize_cap(s))
        .collect();
    if h.privileged || adds.iter().any(|a| a == "ALL") {
        // "All" is what we have ourselves, as in docker: a capability outside our own
        // bounding set cannot be given and would make the runtime fail.
        let bounding = own_bounding_set();
        return defaults::ALL_CAPABILITIES
            .iter()
            .enumerate()
            .filter(|(i, _)| bounding & (1u64 << i) != 0)
            .map(|(_, s)| s.to_string())
            .filter(|s| h.privileged || !drops.contains(s))
            .collect();
    }
    let mut caps: Vec<String> = if drops.iter().any(|d| d == "ALL") {
        vec![]
    } else {
        defaults::CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .filter(|s| !drops.contains(s))
            .collect()
    };
    for a in adds {
        if !caps.contains(&a) {
            caps.push(a);
        }
    }
    caps
}

/// This process's capability bounding set (CapBnd in /proc/self/status); every bit when
/// it cannot be read.
fn own_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The network side of a container with a namespace of its own: the namespace to join
/// and the texts of its /etc/hosts and /etc/resolv.conf.
pub struct Networking {
    pub netns: PathBuf,
    pub hosts: String,
    pub resolv: String,
    /// docker's link variables (`network::link_env`).
    pub link_env: Vec<String>,
}

/// Writes the bundle of `c` into its container directory; returns the bundle path.
/// `init` is the host path of the init to bind-mount when the container asked for one;
/// `net` is None for host networking.
pub fn write_bundle(
    cdir: &Path,
    c: &Container,
    init: Option<&Path>,
    net: Option<&Networking>,
) -> Result<PathBuf, BundleError> {
    let hostname = c.spec.config.hostname.clone();
    let (hosts, resolv) = match net {
        Some(n) => (n.hosts.clone().into_bytes(), n.resolv.clone().into_bytes()),
        None => (
            fs::read("/etc/hosts").unwrap_or_else(|_| defaults::HOSTS.as_bytes().to_vec()),
            fs::read("/etc/resolv.conf").unwrap_or_default(),
        ),
    };
    write(&cdir.join("hosts"), &hosts)?;
    write(&cdir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    write(&cdir.join("resolv.conf"), &resolv)?;
    let config = config_json(
        cdir,
        c,
        init,
        net.map(|n| n.netns.as_path()),
        net.map(|n| n.link_env.as_slice()).unwrap_or_default(),
    );
    let bundle = cdir.join("bundle");
    fs::create_dir_all(&bundle).map_err(|source| BundleError::Io {
        path: bundle.clone(),
        source,
    })?;
    write(
        &bundle.join("config.json"),
        serde_json::to_vec_pretty(&config)
            .unwrap_or_default()
            .as_slice(),
    )?;
    Ok(bundle)
}

fn config_json(
    cdir: &Path,
    c: &Container,
    init: Option<&Path>,
    netns: Option<&Path>,
    links: &[String],
) -> Value {
    let s = &c.spec;
    let h = &s.host;
    let caps = capabilities(c);
    let mut args = Vec::new();
    if init.is_some() {
        args.extend([crate::init::CONTAINER_PATH.to_string(), "--".to_string()]);
    }
    args.push(s.path.clone());
    args.extend(s.args.iter().cloned());
    let security_opt = h.security_opt.clone().unwrap_or_default();
    let mut namespaces = vec![
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if h.pid_mode != "host" {
        namespaces.push(json!({"type": "pid"}));
    }
    if let Some(path) = netns {
        namespaces.push(json!({"type": "network", "path": path}));
    }
    let mut mounts = defaults::base_mounts()
        .as_array()
        .cloned()
        .unwrap_or_default();
    if h.privileged {
        // Privileged containers see sysfs and cgroups writable, as in docker.
        for m in &mut mounts {
            let writable = matches!(m_dest(m), "/sys" | "/sys/fs/cgroup");
            if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                if writable {
                    opts.retain(|o| o != "ro");
                }
            }
        }
    }
    for (file, dest) in [
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
    ] {
        mounts.push(json!({"destination": dest, "type": "bind",
            "source": cdir.join(file), "options": ["rbind", "rprivate"]}));
    }
    if let Some(init) = init {
        mounts.push(
            json!({"destination": crate::init::CONTAINER_PATH, "type": "bind",
            "source": init, "options": ["rbind", "ro", "rprivate"]}),
        );
    }
    for m in &s.mounts {
        let mut opts: Vec<String> = Vec::new();
        if m.kind == "tmpfs" {
            opts.extend(["nosuid", "nodev", "noexec"].map(String::from));
            opts.extend(
                m.mode
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(String::from),
            );
            mounts.push(json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": opts}));
        } else {
            opts.push("rbind".into());
            opts.push(if m.rw { "rw" } else { "ro" }.into());
            opts.push(if m.propagation.is_empty() {
                "rprivate".into()
            } else {
                m.propagation.clone()
            });
            mounts.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": opts}));
        }
    }
    let mut resources = json!({"devices": if h.privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        defaults::device_rules()
    }});
    if let (Some(to), Value::Object(from)) = (resources.as_object_mut(), limits(h)) {
        to.extend(from);
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": format!("/wharf/{}", c.id),
    });
    if h.privileged {
        linux["devices"] = json!(host_devices());
    }
    if !h.privileged {
        linux["maskedPaths"] = json!(defaults::MASKED_PATHS);
        linux["readonlyPaths"] = json!(defaults::READONLY_PATHS);
    }
    if let Some(profile) = seccomp::profile(h.privileged, &security_opt, &caps) {
        linux["seccomp"] = profile;
    }
    let mut process = json!({
        "terminal": s.config.tty,
        "user": {"uid": s.uid, "gid": s.gid},
        "args": args,
        "env": process_env(c, s.config.tty, links, &[]),
        "cwd": if s.config.working_dir.is_empty() { "/" } else { s.config.working_dir.as_str() },
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": seccomp::recorded(&security_opt, "no-new-privileges") == Some("true"),
        "oomScoreAdj": 0,
    });
    if !s.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(s.additional_gids);
    }
    json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": Layout::new(cdir).merged, "readonly": h.readonly_rootfs},
        "hostname": s.config.hostname,
        "mounts": mounts,
        "linux": linux,
    })
}

/// docker's resource flags as OCI LinuxResources (device rules aside): what the bundle
/// asks for at start, and what `update` takes its values from.
pub fn limits(h: &crate::container::HostConfig) -> Value {
    let mut out = serde_json::Map::new();
    let mut memory = serde_json::Map::new();
    if h.memory > 0 {
        memory.insert("limit".into(), json!(h.memory));
        memory.insert("swap".into(), json!(h.swap()));
    }
    if h.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(h.memory_reservation));
    }
    if !memory.is_empty() {
        out.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = serde_json::Map::new();
    if h.nano_cpus > 0 {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(h.nano_cpus / 10_000));
    } else {
        if h.cpu_period > 0 {
            cpu.insert("period".into(), json!(h.cpu_period));
        }
        if h.cpu_quota != 0 {
            cpu.insert("quota".into(), json!(h.cpu_quota));
        }
    }
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(h.cpuset_cpus));
    }
    if !h.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(h.cpuset_mems));
    }
    if !cpu.is_empty() {
        out.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
        out.insert("pids".into(), json!({"limit": p}));
    }
    if h.blkio_weight > 0 {
        out.insert("blockIO".into(), json!({"weight": h.blkio_weight}));
    }
    Value::Object(out)
}

/// Every device node under the host's /dev, for `--privileged` as docker gives them:
/// not the pseudo-terminal, shared-memory and message-queue trees, nor /dev/console and
/// /dev/ptmx, which the runtime provides.
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let skip_dirs = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    walkdir::WalkDir::new("/dev")
        .into_iter()
        .filter_entry(|e| {
            !(e.depth() == 1
                && e.file_type().is_dir()
                && skip_dirs.contains(&&*e.file_name().to_string_lossy()))
        })
        .filter_map(Result::ok)
        .filter(|e| !matches!(&*e.file_name().to_string_lossy(), "console" | "ptmx"))
        .filter_map(|e| {
            let kind = match e.file_type() {
                t if t.is_char_device() => "c",
                t if t.is_block_device() => "b",
                _ => return None,
            };
            let m = e.metadata().ok()?;
            Some(json!({
                "path": e.path(),
                "type": kind,
                "major": nix::sys::stat::major(m.rdev()),
                "minor": nix::sys::stat::minor(m.rdev()),
                "fileMode": m.mode() & 0o7777,
                "uid": m.uid(),
                "gid": m.gid(),
            }))
        })
        .collect()
}

/// A process's environment as docker builds it: PATH, HOSTNAME and (with a terminal)
/// TERM=xterm, then the container's Config.Env, then `extra` (an exec's `-e`), each
/// replacing an earlier entry of the same name.
/// `links` are the link variables (`network::link_env`), which the container's own
/// environment overrides, as in docker; `extra` overrides everything (an exec's `-e`).
pub fn process_env(c: &Container, tty: bool, links: &[String], extra: &[String]) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("HOSTNAME={}", c.spec.config.hostname),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    for e in links.iter().chain(&c.spec.config.env).chain(extra) {
        crate::container::parse::set_env(&mut env, e);
    }
    env
}

/// What an `exec` changes of its container's process.
pub struct ExecProcess<'a> {
    pub args: &'a [String],
    /// The whole environment (`process_env`).
    pub env: Vec<String>,
    pub cwd: &'a str,
    pub user: &'a user::Resolved,
    pub terminal: bool,
}

/// The container's own process (its user, environment and directory) running other
/// arguments, without a terminal: what a healthcheck probe runs, as docker runs it.
pub fn process_with_args(bundle: &Path, args: &[String]) -> Result<Value, BundleError> {
    let path = bundle.join("config.json");
    let text = fs::read(&path).map_err(|source| BundleError::Io {
        path: path.clone(),
        source,
    })?;
    let config: Value = serde_json::from_slice(&text).map_err(|err| BundleError::Io {
        path: path.clone(),
        source: io::Error::new(io::ErrorKind::InvalidData, err),
    })?;
    let mut process = config.get("process").cloned().unwrap_or_else(|| json!({}));
    process["args"] = json!(args);
    process["terminal"] = json!(false);
    if let Some(p) = process.as_object_mut() {
        p.remove("consoleSize");
    }
    Ok(process)
}

/// The process of an `exec`: the container's own from its bundle (capabilities,
/// no_new_privs, rlimits, seccomp-relevant settings), with the exec's command, user,
/// environment, directory and terminal, as docker derives an exec from its container.
/// Handed to the runtime whole with `exec --process`, the one form every runc-compatible
/// runtime reads (crun has no `--additional-gids`, for one).
pub fn exec_process(bundle: &Path, e: &ExecProcess) -> Result<Value, BundleError> {
    let mut process = process_with_args(bundle, e.args)?;
    process["env"] = json!(e.env);
    process["cwd"] = json!(if e.cwd.is_empty() { "/" } else { e.cwd });
    process["terminal"] = json!(e.terminal);
    let mut user = json!({"uid": e.user.uid, "gid": e.user.gid});
    if !e.user.additional_gids.is_empty() {
        user["additionalGids"] = json!(e.user.additional_gids);
    }
    process["user"] = user;
    Ok(process)
}

fn m_dest(m: &Value) -> &str {
    m.get("destination").and_then(Value::as_str).unwrap_or("")
}
