//! What wharf is and runs on: `info` and the server side of `version`, as docker's
//! daemon reports them.

use std::path::Path;

use serde_json::{json, Value};

use super::OperationError;
use crate::container::{self, Status};
use crate::context::{Access, Context};

/// The runtime's own `--version` first line, or "unknown".
pub fn runtime_version(path: &Path) -> String {
    std::process::Command::new(path)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Go's GOARCH name for this machine.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn cgroup_version() -> &'static str {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// docker's `SystemInfo`, with the fields wharf has.
pub fn info(root: &Path, runtime: &str) -> Result<Value, OperationError> {
    let ctx = Context::open(root, Access::Shared)?;
    let containers = container::all(&ctx.db)?;
    let count = |want: &[Status]| {
        containers
            .iter()
            .filter(|c| want.contains(&c.effective_status()))
            .count()
    };
    let running = count(&[Status::Running, Status::Restarting]);
    let paused = count(&[Status::Paused]);
    let images = ctx.db.images()?.len();
    let runtimes: serde_json::Map<String, Value> = ["hull", "runc", "crun"]
        .into_iter()
        .filter_map(|r| {
            let path = crate::runtime::resolve(r).ok()?;
            Some((r.to_string(), json!({"path": path.display().to_string()})))
        })
        .collect();
    let uname = nix::sys::utsname::uname()?;
    let mut v = json!({
        "ID": "",
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": containers.len() - running - paused,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["json-file"]},
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    });
    let rest = json!({
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": uname.release().to_string_lossy(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": uname.machine().to_string_lossy(),
        "IndexServerAddress": "",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": container::stats::host_memory(),
        "DockerRootDir": root.display().to_string(),
        "Name": uname.nodename().to_string_lossy(),
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": runtimes,
        "DefaultRuntime": runtime,
        "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": false, "NodeID": "", "NodeAddr": ""},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=default"],
        "Warnings": [],
    });
    if let (Some(v), Value::Object(rest)) = (v.as_object_mut(), rest) {
        v.extend(rest);
    }
    Ok(v)
}

/// The server part of docker's `SystemVersion`, for API version `api`.
pub fn version(runtime: &str, api: &str, min_api: &str) -> Value {
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let rt = crate::runtime::resolve(runtime)
        .map(|p| runtime_version(&p))
        .unwrap_or_else(|e| e.to_string());
    json!({
        "Platform": {"Name": "wharf"},
        "Components": [
            {"Name": "Engine", "Version": env!("CARGO_PKG_VERSION"),
             "Details": {"ApiVersion": api, "MinAPIVersion": min_api, "Os": "linux", "Arch": go_arch(), "KernelVersion": kernel}},
            {"Name": runtime, "Version": rt, "Details": {}},
        ],
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api,
        "MinAPIVersion": min_api,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

/// An image as `system df` counts it.
pub struct ImageUsage {
    pub row: crate::store::ImageRow,
    /// Bytes of its layers that other images use too.
    pub shared_size: u64,
    /// Containers made from it, in any state.
    pub containers: usize,
}

/// An image only the build cache keeps (untagged): docker's build cache records.
pub struct CacheUsage {
    pub id: crate::image::digest::Digest,
    /// Bytes of its layers that no image, and no record before it, counts.
    pub size: u64,
    pub created: Option<String>,
    pub last_used: String,
    /// Cache entries that name it.
    pub usage_count: usize,
    /// A container was made from it.
    pub in_use: bool,
}

/// What `system df` and `GET /system/df` report, computed from the store and the files:
/// every layer counted once, by chain id.
pub struct DiskUsage {
    /// Bytes of the layers of the images in `images`.
    pub images_size: u64,
    /// Bytes of those layers that no image with a container uses.
    pub images_reclaimable: u64,
    pub images: Vec<ImageUsage>,
    /// Each container and the size of its writable layer.
    pub containers: Vec<(crate::container::Container, u64)>,
    /// Each volume, the size of its data and how many containers use it.
    pub volumes: Vec<(crate::volume::Volume, u64, usize)>,
    pub build_cache: Vec<CacheUsage>,
}

pub fn disk_usage(root: &Path) -> Result<DiskUsage, OperationError> {
    use std::collections::{HashMap, HashSet};
    let ctx = Context::open(root, Access::Shared)?;
    let rows = ctx.db.images()?;
    let containers = container::all(&ctx.db)?;
    let mut users: HashMap<String, usize> = HashMap::new();
    for c in &containers {
        *users.entry(c.image_id.clone()).or_default() += 1;
    }
    let cache: HashMap<String, (usize, String)> = ctx
        .db
        .build_cache_usage()?
        .into_iter()
        .map(|(id, n, last)| (id, (n, last)))
        .collect();
    let mut layers_of = Vec::new();
    let mut size_of: HashMap<String, u64> = HashMap::new();
    let mut holders: HashMap<String, usize> = HashMap::new();
    for img in &rows {
        let chain: Vec<String> = ctx
            .db
            .layers(&img.id)?
            .into_iter()
            .map(|l| {
                size_of.insert(l.chain_id.to_string(), l.size);
                l.chain_id.to_string()
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for l in &chain {
            *holders.entry(l.clone()).or_default() += 1;
        }
        layers_of.push(chain);
    }
    let bytes = |ls: &mut dyn Iterator<Item = &String>| -> u64 {
        ls.map(|l| size_of.get(l).copied().unwrap_or(0)).sum()
    };
    let cache_only =
        |img: &crate::store::ImageRow| img.tags.is_empty() && cache.contains_key(img.id.as_str());
    let (mut image_layers, mut used_layers) = (HashSet::new(), HashSet::new());
    for (img, chain) in rows.iter().zip(&layers_of) {
        if !cache_only(img) {
            image_layers.extend(chain.iter().cloned());
            if users.contains_key(img.id.as_str()) {
                used_layers.extend(chain.iter().cloned());
            }
        }
    }
    // A cache record's size is the bytes no image and no earlier record counts, so that
    // the images' and the records' sizes add up to every layer once.
    let mut counted = image_layers.clone();
    let mut images = Vec::new();
    let mut build_cache = Vec::new();
    for (img, chain) in rows.into_iter().zip(&layers_of) {
        let n = users.get(img.id.as_str()).copied().unwrap_or(0);
        let shared_size = bytes(&mut chain.iter().filter(|l| holders[*l] > 1));
        if cache_only(&img) {
            let (count, last) = &cache[img.id.as_str()];
            let own: Vec<&String> = chain.iter().filter(|l| !counted.contains(*l)).collect();
            let size = bytes(&mut own.iter().copied());
            counted.extend(own.into_iter().cloned());
            build_cache.push(CacheUsage {
                id: img.id.clone(),
                size,
                created: img.created.clone(),
                last_used: last.clone(),
                usage_count: *count,
                in_use: n > 0,
            });
        } else {
            images.push(ImageUsage {
                row: img,
                shared_size,
                containers: n,
            });
        }
    }
    let images_size = bytes(&mut image_layers.iter());
    let images_reclaimable = bytes(&mut image_layers.difference(&used_layers));
    let containers = containers
        .into_iter()
        .map(|c| {
            let upper = container::rootfs::Layout::new(&container::dir(root, &c.id)).upper;
            let size = container::prune::dir_size(&upper);
            (c, size)
        })
        .collect();
    drop(ctx);
    let volumes = super::volume::list(root, &[])?
        .into_iter()
        .map(|l| {
            let size = container::prune::dir_size(&l.volume.mountpoint);
            (l.volume, size, l.users)
        })
        .collect();
    Ok(DiskUsage {
        images_size,
        images_reclaimable,
        images,
        containers,
        volumes,
        build_cache,
    })
}
