//! `version`, `info`, `container prune` and `system prune`: what wharf is and runs on,
//! and removing what nothing uses.

use std::io::{BufRead, Write};
use std::path::Path;

use serde_json::{json, Value};
use wharf::container::{self, prune, Status};
use wharf::context::Access;
use wharf::format::{bytes_size, human_size, Format};
use wharf::image::remove;

#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ContainerPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
}

/// The runtime's own `--version` first line, or why there is none.
fn runtime_version(path: &Path) -> String {
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

fn render(format: &Option<String>, data: &Value) -> anyhow::Result<bool> {
    if let Some(f) = format {
        let out = if f == "json" {
            wharf::format::go_json(data)
        } else {
            Format::parse(f)?.render(data)?
        };
        println!("{out}");
        return Ok(true);
    }
    Ok(false)
}

pub fn version(runtime: &str, a: VersionArgs) -> anyhow::Result<()> {
    let path = wharf::runtime::resolve(runtime);
    let rt_version = path.as_deref().map(runtime_version).ok();
    let data = json!({
        "Client": {
            "Platform": {"Name": "wharf"},
            "Version": env!("CARGO_PKG_VERSION"),
            "Os": std::env::consts::OS,
            "Arch": go_arch(),
        },
        "Server": {
            "Runtime": runtime,
            "RuntimePath": path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            "RuntimeVersion": rt_version.clone().unwrap_or_default(),
        },
    });
    if render(&a.format, &data)? {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "Client: wharf")?;
    writeln!(out, " Version:           {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(
        out,
        " OS/Arch:           {}/{}",
        std::env::consts::OS,
        go_arch()
    )?;
    writeln!(out)?;
    writeln!(out, "Server: none (daemonless)")?;
    writeln!(out, " Runtime:")?;
    writeln!(out, "  Name:             {runtime}")?;
    match &path {
        Ok(p) => {
            writeln!(out, "  Path:             {}", p.display())?;
            writeln!(
                out,
                "  Version:          {}",
                rt_version.unwrap_or_default()
            )?;
        }
        Err(e) => writeln!(out, "  Error:            {e}")?,
    }
    Ok(())
}

/// Go's GOARCH name for this machine.
fn go_arch() -> &'static str {
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

pub fn info(root: &Path, runtime: &str, a: InfoArgs) -> anyhow::Result<()> {
    let ctx = super::open(root, Access::Shared)?;
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
    let runtimes: Vec<&str> = ["hull", "runc", "crun"]
        .into_iter()
        .filter(|r| wharf::runtime::resolve(r).is_ok())
        .collect();
    let cgroup_version = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    let uname = nix::sys::utsname::uname()?;
    let data = json!({
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": containers.len() - running - paused,
        "Images": images,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Driver": "overlay2",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "Runtimes": runtimes,
        "DefaultRuntime": runtime,
        "KernelVersion": uname.release().to_string_lossy(),
        "OperatingSystem": os_name(),
        "OSType": "linux",
        "Architecture": uname.machine().to_string_lossy(),
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": container::stats::host_memory(),
        "Name": uname.nodename().to_string_lossy(),
        "DockerRootDir": root.display().to_string(),
    });
    if render(&a.format, &data)? {
        return Ok(());
    }
    let s = |k: &str| match &data[k] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "Server:")?;
    writeln!(out, " Containers: {}", s("Containers"))?;
    writeln!(out, "  Running: {}", s("ContainersRunning"))?;
    writeln!(out, "  Paused: {}", s("ContainersPaused"))?;
    writeln!(out, "  Stopped: {}", s("ContainersStopped"))?;
    writeln!(out, " Images: {}", s("Images"))?;
    writeln!(out, " Server Version: {}", s("ServerVersion"))?;
    writeln!(out, " Storage Driver: {}", s("Driver"))?;
    writeln!(out, " Cgroup Driver: {}", s("CgroupDriver"))?;
    writeln!(out, " Cgroup Version: {}", s("CgroupVersion"))?;
    writeln!(out, " Runtimes: {}", runtimes.join(" "))?;
    writeln!(out, " Default Runtime: {}", s("DefaultRuntime"))?;
    writeln!(out, " Kernel Version: {}", s("KernelVersion"))?;
    writeln!(out, " Operating System: {}", s("OperatingSystem"))?;
    writeln!(out, " OSType: {}", s("OSType"))?;
    writeln!(out, " Architecture: {}", s("Architecture"))?;
    writeln!(out, " CPUs: {}", s("NCPU"))?;
    writeln!(
        out,
        " Total Memory: {}",
        bytes_size(container::stats::host_memory())
    )?;
    writeln!(out, " Name: {}", s("Name"))?;
    writeln!(out, " Docker Root Dir: {}", s("DockerRootDir"))?;
    Ok(())
}

/// Asks docker's question on stdout; true when the answer is yes.
pub fn confirm(warning: &str) -> anyhow::Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn prune_containers(root: &Path, out: &mut impl Write) -> anyhow::Result<u64> {
    // Exclusive: no create is half done, so a directory without a record is a leftover.
    let mut ctx = super::open(root, Access::Exclusive)?;
    let p = prune::prune(root, &mut ctx.db)?;
    prune::orphans(&ctx)?;
    if !p.ids.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &p.ids {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    Ok(p.reclaimed)
}

pub fn container_prune(root: &Path, a: ContainerPruneArgs) -> anyhow::Result<()> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let reclaimed = prune_containers(root, &mut out)?;
    writeln!(out, "Total reclaimed space: {}", human_size(reclaimed))?;
    Ok(())
}

pub fn system_prune(root: &Path, a: SystemPruneArgs) -> anyhow::Result<()> {
    let images = if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    let volumes = if a.volumes {
        "  - all anonymous volumes not used by at least one container\n"
    } else {
        ""
    };
    let warning =
        format!("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n{volumes}  - {images}\n  - all build cache\n");
    if !a.force && !confirm(&warning)? {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let mut reclaimed = prune_containers(root, &mut out)?;
    super::network::prune_networks(root, &mut out)?;
    if a.volumes {
        reclaimed += super::volume::prune_volumes(root, false, &[], &mut out)?;
    }
    let mut ctx = super::open(root, Access::Exclusive)?;
    let cache = remove::prune_build_cache(&mut ctx)?;
    reclaimed += cache.reclaimed;
    let r = remove::prune(&mut ctx, a.all)?;
    super::rmi::write_pruned(&mut out, &r)?;
    reclaimed += r.reclaimed;
    writeln!(out, "Total reclaimed space: {}", human_size(reclaimed))?;
    Ok(())
}
