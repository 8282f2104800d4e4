//! `network create|ls|inspect|rm|prune|connect|disconnect` and `port`: docker's flags and
//! output over the library's network operations.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use wharf::container::lookup;
use wharf::context::Access;
use wharf::format::{go_time, Format};
use wharf::network::{ports, CreateOptions, JoinOptions};
use wharf::operations::network as opnet;
use wharf::operations::ErrorKind;

use super::{daemon_error, Exit};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NamesArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    subnet: Option<String>,
    /// IPv4 Gateway for the master subnet
    #[arg(long)]
    gateway: Option<String>,
    /// Allocate container ip from a sub-range
    #[arg(long)]
    ip_range: Option<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable manual container attachment (every wharf network is)
    #[arg(long)]
    attachable: bool,
    /// Set metadata on a network
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long)]
    opt: Vec<String>,
    name: String,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Pretty-print networks using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true, value_name = "NETWORK")]
    networks: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "NETWORK")]
    networks: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    ip: Option<String>,
    network: String,
    container: String,
}

#[derive(clap::Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

#[derive(clap::Args, Debug)]
pub struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    private_port: Option<String>,
}

pub fn run(root: &Path, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(a) => create(root, a),
        Command::Ls(a) => ls(root, a),
        Command::Inspect(a) => inspect(root, a),
        Command::Rm(a) => rm(root, a),
        Command::Prune(a) => prune(root, a),
        Command::Connect(a) => connect(root, a),
        Command::Disconnect(a) => disconnect(root, a),
    }
}

fn create(root: &Path, a: CreateArgs) -> anyhow::Result<()> {
    let n = opnet::create(
        root,
        CreateOptions {
            name: a.name,
            driver: a.driver,
            subnet: a.subnet,
            gateway: a.gateway,
            ip_range: a.ip_range,
            internal: a.internal,
            labels: super::key_values(&a.label),
            options: super::key_values(&a.opt),
        },
    )
    .map_err(daemon_error)?;
    println!("{}", n.id);
    Ok(())
}

fn ls(root: &Path, a: LsArgs) -> anyhow::Result<()> {
    let list = opnet::list(root, &a.filter).map_err(daemon_error)?;
    let id = |n: &wharf::store::NetworkRow| {
        if a.no_trunc {
            n.id.clone()
        } else {
            n.id[..12].to_string()
        }
    };
    let mut out = std::io::stdout().lock();
    if a.quiet && a.format.is_none() {
        for n in &list {
            writeln!(out, "{}", id(n))?;
        }
        return Ok(());
    }
    let fmt = Format::parse(
        a.format
            .as_deref()
            .unwrap_or("table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"),
    )?;
    let header = json!({
        "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
    });
    let rows: Vec<Value> = list
        .iter()
        .map(|n| {
            let labels: BTreeMap<String, String> =
                serde_json::from_str(&n.labels).unwrap_or_default();
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            json!({
                "ID": id(n), "Name": n.name, "Driver": n.driver, "Scope": "local",
                "IPv6": "false", "Internal": n.internal.to_string(),
                "Labels": labels.join(","), "CreatedAt": go_time(Some(&n.created)),
            })
        })
        .collect();
    fmt.write_rows(&mut out, &header, &rows)?;
    Ok(())
}

fn inspect(root: &Path, a: InspectArgs) -> anyhow::Result<()> {
    let template = a.format.as_deref().map(Format::parse).transpose()?;
    let mut found: Vec<Value> = Vec::new();
    let mut failed = false;
    for name in &a.networks {
        match opnet::inspect(root, name) {
            Ok(v) => found.push(v),
            Err(e) => {
                failed = true;
                eprintln!("Error: No such network: {name}");
                if e.kind() != ErrorKind::NotFound {
                    eprintln!("Error response from daemon: {e}");
                }
            }
        }
    }
    super::print_inspected(&found, template.as_ref())?;
    if failed {
        Err(Exit(1).into())
    } else {
        Ok(())
    }
}

fn rm(root: &Path, a: NamesArgs) -> anyhow::Result<()> {
    super::for_each_name(&a.networks, |name| {
        opnet::remove(root, name)?;
        Ok(Some(name.to_string()))
    })
}

fn prune(root: &Path, a: PruneArgs) -> anyhow::Result<()> {
    let warning =
        "WARNING! This will remove all custom networks not used by at least one container.";
    if !a.force && !super::system::confirm(warning)? {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    prune_networks(root, &mut out)
}

/// Removes unused networks and what killed wharfs left, listing the networks.
pub fn prune_networks(root: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let names = opnet::prune(root).map_err(daemon_error)?;
    if !names.is_empty() {
        writeln!(out, "Deleted Networks:")?;
        for n in &names {
            writeln!(out, "{n}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn connect(root: &Path, a: ConnectArgs) -> anyhow::Result<()> {
    let o = JoinOptions {
        ip: a.ip,
        aliases: a.alias,
        mac: None,
    };
    opnet::connect(root, &a.network, &a.container, &o).map_err(daemon_error)
}

fn disconnect(root: &Path, a: DisconnectArgs) -> anyhow::Result<()> {
    opnet::disconnect(root, &a.network, &a.container, a.force).map_err(daemon_error)
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`.
pub fn port(root: &Path, a: PortArgs) -> anyhow::Result<()> {
    let ctx = super::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, &a.container).map_err(daemon_error)?;
    let published = if c.is_running() {
        c.state.ports.clone()
    } else {
        ports::PortMap::new()
    };
    let mut out = std::io::stdout().lock();
    match a.private_port {
        Some(p) => {
            let key = if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            };
            match published.get(&key).filter(|b| !b.is_empty()) {
                Some(bs) => {
                    for b in bs {
                        writeln!(out, "{}:{}", b.host_ip, b.host_port)?;
                    }
                }
                None => {
                    eprintln!(
                        "Error: No public port '{key}' published for {}",
                        a.container
                    );
                    return Err(Exit(1).into());
                }
            }
        }
        None => {
            let mut keys: Vec<&String> = published.keys().collect();
            keys.sort_by_key(|k| ports::sort_key(k));
            for k in keys {
                for b in &published[k] {
                    writeln!(out, "{k} -> {}:{}", b.host_ip, b.host_port)?;
                }
            }
        }
    }
    Ok(())
}
