//! `version`, `info`, `container prune` and `system prune`: what wharf is and runs on,
//! and removing what nothing uses.

use std::io::{BufRead, Write};
use std::path::Path;

use serde_json::{json, Value};
use wharf::container;
use wharf::context::Access;
use wharf::format::{bytes_size, human_size, Format};
use wharf::image::remove;
use wharf::operations::system;

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
pub struct ServiceArgs {
    /// Seconds without a connection before the service exits (0: never)
    #[arg(short, long, default_value_t = 5)]
    time: u64,
    /// Where to listen: unix:///PATH or tcp://ADDRESS:PORT
    #[arg(default_value = "unix:///run/wharf/wharf.sock")]
    uri: String,
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
    let rt_version = path.as_deref().map(system::runtime_version).ok();
    let data = json!({
        "Client": {
            "Platform": {"Name": "wharf"},
            "Version": env!("CARGO_PKG_VERSION"),
            "Os": std::env::consts::OS,
            "Arch": system::go_arch(),
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
        system::go_arch()
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

pub fn info(root: &Path, runtime: &str, a: InfoArgs) -> anyhow::Result<()> {
    let data = wharf::operations::system::info(root, runtime)?;
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
    let runtimes: Vec<&str> = data["Runtimes"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
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
    let p = wharf::operations::container::prune(root)?;
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

pub fn service(root: &Path, runtime: &str, a: ServiceArgs) -> anyhow::Result<()> {
    let listen = wharf::api::Listen::parse(&a.uri)?;
    if let wharf::api::Listen::Tcp(addr) = &listen {
        eprintln!(
            "WARNING: the API on tcp://{addr} has no authentication: anyone who reaches it controls this machine as root"
        );
    }
    wharf::api::serve(wharf::api::ServiceOptions {
        root: std::path::absolute(root)?,
        runtime: runtime.to_string(),
        listen,
        idle: (a.time > 0).then(|| std::time::Duration::from_secs(a.time)),
    })?;
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    until: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format the output using the given Go template
    #[arg(long)]
    format: Option<String>,
}

/// `events`: docker's line per event, or the template's.
pub fn events(root: &Path, a: EventsArgs) -> anyhow::Result<()> {
    let bound = |v: &Option<String>| -> anyhow::Result<Option<i64>> {
        Ok(v.as_deref()
            .map(wharf::operations::logs::parse_bound)
            .transpose()?)
    };
    let req = wharf::operations::events::EventsRequest {
        since: bound(&a.since)?,
        until: bound(&a.until)?,
        filters: a.filter.clone(),
    };
    let fmt = a.format.as_deref().map(Format::parse).transpose()?;
    let mut out = std::io::stdout().lock();
    wharf::operations::events::stream(
        root,
        &req,
        &mut |v| {
            let line = match &fmt {
                Some(f) => f.render(v).map_err(std::io::Error::other)?,
                None => event_line(v),
            };
            writeln!(out, "{line}")?;
            out.flush()
        },
        &|| true,
    )?;
    Ok(())
}

/// docker's default event line: time, type, action, actor and its attributes.
fn event_line(v: &Value) -> String {
    let nanos = v["timeNano"].as_i64().unwrap_or_default();
    let time = chrono::DateTime::from_timestamp_nanos(nanos)
        .with_timezone(&chrono::Local)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
    let attrs: Vec<String> = v["Actor"]["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{time} {} {} {} ({})",
        v["Type"].as_str().unwrap_or_default(),
        v["Action"].as_str().unwrap_or_default(),
        v["Actor"]["ID"].as_str().unwrap_or_default(),
        attrs.join(", ")
    )
}
