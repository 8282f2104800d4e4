//! `run` and `create`: docker's container options, the image pulled when missing, then
//! (for run) the monitor started and the container's streams relayed until it exits.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nix::sys::signal::Signal;
use wharf::attach;
use wharf::bundle::seccomp;
use wharf::container::create::Options;
use wharf::container::health::HealthConfig;
use wharf::container::{self, ops, parse, HostConfig, RestartPolicy};
use wharf::context::Access;
use wharf::image::reference::ImageRef;
use wharf::operations::container as op;
use wharf::operations::{image, OperationError};
use wharf::tty::detach;

use super::Exit;

#[derive(clap::Args, Debug)]
pub struct CreateFlags {
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Security Options (seccomp=unconfined|PROFILE.json, no-new-privileges)
    #[arg(long, value_name = "list")]
    security_opt: Vec<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    rm: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "list")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, value_name = "list")]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Container host name
    #[arg(long, short = 'h')]
    hostname: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    restart: String,
    #[command(flatten)]
    resources: super::resources::ResourceFlags,
    /// Add Linux capabilities
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// PID namespace to use
    #[arg(long, value_parser = ["host"])]
    pid: Option<String>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net", default_value = "default")]
    network: String,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    ip: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long)]
    mac_address: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    expose: Vec<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    link: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    add_host: Vec<String>,
    /// Bind mount a volume
    #[arg(short, long = "volume", value_name = "list")]
    volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    volumes_from: Vec<String>,
    /// Set meta data on a container
    #[arg(short, long = "label", value_name = "list")]
    label: Vec<String>,
    /// Signal to stop the container
    #[arg(long)]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    stop_timeout: Option<i64>,
    /// Command to run to check health
    #[arg(long, value_name = "string")]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", value_parser = go_duration_flag, allow_hyphen_values = true)]
    health_interval: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", value_parser = go_duration_flag, allow_hyphen_values = true)]
    health_timeout: Option<i64>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", value_parser = go_duration_flag, allow_hyphen_values = true)]
    health_start_period: Option<i64>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", value_parser = go_duration_flag, allow_hyphen_values = true)]
    health_start_interval: Option<i64>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    no_healthcheck: bool,
    /// The image to run
    image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (`-h` is docker's --hostname)
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = detach::DEFAULT)]
    detach_keys: String,
    #[command(flatten)]
    flags: CreateFlags,
}

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help (`-h` is docker's --hostname)
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    flags: CreateFlags,
}

/// A Go duration flag value, in nanoseconds, with the error pflag prints.
fn go_duration_flag(v: &str) -> Result<i64, String> {
    wharf::container::logs::go_duration(v).ok_or_else(|| format!("time: invalid duration {v:?}"))
}

/// docker CLI's healthcheck from the `--health-*` flags: None when none is given.
fn healthcheck(f: &CreateFlags) -> anyhow::Result<Option<HealthConfig>> {
    let durations = [
        ("--health-interval", f.health_interval),
        ("--health-timeout", f.health_timeout),
        ("--health-start-period", f.health_start_period),
        ("--health-start-interval", f.health_start_interval),
    ];
    let given = f.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
        || durations.iter().any(|(_, d)| d.unwrap_or(0) != 0)
        || f.health_retries.unwrap_or(0) != 0;
    if f.no_healthcheck {
        if given {
            anyhow::bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if !given {
        return Ok(None);
    }
    for (flag, d) in durations {
        if d.unwrap_or(0) < 0 {
            anyhow::bail!("{flag} cannot be negative");
        }
    }
    if f.health_retries.unwrap_or(0) < 0 {
        anyhow::bail!("--health-retries cannot be negative");
    }
    Ok(Some(HealthConfig {
        test: match f.health_cmd.as_deref() {
            Some(c) if !c.is_empty() => vec!["CMD-SHELL".into(), c.into()],
            _ => Vec::new(),
        },
        interval: f.health_interval.unwrap_or(0),
        timeout: f.health_timeout.unwrap_or(0),
        start_period: f.health_start_period.unwrap_or(0),
        start_interval: f.health_start_interval.unwrap_or(0),
        retries: f.health_retries.unwrap_or(0),
    }))
}

/// Prints a failure the way docker's CLI does for daemon errors and exits 125.
pub fn fail(e: impl std::fmt::Display) -> anyhow::Error {
    eprintln!("wharf: Error response from daemon: {e}");
    Exit(125).into()
}

fn options(f: &CreateFlags, runtime: &str, attach: bool) -> anyhow::Result<Options> {
    let mut env = Vec::new();
    for file in &f.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("open {}: no such file or directory", file.display()))?;
        env.extend(parse::env_file(&text));
    }
    env.extend(f.env.iter().filter_map(|e| parse::env_entry(e)));
    let mut mounts = Vec::new();
    for v in &f.volume {
        mounts.push(parse::volume(v)?);
    }
    for m in &f.mount {
        mounts.push(parse::mount(m)?);
    }
    for t in &f.tmpfs {
        mounts.push(parse::tmpfs(t)?);
    }
    for v in &f.volumes_from {
        parse::volumes_from(v)?;
    }
    let restart_policy = parse::restart_policy(&f.restart)?;
    let network = f.network.clone();
    let mut port_bindings = wharf::network::ports::PortMap::new();
    for p in &f.publish {
        wharf::network::ports::parse_publish(p, &mut port_bindings)?;
    }
    let mut expose = Vec::new();
    for e in &f.expose {
        expose.extend(wharf::network::ports::parse_expose(e)?);
    }
    if network == "host" && (!port_bindings.is_empty() || f.publish_all) {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
        port_bindings.clear();
    }
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let mut security_opt = Vec::new();
    for o in &f.security_opt {
        security_opt.push(seccomp::parse_security_opt(o)?);
    }
    let limits = f.resources.update()?;
    let opts = Options {
        name: f.name.clone(),
        image: f.image.clone(),
        command: f.command.clone(),
        entrypoint: f.entrypoint.as_ref().map(|e| match e.as_str() {
            "" => Vec::new(),
            e => vec![e.to_string()],
        }),
        env,
        workdir: f.workdir.clone(),
        user: f.user.clone(),
        hostname: f.hostname.clone(),
        interactive: f.interactive,
        tty: f.tty,
        attach,
        labels: f.label.clone(),
        stop_signal: f.stop_signal.clone(),
        stop_timeout: f.stop_timeout,
        host: HostConfig {
            network_mode: network,
            port_bindings,
            publish_all_ports: f.publish_all,
            links: list(&f.link),
            dns: list(&f.dns),
            dns_search: list(&f.dns_search),
            dns_options: list(&f.dns_option),
            extra_hosts: list(&f.add_host),
            restart_policy: RestartPolicy { ..restart_policy },
            auto_remove: f.rm,
            cap_add: (!f.cap_add.is_empty()).then(|| f.cap_add.clone()),
            cap_drop: (!f.cap_drop.is_empty()).then(|| f.cap_drop.clone()),
            pid_mode: f.pid.clone().unwrap_or_default(),
            privileged: f.privileged,
            readonly_rootfs: f.read_only,
            runtime: runtime.to_string(),
            memory: limits.memory.unwrap_or(0),
            memory_reservation: limits.memory_reservation.unwrap_or(0),
            memory_swap: limits.memory_swap.unwrap_or(0),
            nano_cpus: limits.nano_cpus.unwrap_or(0),
            cpu_shares: limits.cpu_shares.unwrap_or(0),
            cpu_period: limits.cpu_period.unwrap_or(0),
            cpu_quota: limits.cpu_quota.unwrap_or(0),
            cpuset_cpus: limits.cpuset_cpus.unwrap_or_default(),
            cpuset_mems: limits.cpuset_mems.unwrap_or_default(),
            pids_limit: limits.pids_limit,
            blkio_weight: limits.blkio_weight.unwrap_or(0),
            init: f.init.then_some(true),
            security_opt: (!security_opt.is_empty()).then_some(security_opt),
            volumes_from: (!f.volumes_from.is_empty()).then(|| f.volumes_from.clone()),
            ..Default::default()
        },
        mounts,
        runtime_path: wharf::runtime::resolve(runtime)?,
        join: wharf::network::JoinOptions {
            ip: f.ip.clone(),
            aliases: f.network_alias.clone(),
            mac: f.mac_address.clone(),
        },
        expose,
        healthcheck: healthcheck(f)?,
    };
    Ok(opts)
}

/// Creates the container, pulling a missing image first with docker's status lines on
/// stderr (the container's output stays alone on stdout).
fn create_container(
    root: &Path,
    runtime: &str,
    f: &CreateFlags,
    attach: bool,
) -> anyhow::Result<container::Container> {
    let opts = options(f, runtime, attach).map_err(fail)?;
    let mut notice = |r: &ImageRef| {
        eprintln!("Unable to find image '{}' locally", r.familiar());
        eprintln!("{}: Pulling from {}", image::tag_or_digest(r), r.path);
    };
    let missing = op::Missing::Pull {
        notice: &mut notice,
        progress: &wharf::image::registry::Quiet,
    };
    let (c, pulled) = op::create(root, opts, missing).map_err(fail)?;
    if let Some(p) = pulled {
        eprintln!("Digest: {}", p.digest);
        eprintln!(
            "Status: Downloaded newer image for {}",
            p.reference.familiar()
        );
    }
    Ok(c)
}

pub fn create(root: &Path, runtime: &str, a: CreateArgs) -> anyhow::Result<()> {
    let c = create_container(root, runtime, &a.flags, false)?;
    println!("{}", c.id);
    Ok(())
}

/// docker's client refuses `-it` when its stdin is no terminal, before anything is made.
pub fn require_tty_stdin(tty: bool, interactive: bool) -> anyhow::Result<()> {
    if tty && interactive && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("the input device is not a TTY");
        return Err(Exit(1).into());
    }
    Ok(())
}

pub fn run(root: &Path, runtime: &str, a: RunArgs) -> anyhow::Result<()> {
    let keys = detach::parse(&a.detach_keys).map_err(fail)?;
    if !a.detach {
        require_tty_stdin(a.flags.tty, a.flags.interactive)?;
    }
    let c = create_container(root, runtime, &a.flags, !a.detach)?;
    if a.detach {
        op::start(root, &c, false, None).map_err(start_failure)?;
        println!("{}", c.id);
        return Ok(());
    }
    attach_session(root, &c, a.flags.interactive, keys)
}

/// A start that failed: docker's 125/126/127 when the runtime could not start the process.
fn start_failure(e: OperationError) -> anyhow::Error {
    match e {
        OperationError::Runtime { code, msg }
        | OperationError::Ops(ops::OpsError::Start { code, msg }) => {
            eprintln!("wharf: Error response from daemon: {msg}");
            Exit(code).into()
        }
        e => fail(e),
    }
}

/// Starts the monitor with an attach socket for us and relays the container's output
/// (and, with a terminal, our input, window size and detach keys) until it exits, then
/// exits with its status. Without a terminal our stdin goes to the monitor itself (`-i`),
/// and SIGINT/SIGTERM are passed on to the container (`proxy_signal`).
pub fn attach_session(
    root: &Path,
    c: &container::Container,
    stdin: bool,
    detach_keys: Vec<u8>,
) -> anyhow::Result<()> {
    let tty = c.spec.config.tty;
    let (mine, theirs) = attach::pair()?;
    let Some(started) = op::start(root, c, stdin && !tty, Some(theirs)).map_err(start_failure)?
    else {
        anyhow::bail!("container {} is already running", c.id);
    };
    let opts = attach::ClientOptions {
        stdin: stdin && tty,
        tty,
        detach_keys,
    };
    let mut proxy = |sig| proxy_signal(root, &c.id, sig);
    let proxy: Option<&mut dyn FnMut(_) -> _> = (!tty).then_some(&mut proxy);
    if attach::run_client(&attach::Remote::Monitor(mine), &opts, proxy)?
        == attach::Outcome::Detached
    {
        return Ok(());
    }
    exit_with(started.wait(root).map_err(start_failure)?)
}

/// A signal for an attached container without a terminal (docker's sig-proxy).
pub fn proxy_signal(root: &Path, id: &str, sig: Signal) -> std::io::Result<()> {
    let mut ctx = super::open(root, Access::Shared).map_err(std::io::Error::other)?;
    if let Some(cur) = container::load(&ctx.db, id).map_err(std::io::Error::other)? {
        ops::proxy_signal(root, &mut ctx.db, &cur, sig).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// Success for 0, the process's status as ours otherwise.
pub fn exit_with(code: i32) -> anyhow::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Exit(code).into())
    }
}
