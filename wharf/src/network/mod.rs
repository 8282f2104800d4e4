//! Networks, without a daemon: docker's `bridge`, `host` and `none` plus user-defined
//! bridge networks, recorded in the store with their endpoints (a container's address,
//! MAC and aliases, handed out at create and kept until rm). At start the container's
//! monitor builds its sandbox (a network namespace at a stable path, a veth into each
//! network's bridge, routes, the published ports' host sockets and DNAT rules, the name
//! files) and takes it down when the container stops; every piece is named after the
//! container, so `rm`, the next start and `system prune` find and remove what a killed
//! wharf or monitor left.

pub mod dns;
pub mod hosts;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod nft;
pub mod ports;

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::container::{self, Container};
use crate::store::{Db, EndpointRow, NetworkRow, StoreError};
use link::Netlink;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network {0} is ambiguous ({1} matches found based on ID prefix)")]
    Ambiguous(String, usize),
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse { name: String, id: String },
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("operation is not permitted on predefined {0} network ")]
    PredefinedConnect(String),
    #[error("plugin \"{0}\" not found")]
    Driver(String),
    #[error("invalid subnet {0}: it must be an IPv4 network in CIDR notation")]
    Subnet(String),
    #[error("invalid gateway {0}: it must be an address inside the subnet {1}")]
    Gateway(String, String),
    #[error("invalid ip-range {0}: it must be a network in CIDR notation inside the subnet {1}")]
    Range(String, String),
    #[error("Pool overlaps with other one on this address space")]
    Overlap,
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoPool,
    #[error("network {network}: its subnet {subnet} overlaps {route}, which the host routes elsewhere (another data root's network or a host interface); remove one of them")]
    Rerouted {
        network: String,
        subnet: String,
        route: String,
    },
    #[error("no available IPv4 addresses on this network's address pools: {0}")]
    Exhausted(String),
    #[error("Address already in use")]
    AddressInUse,
    #[error("Invalid address {0}: It does not belong to any of this network's subnets")]
    OutsideSubnet(String),
    #[error("invalid IPv4 address: {0}")]
    Address(String),
    #[error("user specified IP address is supported on user defined networks only")]
    IpOnDefault,
    #[error("invalid MAC address: {0}")]
    Mac(String),
    #[error("network-scoped alias is supported only for containers in user defined networks")]
    AliasOnDefault,
    #[error("container sharing network namespace with another container or host cannot be connected to any other network")]
    NotConnectable,
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("Cannot link to a non running container: {0}")]
    LinkNotRunning(String),
    #[error(transparent)]
    Port(#[from] ports::PortError),
    #[error(transparent)]
    Filter(#[from] NetworkFilterError),
    #[error(transparent)]
    Nft(#[from] nft::NftError),
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("network mode {0} is not supported: wharf runs containers on bridge networks, the host's network or none")]
    Mode(String),
}

fn kernel(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let what = what.into();
    move |source| NetworkError::Kernel { what, source }
}

/// The network every container joins unless told otherwise.
pub const DEFAULT: &str = "bridge";
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// Options of `network create`.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub name: String,
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// A bridge network's addresses, parsed from its record.
pub struct Addressing {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub range: Ipv4Net,
}

pub fn addressing(n: &NetworkRow) -> Option<Addressing> {
    Some(Addressing {
        subnet: n.subnet.parse().ok()?,
        gateway: n.gateway.parse().ok()?,
        range: if n.ip_range.is_empty() {
            n.subnet.parse().ok()?
        } else {
            n.ip_range.parse().ok()?
        },
    })
}

/// Whether containers on `n` find each other by name (docker: user-defined networks).
pub fn user_defined(n: &NetworkRow) -> bool {
    !PREDEFINED.contains(&n.name.as_str())
}

/// Serialises the choice of subnets and bridge names across every wharf on the host
/// (two data roots must not pick the same subnet) and the first setup of a bridge.
fn host_lock() -> Result<nix::fcntl::Flock<std::fs::File>, NetworkError> {
    let dir = Path::new("/run/wharf");
    std::fs::create_dir_all(dir).map_err(kernel("creating /run/wharf"))?;
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("network.lock"))
        .map_err(kernel("opening /run/wharf/network.lock"))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
        NetworkError::Kernel {
            what: "locking /run/wharf/network.lock".into(),
            source: e.into(),
        }
    })
}

/// Subnets nobody may take: what the host routes or owns, and every network's.
fn taken_subnets(db: &Db) -> Result<Vec<Ipv4Net>, NetworkError> {
    let mut taken = Netlink::open()
        .and_then(|mut nl| nl.ipv4_destinations())
        .map_err(kernel("listing the host's routes"))?;
    // Host routes of single addresses (local table) and the default route tell nothing
    // about subnets in use, except as the networks that hold them.
    taken.retain(|n| n.prefix_len() < 32 || !n.addr().is_loopback());
    for n in db.networks()? {
        if let Some(a) = addressing(&n) {
            taken.push(a.subnet);
        }
    }
    Ok(taken)
}

fn random_id() -> Result<String, NetworkError> {
    container::random_id().map_err(kernel("reading /dev/urandom"))
}

/// Records `bridge`, `host` and `none` the first time they are needed; `bridge` gets
/// 172.17.0.0/16 when the host does not use it, else the first free pool. Its device and
/// address are made at once, under the host lock, like docker0 at dockerd's start: the
/// route is what another data root's choice of a subnet sees. Its rules wait for the
/// first container to join it (`bring_up`), so a host without nft can still run
/// containers without a network.
pub fn ensure_predefined(db: &mut Db, root: &Path) -> Result<(), NetworkError> {
    let have: Vec<String> = db.networks()?.into_iter().map(|n| n.name).collect();
    if PREDEFINED.iter().all(|p| have.iter().any(|h| h == p)) {
        return Ok(());
    }
    let _lock = host_lock()?;
    for name in PREDEFINED {
        if have.iter().any(|h| h == name) {
            continue;
        }
        let mut row = NetworkRow {
            id: random_id()?,
            name: name.to_string(),
            driver: match name {
                "none" => "null".into(),
                d => d.to_string(),
            },
            bridge: None,
            subnet: String::new(),
            gateway: String::new(),
            ip_range: String::new(),
            internal: false,
            labels: "{}".into(),
            options: "{}".into(),
            created: container::now(),
        };
        if name == DEFAULT {
            let subnet = ipam::choose_subnet(&taken_subnets(db)?).ok_or(NetworkError::NoPool)?;
            row.subnet = subnet.to_string();
            row.gateway = ipam::default_gateway(&subnet).to_string();
            row.bridge = Some(default_bridge_name(root));
            row.options = json!({"com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.name": row.bridge})
            .to_string();
        }
        match db.add_network(&row) {
            Ok(()) => {}
            Err(StoreError::NetworkExists(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        if row.bridge.is_some() {
            // Without its device the record would hide the subnet from other roots'
            // choices again: the next call records it anew.
            let made = Netlink::open()
                .map_err(kernel("opening a netlink socket"))
                .and_then(|mut nl| make_bridge(&mut nl, &row));
            if let Err(e) = made {
                db.remove_network(&row.id)?;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The default network's bridge: `wharf0` for the default data root, a name derived
/// from the path for any other, so that data roots never share a bridge.
fn default_bridge_name(root: &Path) -> String {
    let path = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if path == Path::new("/var/lib/wharf") {
        return "wharf0".into();
    }
    let sum = Sha256::digest(path.as_os_str().as_encoded_bytes());
    format!("wharf-{}", &hex::encode(sum)[..8])
}

/// `network create`: validates, picks a subnet (or checks the given one against the
/// host and the other networks), records the network and makes its bridge.
pub fn create(db: &mut Db, root: &Path, o: CreateOptions) -> Result<NetworkRow, NetworkError> {
    ensure_predefined(db, root)?;
    let driver = if o.driver.is_empty() {
        "bridge"
    } else {
        &o.driver
    };
    if driver != "bridge" {
        return Err(NetworkError::Driver(driver.to_string()));
    }
    if db.networks()?.iter().any(|n| n.name == o.name) {
        return Err(StoreError::NetworkExists(o.name.clone()).into());
    }
    let _lock = host_lock()?;
    let taken = taken_subnets(db)?;
    let subnet: Ipv4Net = match &o.subnet {
        Some(s) => {
            let net: Ipv4Net = s.parse().map_err(|_| NetworkError::Subnet(s.clone()))?;
            if net != net.trunc() {
                return Err(NetworkError::Subnet(s.clone()));
            }
            if ipam::conflict(&net, &taken).is_some() {
                return Err(NetworkError::Overlap);
            }
            net
        }
        None => ipam::choose_subnet(&taken).ok_or(NetworkError::NoPool)?,
    };
    let gateway = match &o.gateway {
        Some(g) => {
            let ip: Ipv4Addr = g
                .parse()
                .map_err(|_| NetworkError::Gateway(g.clone(), subnet.to_string()))?;
            if !subnet.contains(&ip) || ip == subnet.network() || ip == subnet.broadcast() {
                return Err(NetworkError::Gateway(g.clone(), subnet.to_string()));
            }
            ip
        }
        None => ipam::default_gateway(&subnet),
    };
    if let Some(r) = &o.ip_range {
        let range: Ipv4Net = r
            .parse()
            .map_err(|_| NetworkError::Range(r.clone(), subnet.to_string()))?;
        if !subnet.contains(&range) {
            return Err(NetworkError::Range(r.clone(), subnet.to_string()));
        }
    }
    let id = random_id()?;
    let bridge = match o.options.get("com.docker.network.bridge.name") {
        Some(b) if b.is_empty() || b.len() > 15 || b.contains('/') => {
            return Err(NetworkError::Kernel {
                what: format!("bridge name {b:?}"),
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            })
        }
        Some(b) => b.clone(),
        None => format!("wh-{}", &id[..12]),
    };
    let row = NetworkRow {
        id,
        name: o.name.clone(),
        driver: driver.to_string(),
        bridge: Some(bridge),
        subnet: subnet.to_string(),
        gateway: gateway.to_string(),
        ip_range: o.ip_range.clone().unwrap_or_default(),
        internal: o.internal,
        labels: serde_json::to_string(&o.labels).unwrap_or_else(|_| "{}".into()),
        options: serde_json::to_string(&o.options).unwrap_or_else(|_| "{}".into()),
        created: container::now(),
    };
    db.add_network(&row)?;
    crate::fault::at(crate::fault::Step::NetworkRecorded);
    if let Err(e) = bring_up(root, &row) {
        let _ = take_down(root, &row);
        let _ = db.remove_network(&row.id);
        return Err(e);
    }
    Ok(row)
}

/// The bridge of `n` (`make_bridge`), taking 127.0.0.1 traffic (route_localnet) and
/// forwarding, and the network's rules. Idempotent: run when a container joins, so a
/// bridge lost to a reboot comes back.
fn bring_up(root: &Path, n: &NetworkRow) -> Result<u32, NetworkError> {
    let (Some(bridge), Some(a)) = (&n.bridge, addressing(n)) else {
        return Err(NetworkError::NotConnectable);
    };
    let mut nl = Netlink::open().map_err(kernel("opening a netlink socket"))?;
    let index = make_bridge(&mut nl, n)?;
    for (key, what) in [
        (format!("net/ipv4/conf/{bridge}/route_localnet"), "1"),
        ("net/ipv4/ip_forward".to_string(), "1"),
    ] {
        let path = Path::new("/proc/sys").join(&key);
        if std::fs::read_to_string(&path)
            .map(|v| v.trim() != what)
            .unwrap_or(true)
        {
            std::fs::write(&path, what).map_err(kernel(format!("setting {key}")))?;
        }
    }
    let t = nft::table(root);
    if !nft::has_network(&t, &n.id)? {
        nft::ensure_table(&t)?;
        nft::add_network(&t, &n.id, bridge, &a.subnet, n.internal)?;
    }
    Ok(index)
}

/// The bridge device of `n` with its gateway address, up. A bridge that has to be made
/// (the first time, or again after a reboot kept the record but not the device) first
/// checks that no route has its subnet: two bridges with one subnet would send one's
/// traffic to the other's containers. Called under the host lock.
fn make_bridge(nl: &mut Netlink, n: &NetworkRow) -> Result<u32, NetworkError> {
    let (Some(bridge), Some(a)) = (&n.bridge, addressing(n)) else {
        return Err(NetworkError::NotConnectable);
    };
    let existing = nl
        .index(bridge)
        .map_err(kernel(format!("finding bridge {bridge}")))?;
    if existing.is_none() {
        if let Some(route) = route_over(nl, &a.subnet)? {
            return Err(NetworkError::Rerouted {
                network: n.name.clone(),
                subnet: a.subnet.to_string(),
                route: route.to_string(),
            });
        }
    }
    let index = match existing {
        Some(i) => i,
        None => nl
            .ensure_bridge(bridge)
            .map_err(kernel(format!("creating bridge {bridge}")))?,
    };
    let gw = Ipv4Net::new(a.gateway, a.subnet.prefix_len()).expect("prefix of a parsed subnet");
    let configured = nl
        .add_address(index, gw)
        .map_err(kernel(format!("adding {gw} to {bridge}")))
        .and_then(|()| {
            nl.up(index)
                .map_err(kernel(format!("bringing {bridge} up")))
        });
    if let Err(e) = configured {
        // A device made here without its address would skip the route check next time.
        if existing.is_none() {
            let _ = nl.delete(bridge);
        }
        return Err(e);
    }
    Ok(index)
}

/// Removes the bridge of `n` and its rules.
fn take_down(root: &Path, n: &NetworkRow) -> Result<(), NetworkError> {
    if let Some(bridge) = &n.bridge {
        let mut nl = Netlink::open().map_err(kernel("opening a netlink socket"))?;
        nl.delete(bridge)
            .map_err(kernel(format!("deleting bridge {bridge}")))?;
    }
    nft::remove_owner(&nft::table(root), &format!("net:{}", n.id))?;
    Ok(())
}

/// Finds a network by full name, full id or unique id prefix, as docker does.
pub fn find(db: &mut Db, root: &Path, key: &str) -> Result<NetworkRow, NetworkError> {
    ensure_predefined(db, root)?;
    let all = db.networks()?;
    if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
        return Ok(n.clone());
    }
    let by_prefix: Vec<&NetworkRow> = all.iter().filter(|n| n.id.starts_with(key)).collect();
    match by_prefix.as_slice() {
        [n] if !key.is_empty() => Ok((*n).clone()),
        [] | [_] => Err(NetworkError::NotFound(key.to_string())),
        many => Err(NetworkError::Ambiguous(key.to_string(), many.len())),
    }
}

/// Every network, the predefined ones first made if needed.
pub fn list(db: &mut Db, root: &Path) -> Result<Vec<NetworkRow>, NetworkError> {
    ensure_predefined(db, root)?;
    Ok(db.networks()?)
}

/// `network rm`: refused for predefined networks and while a container is on it.
pub fn remove(db: &mut Db, root: &Path, key: &str) -> Result<NetworkRow, NetworkError> {
    let n = find(db, root, key)?;
    if !user_defined(&n) {
        return Err(NetworkError::Predefined(n.name));
    }
    let in_use = |n: NetworkRow| NetworkError::InUse {
        name: n.name,
        id: n.id,
    };
    // The bridge and rules go before the record: a crash between leaves a record whose
    // bridge comes back with its next member, never a bridge that no record names.
    let _lock = host_lock()?;
    if !db.endpoints(Some(&n.id))?.is_empty() {
        return Err(in_use(n));
    }
    take_down(root, &n)?;
    crate::fault::at(crate::fault::Step::NetworkTakenDown);
    if !db.remove_network(&n.id)? {
        // A container joined meanwhile: its network stays as it was.
        bring_up(root, &n)?;
        return Err(in_use(n));
    }
    Ok(n)
}

/// `network prune`: every user-defined network no container uses; returns their names.
pub fn prune(db: &mut Db, root: &Path) -> Result<Vec<String>, NetworkError> {
    let mut out = Vec::new();
    let networks = list(db, root)?;
    // As in `remove`: under the lock, so that no subnet choice sees a bridge gone whose
    // network stays because a container joined it meanwhile.
    let _lock = host_lock()?;
    for n in networks {
        if user_defined(&n) && db.endpoints(Some(&n.id))?.is_empty() {
            take_down(root, &n)?;
            if db.remove_network(&n.id)? {
                out.push(n.name);
            } else {
                bring_up(root, &n)?;
            }
        }
    }
    Ok(out)
}

/// What a container asks of a network when it joins it.
#[derive(Debug, Default, Clone)]
pub struct JoinOptions {
    pub ip: Option<String>,
    pub aliases: Vec<String>,
    pub mac: Option<String>,
}

/// Records `c`'s endpoint on `n` with an address from the network's range (or the one
/// asked for). The primary network's MAC may be chosen (`--mac-address`).
pub fn join(
    db: &mut Db,
    root: &Path,
    container_id: &str,
    n: &NetworkRow,
    o: &JoinOptions,
) -> Result<EndpointRow, NetworkError> {
    if !user_defined(n) {
        if o.ip.is_some() {
            return Err(NetworkError::IpOnDefault);
        }
        if !o.aliases.is_empty() {
            return Err(NetworkError::AliasOnDefault);
        }
    }
    // The bridge and its rules come up with the first member (a user-defined network's
    // bridge and the default one's device exist from when they were recorded), before
    // the address is picked: a default network moved to a new subnet gives one there.
    let n = &revive(root, db, n, container_id)?.0;
    let a = addressing(n).ok_or(NetworkError::NotConnectable)?;
    let wanted: Option<Ipv4Addr> = match &o.ip {
        Some(s) => {
            let ip: Ipv4Addr = s.parse().map_err(|_| NetworkError::Address(s.clone()))?;
            if !a.subnet.contains(&ip) {
                return Err(NetworkError::OutsideSubnet(s.clone()));
            }
            if ip == a.gateway {
                return Err(NetworkError::AddressInUse);
            }
            Some(ip)
        }
        None => None,
    };
    let mac: Option<[u8; 6]> = match &o.mac {
        Some(m) => Some(ipam::parse_mac(m).ok_or_else(|| NetworkError::Mac(m.clone()))?),
        None => None,
    };
    let aliases = serde_json::to_string(&o.aliases).unwrap_or_else(|_| "[]".into());
    let mut in_use = false;
    let row = db.add_endpoint(&n.id, container_id, &aliases, |taken| {
        let ip = match wanted {
            Some(ip) if taken.contains(&ip.to_string()) => {
                in_use = true;
                return None;
            }
            Some(ip) => ip,
            None => ipam::pick_address(&a.subnet, &a.range, a.gateway, taken)?,
        };
        let mac = mac.unwrap_or_else(|| ipam::mac_of(ip));
        Some((ip.to_string(), ipam::mac_text(mac)))
    })?;
    match row {
        Some(r) => Ok(r),
        None if in_use => Err(NetworkError::AddressInUse),
        None => Err(NetworkError::Exhausted(n.name.clone())),
    }
}

/// `n` ready for `joining` to join, and its bridge's index: the bridge up (`bring_up`),
/// made again if a reboot took it. If a route took the subnet of a lost bridge meanwhile,
/// the default network moves to a free subnet, as dockerd picks docker0's at its start,
/// with its members renumbered (none runs, unless `joining` restarts: their bridge is
/// gone); any other network, or one a running container still uses, is refused by name.
fn revive(
    root: &Path,
    db: &mut Db,
    n: &NetworkRow,
    joining: &str,
) -> Result<(NetworkRow, u32), NetworkError> {
    let _lock = host_lock()?;
    // Read again under the lock: another wharf may have moved the network meanwhile.
    let mut n = db
        .networks()?
        .into_iter()
        .find(|r| r.id == n.id)
        .ok_or_else(|| NetworkError::NotFound(n.name.clone()))?;
    if n.name == DEFAULT && bridge_lost_and_rerouted(&n)? && !members_run(db, &n, joining)? {
        let subnet = ipam::choose_subnet(&taken_subnets(db)?).ok_or(NetworkError::NoPool)?;
        let gateway = ipam::default_gateway(&subnet);
        let moved = db.renumber_network(
            &n.id,
            &subnet.to_string(),
            &gateway.to_string(),
            |endpoints| renumbered(endpoints, &subnet, gateway),
        )?;
        if !moved {
            return Err(NetworkError::Exhausted(n.name));
        }
        // Rules of the old subnet may outlive a bridge deleted by hand; bring_up adds the
        // new subnet's only when the network has none.
        nft::remove_owner(&nft::table(root), &format!("net:{}", n.id))?;
        n.subnet = subnet.to_string();
        n.gateway = gateway.to_string();
    }
    let index = bring_up(root, &n)?;
    Ok((n, index))
}

/// New addresses in `subnet` for `endpoints`, in their order, with MACs: one derived from
/// the old address follows the new one, one chosen (`--mac-address`) stays.
fn renumbered(
    endpoints: &[EndpointRow],
    subnet: &Ipv4Net,
    gateway: Ipv4Addr,
) -> Option<Vec<(String, String)>> {
    let mut given = HashSet::new();
    let mut out = Vec::new();
    for ep in endpoints {
        let ip = ipam::pick_address(subnet, subnet, gateway, &given)?;
        given.insert(ip.to_string());
        let derived = ep
            .address
            .parse()
            .ok()
            .map(ipam::mac_of)
            .map(ipam::mac_text);
        let mac = if derived.as_ref() == Some(&ep.mac) {
            ipam::mac_text(ipam::mac_of(ip))
        } else {
            ep.mac.clone()
        };
        out.push((ip.to_string(), mac));
    }
    Some(out)
}

/// Whether `n`'s bridge is gone and a host route now overlaps its subnet.
fn bridge_lost_and_rerouted(n: &NetworkRow) -> Result<bool, NetworkError> {
    let (Some(bridge), Some(a)) = (&n.bridge, addressing(n)) else {
        return Ok(false);
    };
    let mut nl = Netlink::open().map_err(kernel("opening a netlink socket"))?;
    let lost = nl
        .index(bridge)
        .map_err(kernel(format!("finding bridge {bridge}")))?
        .is_none();
    Ok(lost && route_over(&mut nl, &a.subnet)?.is_some())
}

/// A host route that overlaps `subnet`, if there is one.
fn route_over(nl: &mut Netlink, subnet: &Ipv4Net) -> Result<Option<Ipv4Net>, NetworkError> {
    let routes = nl
        .ipv4_destinations()
        .map_err(kernel("listing the host's routes"))?;
    Ok(ipam::conflict(subnet, &routes))
}

/// Whether a container other than `joining` with an endpoint on `n` runs.
fn members_run(db: &Db, n: &NetworkRow, joining: &str) -> Result<bool, NetworkError> {
    for ep in db.endpoints(Some(&n.id))? {
        if ep.container_id != joining
            && container::load(db, &ep.container_id)?.is_some_and(|c| c.is_running())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The network a NetworkMode names: `default` (or nothing) is the default bridge.
pub fn mode_name(mode: &str) -> &str {
    if mode.is_empty() || mode == "default" {
        DEFAULT
    } else {
        mode
    }
}

/// The network a container's NetworkMode names, or None for `host` (no namespace of
/// its own). `none` gives a namespace with only loopback.
pub fn mode_network(
    db: &mut Db,
    root: &Path,
    mode: &str,
) -> Result<Option<NetworkRow>, NetworkError> {
    let name = mode_name(mode);
    if name.contains(':') {
        return Err(NetworkError::Mode(name.to_string()));
    }
    let n = find(db, root, name)?;
    Ok((n.driver != "host").then_some(n))
}

/// The host veth of `container_id`'s endpoint on `network_id`: derived from both, so it
/// is found again after a crash without any record.
pub fn veth_name(container_id: &str, network_id: &str) -> String {
    let sum = Sha256::digest(format!("{container_id}/{network_id}").as_bytes());
    format!("wh{}", &hex::encode(sum)[..11])
}

/// The sandbox of a running container: its namespace path and the host ports it holds
/// (released when this is dropped, after `stop`).
pub struct Sandbox {
    pub netns: PathBuf,
    pub held: Vec<ports::Held>,
}

impl Sandbox {
    /// docker's NetworkSettings.Ports of what was published.
    pub fn published(&self) -> ports::PortMap {
        let mut m = ports::PortMap::new();
        for h in &self.held {
            m.entry(h.key.clone())
                .or_default()
                .push(ports::PortBinding {
                    host_ip: h.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
                    host_port: h.host_port.to_string(),
                });
        }
        m
    }
}

/// Builds `c`'s sandbox before the runtime's `create`: leftovers of an earlier run
/// first removed, then the namespace, loopback, a veth per endpoint with its address
/// (the first network's gateway as default route), the host ports and their rules.
/// None for `host` networking. On failure nothing is left.
pub fn start(root: &Path, db: &mut Db, c: &Container) -> Result<Option<Sandbox>, NetworkError> {
    if c.spec.host.network_mode == "host" {
        return Ok(None);
    }
    let path = netns::path(root, &c.id);
    // `stop` removes the namespace file last: without one there is nothing left over, and
    // the table need not be read (which would make each start cost more than the last).
    if path.exists() {
        stop(root, db, c)?;
    } else {
        delete_veths(db, c)?;
    }
    netns::create(&path).map_err(kernel(format!(
        "creating network namespace {}",
        path.display()
    )))?;
    let built = build(root, db, c, &path);
    if built.is_err() {
        let _ = stop(root, db, c);
    }
    built.map(Some)
}

fn build(root: &Path, db: &mut Db, c: &Container, path: &Path) -> Result<Sandbox, NetworkError> {
    let mut inner = netns::enter(path, Netlink::open)
        .map_err(kernel("opening netlink in the container's namespace"))?;
    let lo = inner.require_index("lo").map_err(kernel("finding lo"))?;
    inner.up(lo).map_err(kernel("bringing lo up"))?;
    let mut nl = Netlink::open().map_err(kernel("opening a netlink socket"))?;
    let mut endpoints = db.endpoints_of(&c.id)?;
    let mut networks = db.networks()?;
    // Each network's bridge, found, or revived if a reboot took it: that may move the
    // default network's subnet and so this container's address, read again then.
    let mut bridges = Vec::new();
    let mut revived = false;
    for ep in &endpoints {
        let Some(n) = networks.iter().find(|n| n.id == ep.network_id) else {
            continue;
        };
        let Some(name) = n.bridge.as_deref() else {
            continue;
        };
        let index = match nl
            .index(name)
            .map_err(kernel(format!("finding bridge {name}")))?
        {
            Some(i) => i,
            None => {
                revived = true;
                revive(root, db, n, &c.id)?.1
            }
        };
        bridges.push((n.id.clone(), index));
    }
    if revived {
        endpoints = db.endpoints_of(&c.id)?;
        networks = db.networks()?;
    }
    let mut primary = None;
    for (i, ep) in endpoints.iter().enumerate() {
        let Some(n) = networks.iter().find(|n| n.id == ep.network_id) else {
            continue;
        };
        let Some(&(_, bridge)) = bridges.iter().find(|(id, _)| *id == n.id) else {
            continue;
        };
        attach(
            &mut nl,
            &mut inner,
            path,
            c,
            n,
            ep,
            bridge,
            &format!("eth{i}"),
            i == 0,
        )?;
        if i == 0 {
            primary = Some(ep.address.clone());
        }
    }
    let mut sandbox = Sandbox {
        netns: path.to_path_buf(),
        held: Vec::new(),
    };
    let h = &c.spec.host;
    let exposed: Vec<String> = c.spec.config.exposed_ports.keys().cloned().collect();
    let wanted = ports::wanted(&h.port_bindings, &exposed, h.publish_all_ports);
    if let (Some(addr), false) = (primary, wanted.is_empty()) {
        sandbox.held = ports::take_all(&wanted)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| NetworkError::Address(addr))?;
        let fwds: Vec<nft::Forward> = sandbox
            .held
            .iter()
            .map(|hd| {
                let (port, proto) = ports::sort_key(&hd.key);
                nft::Forward {
                    proto,
                    host_ip: hd.host_ip,
                    host_port: hd.host_port,
                    addr,
                    port,
                }
            })
            .collect();
        // The table came with the bridge (`bring_up`).
        nft::add_forwards(&nft::table(root), &c.id, &fwds)?;
    }
    Ok(sandbox)
}

/// One endpoint into the running sandbox at `path`: the network's bridge up, a veth
/// from it into the namespace as `ifname`, the address, and for the primary network the
/// default route (none on an internal network, which leads nowhere).
#[allow(clippy::too_many_arguments)]
fn attach(
    nl: &mut Netlink,
    inner: &mut Netlink,
    path: &Path,
    c: &Container,
    n: &NetworkRow,
    ep: &EndpointRow,
    bridge: u32,
    ifname: &str,
    primary: bool,
) -> Result<(), NetworkError> {
    let a = addressing(n).ok_or(NetworkError::NotConnectable)?;
    let mac = ipam::parse_mac(&ep.mac).ok_or_else(|| NetworkError::Mac(ep.mac.clone()))?;
    let host = veth_name(&c.id, &n.id);
    let ns = std::fs::File::open(path).map_err(kernel(format!("opening {}", path.display())))?;
    nl.add_veth(&host, bridge, ifname, mac, ns.as_raw_fd())
        .map_err(kernel(format!("creating veth {host}")))?;
    let hi = nl
        .require_index(&host)
        .map_err(kernel(format!("finding {host}")))?;
    nl.up(hi).map_err(kernel(format!("bringing {host} up")))?;
    let ii = inner
        .require_index(ifname)
        .map_err(kernel(format!("finding {ifname}")))?;
    let addr: Ipv4Addr = ep
        .address
        .parse()
        .map_err(|_| NetworkError::Address(ep.address.clone()))?;
    let net = Ipv4Net::new(addr, a.subnet.prefix_len()).expect("prefix of a parsed subnet");
    inner
        .add_address(ii, net)
        .map_err(kernel(format!("adding {net} to {ifname}")))?;
    inner
        .up(ii)
        .map_err(kernel(format!("bringing {ifname} up")))?;
    if primary && !n.internal {
        inner.add_default_route(a.gateway).map_err(kernel(format!(
            "adding the default route via {}",
            a.gateway
        )))?;
    }
    Ok(())
}

/// Takes down what `start` built (or what a killed monitor left): the container's rules,
/// its namespace and host veths. Safe to run any number of times.
pub fn stop(root: &Path, db: &mut Db, c: &Container) -> Result<(), NetworkError> {
    // Only a container that publishes ports has rules: the others' stop reads no table.
    let h = &c.spec.host;
    if !h.port_bindings.is_empty() || h.publish_all_ports {
        nft::remove_owner(&nft::table(root), &c.id)?;
    }
    let path = netns::path(root, &c.id);
    netns::remove(&path).map_err(kernel(format!("removing {}", path.display())))?;
    delete_veths(db, c)
}

/// Deletes the host ends of `c`'s veths (their inner ends go with them).
fn delete_veths(db: &Db, c: &Container) -> Result<(), NetworkError> {
    let mut nl = Netlink::open().map_err(kernel("opening a netlink socket"))?;
    for ep in db.endpoints_of(&c.id)? {
        let host = veth_name(&c.id, &ep.network_id);
        nl.delete(&host)
            .map_err(kernel(format!("deleting {host}")))?;
    }
    Ok(())
}

/// Everything of a container on removal: its sandbox and its endpoints (addresses).
pub fn release(root: &Path, db: &mut Db, c: &Container) -> Result<(), NetworkError> {
    stop(root, db, c)?;
    db.remove_endpoints(&c.id, None)?;
    Ok(())
}

/// Removes sandboxes no running container owns: namespaces under the data root, rules
/// of the data root's table, and veths of endpoints. What a wharf or monitor killed at
/// the wrong moment leaves; run by `system prune` and `network prune`.
pub fn sweep(root: &Path, db: &mut Db) -> Result<(), NetworkError> {
    let all = container::all(db)?;
    let live = |id: &str| all.iter().any(|c| c.id == id && c.is_running());
    if let Ok(dir) = std::fs::read_dir(root.join("netns")) {
        for e in dir.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !live(&id) {
                netns::remove(&e.path())
                    .map_err(kernel(format!("removing {}", e.path().display())))?;
            }
        }
    }
    let t = nft::table(root);
    let nets: Vec<String> = db
        .networks()?
        .into_iter()
        .map(|n| format!("net:{}", n.id))
        .collect();
    nft::remove_where(&t, |owner| !nets.iter().any(|n| n == owner) && !live(owner))?;
    let mut nl = Netlink::open().map_err(kernel("opening a netlink socket"))?;
    for ep in db.endpoints(None)? {
        if !live(&ep.container_id) {
            nl.delete(&veth_name(&ep.container_id, &ep.network_id))
                .map_err(kernel("deleting a stale veth"))?;
        }
    }
    Ok(())
}

/// The name entries a container on `networks` sees for its peers: every other container
/// with a live sandbox on a user-defined network it shares, by name, short id and aliases.
fn peers(
    root: &Path,
    db: &Db,
    c: &Container,
    networks: &[NetworkRow],
) -> Result<Vec<hosts::Entry>, NetworkError> {
    let mine = db.endpoints_of(&c.id)?;
    let mut out = Vec::new();
    for ep in mine {
        let Some(n) = networks.iter().find(|n| n.id == ep.network_id) else {
            continue;
        };
        if !user_defined(n) {
            continue;
        }
        for other in db.endpoints(Some(&n.id))? {
            if other.container_id == c.id
                || !netns::is_namespace(&netns::path(root, &other.container_id))
            {
                continue;
            }
            let Some(peer) = container::load(db, &other.container_id)? else {
                continue;
            };
            let mut names = vec![peer.name.clone(), peer.short_id().to_string()];
            names.extend(serde_json::from_str::<Vec<String>>(&other.aliases).unwrap_or_default());
            out.push(hosts::Entry {
                address: other.address,
                names,
            });
        }
    }
    Ok(out)
}

/// The /etc/hosts text of `c`.
pub fn hosts_of(root: &Path, db: &Db, c: &Container) -> Result<String, NetworkError> {
    let networks = db.networks()?;
    let endpoints = db.endpoints_of(&c.id)?;
    let gateway = endpoints
        .first()
        .and_then(|ep| networks.iter().find(|n| n.id == ep.network_id))
        .map(|n| n.gateway.clone());
    let mut extra: Vec<hosts::Entry> = c
        .spec
        .host
        .extra_hosts
        .iter()
        .flatten()
        .filter_map(|s| hosts::parse_add_host(s, gateway.as_deref()))
        .collect();
    for l in c.spec.host.links.iter().flatten() {
        let (name, alias) = l.split_once(':').unwrap_or((l, l));
        if let Ok(target) = container::lookup::find(db, name) {
            if let Some(ep) = db.endpoints_of(&target.id)?.first() {
                let mut names = vec![alias.to_string(), target.short_id().to_string()];
                if target.name != alias {
                    names.push(target.name.clone());
                }
                extra.push(hosts::Entry {
                    address: ep.address.clone(),
                    names,
                });
            }
        }
    }
    let hostname = &c.spec.config.hostname;
    let own = match endpoints.first() {
        Some(ep) => hosts::Entry {
            address: ep.address.clone(),
            names: vec![hostname.clone()],
        },
        None => hosts::Entry {
            address: "127.0.1.1".into(),
            names: vec![hostname.clone()],
        },
    };
    Ok(hosts::hosts_text(
        &extra,
        Some(&own),
        &peers(root, db, c, &networks)?,
    ))
}

/// The resolv.conf text of `c` (with a network namespace of its own).
pub fn resolv_of(db: &Db, c: &Container) -> Result<String, NetworkError> {
    let h = &c.spec.host;
    let networks = db.networks()?;
    let on_user_network = db.endpoints_of(&c.id)?.iter().any(|ep| {
        networks
            .iter()
            .any(|n| n.id == ep.network_id && user_defined(n))
    });
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    Ok(hosts::resolv_text(
        &host,
        h.dns.as_deref().unwrap_or_default(),
        h.dns_search.as_deref().unwrap_or_default(),
        h.dns_options.as_deref().unwrap_or_default(),
        on_user_network.then_some(dns::ADDRESS),
    ))
}

/// Rewrites the hosts file of every running peer of `c` on a user-defined network, so
/// that `c` appears there as it starts and vanishes as it stops.
pub fn refresh_peers(root: &Path, db: &Db, c: &Container) -> Result<(), NetworkError> {
    let networks = db.networks()?;
    let mut seen = std::collections::HashSet::new();
    for ep in db.endpoints_of(&c.id)? {
        if !networks
            .iter()
            .any(|n| n.id == ep.network_id && user_defined(n))
        {
            continue;
        }
        for other in db.endpoints(Some(&ep.network_id))? {
            if other.container_id == c.id || !seen.insert(other.container_id.clone()) {
                continue;
            }
            if !netns::is_namespace(&netns::path(root, &other.container_id)) {
                continue;
            }
            let Some(peer) = container::load(db, &other.container_id)? else {
                continue;
            };
            rewrite_own_hosts(root, db, &peer)?;
        }
    }
    Ok(())
}

/// docker's NetworkSettings.Networks entry for one endpoint.
pub fn endpoint_json(n: &NetworkRow, ep: &EndpointRow, running: bool) -> Value {
    let prefix = addressing(n).map(|a| a.subnet.prefix_len()).unwrap_or(0);
    let aliases: Vec<String> = serde_json::from_str(&ep.aliases).unwrap_or_default();
    let (ip, gw, mac, plen) = if running {
        (
            ep.address.clone(),
            n.gateway.clone(),
            ep.mac.clone(),
            prefix,
        )
    } else {
        (String::new(), String::new(), String::new(), 0)
    };
    json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
        "NetworkID": n.id,
        "EndpointID": if running { veth_name(&ep.container_id, &n.id) } else { String::new() },
        "Gateway": gw,
        "IPAddress": ip,
        "IPPrefixLen": plen,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": mac,
        "DriverOpts": null
    })
}

/// docker's `network inspect` object.
pub fn inspect_json(root: &Path, db: &Db, n: &NetworkRow) -> Result<Value, NetworkError> {
    let mut containers = serde_json::Map::new();
    for ep in db.endpoints(Some(&n.id))? {
        let Some(c) = container::load(db, &ep.container_id)? else {
            continue;
        };
        if !netns::is_namespace(&netns::path(root, &c.id)) {
            continue;
        }
        let prefix = addressing(n).map(|a| a.subnet.prefix_len()).unwrap_or(0);
        containers.insert(
            c.id.clone(),
            json!({
                "Name": c.name,
                "EndpointID": veth_name(&c.id, &n.id),
                "MacAddress": ep.mac,
                "IPv4Address": format!("{}/{prefix}", ep.address),
                "IPv6Address": ""
            }),
        );
    }
    let config: Vec<Value> = if n.subnet.is_empty() {
        vec![]
    } else {
        let mut c = json!({"Subnet": n.subnet, "Gateway": n.gateway});
        if !n.ip_range.is_empty() {
            c["IPRange"] = json!(n.ip_range);
        }
        vec![c]
    };
    let labels: Value = serde_json::from_str(&n.labels).unwrap_or(json!({}));
    let options: Value = serde_json::from_str(&n.options).unwrap_or(json!({}));
    Ok(json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": if user_defined(n) { json!({}) } else { Value::Null }, "Config": config},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": labels
    }))
}

/// The address of the peer `name` (a name, short id or alias, without case) that
/// container `id` reaches on a user-defined network, for its resolver.
pub fn resolve_peer(
    root: &Path,
    db: &Db,
    id: &str,
    name: &str,
) -> Result<Option<Ipv4Addr>, NetworkError> {
    let Some(c) = container::load(db, id)? else {
        return Ok(None);
    };
    let name = name.trim_end_matches('.');
    let networks = db.networks()?;
    Ok(peers(root, db, &c, &networks)?
        .into_iter()
        .find(|e| e.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|e| e.address.parse().ok()))
}

/// docker's NetworkSettings of a container: its endpoints (filled while it runs), the
/// published ports (exposed unpublished ones as null) and, on the default bridge, the
/// legacy top-level address fields.
pub fn settings_json(root: &Path, db: &Db, c: &Container) -> Result<Value, NetworkError> {
    let sandbox = netns::path(root, &c.id);
    let running = c.is_running() && netns::is_namespace(&sandbox);
    let networks = db.networks()?;
    let mut nets = serde_json::Map::new();
    let mut legacy = json!({"Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""});
    for ep in db.endpoints_of(&c.id)? {
        let Some(n) = networks.iter().find(|n| n.id == ep.network_id) else {
            continue;
        };
        let e = endpoint_json(n, &ep, running);
        if n.name == DEFAULT {
            for k in ["Gateway", "IPAddress", "IPPrefixLen", "MacAddress"] {
                legacy[k] = e[k].clone();
            }
        }
        nets.insert(n.name.clone(), e);
    }
    let mode = c.spec.host.network_mode.as_str();
    if nets.is_empty() && (mode == "host" || mode == "none") {
        if let Some(n) = networks.iter().find(|n| n.name == mode) {
            let mut e = endpoint_json(
                n,
                &EndpointRow {
                    network_id: n.id.clone(),
                    container_id: c.id.clone(),
                    address: String::new(),
                    mac: String::new(),
                    aliases: "[]".into(),
                },
                false,
            );
            if !running {
                e["NetworkID"] = json!(n.id);
            }
            nets.insert(mode.to_string(), e);
        }
    }
    let mut ports = serde_json::Map::new();
    if running {
        for k in c.spec.config.exposed_ports.keys() {
            ports.insert(k.clone(), Value::Null);
        }
        for (k, v) in &c.state.ports {
            ports.insert(k.clone(), json!(v));
        }
    }
    Ok(json!({
        "Bridge": "",
        "SandboxID": if running { c.id.clone() } else { String::new() },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SandboxKey": if running { sandbox.display().to_string() } else { String::new() },
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": if running { legacy["IPAddress"].as_str().map(|_| c.id.clone()).unwrap_or_default() } else { String::new() },
        "Gateway": legacy["Gateway"],
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": legacy["IPAddress"],
        "IPPrefixLen": legacy["IPPrefixLen"],
        "IPv6Gateway": "",
        "MacAddress": legacy["MacAddress"],
        "Networks": nets,
    }))
}

/// `network connect`: records the endpoint and, when the container runs, wires it into
/// its namespace as the next free `ethN` at once; names are refreshed on both sides.
pub fn connect(
    root: &Path,
    db: &mut Db,
    network: &str,
    c: &Container,
    o: &JoinOptions,
) -> Result<EndpointRow, NetworkError> {
    let n = find(db, root, network)?;
    if n.bridge.is_none() {
        return Err(NetworkError::PredefinedConnect(n.name));
    }
    if c.spec.host.network_mode == "host" || c.spec.host.network_mode.starts_with("container:") {
        return Err(NetworkError::NotConnectable);
    }
    let path = netns::path(root, &c.id);
    let live = c.is_running() && netns::is_namespace(&path);
    let recorded = db
        .endpoints_of(&c.id)?
        .into_iter()
        .find(|ep| ep.network_id == n.id);
    let ep = match recorded {
        // A connect killed between recording and wiring: this one finishes it.
        Some(ep) if live && !has_veth(&c.id, &n.id)? => ep,
        Some(_) => {
            return Err(NetworkError::AlreadyConnected {
                container: c.name.clone(),
                network: n.name,
            })
        }
        None => join(db, root, &c.id, &n, o)?,
    };
    // join may have moved the default network to a new subnet: wire it as it is now.
    let n = db
        .networks()?
        .into_iter()
        .find(|r| r.id == n.id)
        .ok_or_else(|| NetworkError::NotFound(n.name.clone()))?;
    crate::fault::at(crate::fault::Step::NetworkJoined);
    if live {
        let wired = netns::enter(&path, Netlink::open)
            .map_err(kernel("opening netlink in the container's namespace"))
            .and_then(|mut inner| {
                let mut ifname = String::new();
                for i in 0..64 {
                    let name = format!("eth{i}");
                    if inner
                        .index(&name)
                        .map_err(kernel("looking up links"))?
                        .is_none()
                    {
                        ifname = name;
                        break;
                    }
                }
                let mut nl = Netlink::open().map_err(kernel("opening a netlink socket"))?;
                // join revived the bridge if a reboot had taken it.
                let name = n.bridge.as_deref().ok_or(NetworkError::NotConnectable)?;
                let bridge = nl
                    .require_index(name)
                    .map_err(kernel(format!("finding bridge {name}")))?;
                attach(
                    &mut nl, &mut inner, &path, c, &n, &ep, bridge, &ifname, false,
                )
            });
        if let Err(e) = wired {
            let _ = Netlink::open().and_then(|mut nl| nl.delete(&veth_name(&c.id, &n.id)));
            db.remove_endpoints(&c.id, Some(&n.id))?;
            return Err(e);
        }
        rewrite_own_hosts(root, db, c)?;
        refresh_peers(root, db, c)?;
    }
    Ok(ep)
}

/// Whether the host end of `container_id`'s veth on `network_id` exists.
fn has_veth(container_id: &str, network_id: &str) -> Result<bool, NetworkError> {
    let mut nl = Netlink::open().map_err(kernel("opening a netlink socket"))?;
    let name = veth_name(container_id, network_id);
    Ok(nl
        .index(&name)
        .map_err(kernel(format!("finding {name}")))?
        .is_some())
}

/// `network disconnect`: unwires and forgets the container's endpoint on the network.
pub fn disconnect(
    root: &Path,
    db: &mut Db,
    network: &str,
    c: &Container,
) -> Result<(), NetworkError> {
    let n = find(db, root, network)?;
    if !db
        .endpoints_of(&c.id)?
        .iter()
        .any(|ep| ep.network_id == n.id)
    {
        return Err(NetworkError::NotConnected {
            container: c.name.clone(),
            network: n.name,
        });
    }
    // Peers forget it first, while its endpoint still says where it was.
    let was_live = netns::is_namespace(&netns::path(root, &c.id));
    let mut nl = Netlink::open().map_err(kernel("opening a netlink socket"))?;
    nl.delete(&veth_name(&c.id, &n.id))
        .map_err(kernel("deleting the container's veth"))?;
    let peers_before: Vec<EndpointRow> = db.endpoints(Some(&n.id))?;
    db.remove_endpoints(&c.id, Some(&n.id))?;
    if was_live {
        rewrite_own_hosts(root, db, c)?;
        for ep in peers_before.iter().filter(|ep| ep.container_id != c.id) {
            if let Some(peer) = container::load(db, &ep.container_id)? {
                if netns::is_namespace(&netns::path(root, &peer.id)) {
                    rewrite_own_hosts(root, db, &peer)?;
                }
            }
        }
    }
    Ok(())
}

/// Rewrites `c`'s hosts file from the store. The text is computed while the file is
/// locked, so of two containers starting at once the later writer sees both.
pub fn rewrite_own_hosts(root: &Path, db: &Db, c: &Container) -> Result<(), NetworkError> {
    let path = container::dir(root, &c.id).join("hosts");
    hosts::rewrite(&path, || hosts_of(root, db, c))
}

/// docker's `network ls --filter` keys: driver, id (prefix), label (key or key=value),
/// name (substring), scope, type (custom|builtin), dangling (no container on it).
pub fn filter_matches(
    db: &Db,
    n: &NetworkRow,
    key: &str,
    value: &str,
) -> Result<bool, NetworkFilterError> {
    Ok(match key {
        "driver" => n.driver == value,
        "id" => n.id.starts_with(value),
        "name" => n.name.contains(value),
        "scope" => value == "local",
        "label" => {
            let labels: BTreeMap<String, String> =
                serde_json::from_str(&n.labels).unwrap_or_default();
            match value.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(value),
            }
        }
        "type" => match value {
            "custom" => user_defined(n),
            "builtin" => !user_defined(n),
            _ => return Err(NetworkFilterError::Value(key.into(), value.into())),
        },
        "dangling" => {
            let want = match value {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(NetworkFilterError::Value(key.into(), value.into())),
            };
            let unused = user_defined(n)
                && db
                    .endpoints(Some(&n.id))
                    .map(|e| e.is_empty())
                    .unwrap_or(false);
            unused == want
        }
        _ => return Err(NetworkFilterError::Key(key.into())),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkFilterError {
    #[error("invalid filter '{0}'")]
    Key(String),
    #[error("invalid filter '{0}={1}'")]
    Value(String, String),
}

/// The networks `filters` (`key=value`, as given) keep: values of one key are
/// alternatives, different keys must all hold.
pub fn filtered(
    db: &mut Db,
    root: &Path,
    filters: &[String],
) -> Result<Vec<NetworkRow>, NetworkError> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| NetworkError::Filter(NetworkFilterError::Key(f.clone())))?;
        by_key.entry(k.to_string()).or_default().push(v.to_string());
    }
    let mut out = Vec::new();
    for n in list(db, root)? {
        let mut keep = true;
        for (k, vs) in &by_key {
            let mut any = false;
            for v in vs {
                any |= filter_matches(db, &n, k, v)?;
            }
            keep &= any;
        }
        if keep {
            out.push(n);
        }
    }
    Ok(out)
}

/// docker's legacy link variables for each `--link NAME:ALIAS`: `ALIAS_NAME`, the target's
/// exposed ports as `ALIAS_PORT*` and its environment as `ALIAS_ENV_*` (HOME and PATH left
/// out), with the target's address of the moment.
pub fn link_env(db: &Db, c: &Container) -> Result<Vec<String>, NetworkError> {
    let mut env = Vec::new();
    for l in c.spec.host.links.iter().flatten() {
        let (name, alias) = l.split_once(':').unwrap_or((l, l));
        let Ok(target) = container::lookup::find(db, name) else {
            continue;
        };
        let Some(ep) = db.endpoints_of(&target.id)?.into_iter().next() else {
            continue;
        };
        let a = alias.to_ascii_uppercase().replace('-', "_");
        env.push(format!("{a}_NAME=/{}/{alias}", c.name));
        let mut keys: Vec<&String> = target.spec.config.exposed_ports.keys().collect();
        keys.sort_by_key(|k| ports::sort_key(k));
        for (i, k) in keys.iter().enumerate() {
            let (port, proto) = ports::sort_key(k);
            let url = format!("{proto}://{}:{port}", ep.address);
            if i == 0 {
                env.push(format!("{a}_PORT={url}"));
            }
            let p = format!("{a}_PORT_{port}_{}", proto.to_ascii_uppercase());
            env.push(format!("{p}={url}"));
            env.push(format!("{p}_ADDR={}", ep.address));
            env.push(format!("{p}_PORT={port}"));
            env.push(format!("{p}_PROTO={proto}"));
        }
        for e in &target.spec.config.env {
            if let Some((k, v)) = e.split_once('=') {
                if k != "HOME" && k != "PATH" {
                    env.push(format!("{a}_ENV_{k}={v}"));
                }
            }
        }
    }
    Ok(env)
}
