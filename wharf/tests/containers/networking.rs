//! Networks and published ports, end to end: traffic goes only to loopback, to the host's
//! own address and to the containers' addresses. Each test's guard removes its
//! containers, bridges and nftables table, also when the test fails.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::{assert_fails, free_port, port_block, runtime, text, unrouted_subnet, Guard};

/// The upstream resolver of every container that looks names up: the loopback of the
/// namespace that asks (the host's, for a container's own resolver), so that a name
/// nobody on the network has never becomes a query to a resolver outside this machine.
const NO_UPSTREAM: &str = "127.0.0.1";

/// An HTTP GET of `/` at `addr`, retried until `secs` pass (the server may still be
/// starting); the body, or None.
fn http_get(addr: SocketAddr, secs: u64) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match got {
            Ok(r) if r.contains("200 OK") => {
                return Some(r.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
            }
            _ if Instant::now() >= deadline => return None,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The host's links.
fn links() -> HashSet<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A field of network `net` that `template` picks, as `network inspect -f` prints it.
fn network_field(g: &Guard, net: &str, template: &str) -> String {
    g.ok(&["network", "inspect", "-f", template, net])
        .trim()
        .to_string()
}

const SUBNET: &str = "{{(index .IPAM.Config 0).Subnet}}";

/// The device of this data root's default bridge.
fn default_bridge(g: &Guard) -> String {
    network_field(
        g,
        "bridge",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
    )
}

/// The veths on this data root's default bridge (other tests' containers are on
/// bridges of their own).
fn veths(g: &Guard) -> HashSet<String> {
    std::fs::read_dir(format!("/sys/class/net/{}/brif", default_bridge(g)))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The rules of this data root's table, as `nft` prints them.
fn rules(g: &Guard) -> String {
    let table = wharf::network::nft::table(&g.env.root());
    let out = std::process::Command::new("nft")
        .args(["list", "table", "ip", &table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A non-loopback IPv4 address of the host (None when it has none).
fn host_address() -> Option<Ipv4Addr> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains(" wh") && !l.contains(" wharf"))
        .find_map(|l| {
            let a = l.split_whitespace().nth(3)?;
            a.split('/').next()?.parse().ok()
        })
}

/// Networking needs nft; without it the test is skipped with the reason.
fn guard() -> Option<Guard> {
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        integration::skip("nft (Debian's nftables) is not installed");
        return None;
    }
    Guard::new(&runtime())
}

fn serve(g: &Guard, args: &[&str]) -> String {
    let www = g.env.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from wharf\n").unwrap();
    let vol = format!("{}:/www", www.display());
    let mut a = vec!["run", "-d", "-v", &vol];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/www"]);
    g.ok(&a).trim().to_string()
}

#[test]
fn published_ports_answer_on_loopback_and_host_addresses() {
    let Some(g) = guard() else {
        return;
    };
    let (lo, any) = (free_port(), free_port());
    let id = serve(
        &g,
        &[
            "--name",
            "web",
            "-p",
            &format!("127.0.0.1:{lo}:80"),
            "-p",
            &format!("{any}:80"),
        ],
    );
    let body = http_get(SocketAddr::from(([127, 0, 0, 1], lo)), 20);
    assert_eq!(body.as_deref(), Some("hello from wharf\n"));
    assert!(http_get(SocketAddr::from(([127, 0, 0, 1], any)), 20).is_some());
    match host_address() {
        Some(a) => assert!(http_get(SocketAddr::from((a, any)), 20).is_some()),
        None => integration::skip("the host has no global IPv4 address to publish on"),
    }
    // The container's own address answers too, and is what inspect says.
    let ip = g.inspect("web", "{{.NetworkSettings.IPAddress}}");
    let ip: Ipv4Addr = ip.parse().expect("an address");
    assert!(http_get(SocketAddr::from((ip, 80)), 20).is_some());
    // Hairpin: another container reaches the published port on the host's side of the
    // bridge (the gateway), through the same DNAT.
    let gw = g.inspect("web", "{{.NetworkSettings.Gateway}}");
    let page = g.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{gw}:{any}/"),
    ]);
    assert_eq!(page, "hello from wharf\n");
    // That --rm container's endpoint went with it.
    let v: serde_json::Value =
        serde_json::from_str(&g.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(v[0]["Containers"].as_object().unwrap().len(), 1, "{v}");
    assert_eq!(veths(&g).len(), 1);
    assert_eq!(
        g.inspect("web", "{{json .NetworkSettings.Ports}}"),
        format!(
            "{{\"80/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{lo}\"}},{{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"{any}\"}}]}}"
        )
    );
    assert_eq!(
        g.ok(&["port", "web"]),
        format!("80/tcp -> 127.0.0.1:{lo}\n80/tcp -> 0.0.0.0:{any}\n")
    );
    assert_eq!(
        g.ok(&["port", "web", "80"]),
        format!("127.0.0.1:{lo}\n0.0.0.0:{any}\n")
    );
    let ps = g.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(
        ps.trim(),
        format!("127.0.0.1:{lo}->80/tcp, 0.0.0.0:{any}->80/tcp")
    );
    // Other hosts cannot reach a port published on 127.0.0.1 (moby#41872), and the
    // bridge's traffic to the outside is masqueraded.
    let r = rules(&g);
    assert!(
        r.contains(&format!(
            "iifname != \"lo\" ip daddr 127.0.0.1 tcp dport {lo} drop"
        )),
        "{r}"
    );
    assert!(r.contains("masquerade"), "{r}");
    assert!(r.contains(&id), "{r}");
    // A restart keeps the address.
    g.ok(&["restart", "-t", "0", "web"]);
    assert_eq!(
        g.inspect("web", "{{.NetworkSettings.IPAddress}}"),
        ip.to_string()
    );
    assert!(http_get(SocketAddr::from(([127, 0, 0, 1], lo)), 20).is_some());
    g.ok(&["rm", "-f", "web"]);
    assert!(!rules(&g).contains(&id));
    assert!(http_get(SocketAddr::from(([127, 0, 0, 1], lo)), 1).is_none());
    g.assert_clean();
}

/// Two data roots never share a subnet, even before either has a container: a shared
/// one sent the traffic of one root's published port to the other root's container
/// with the same address. A bridge that a reboot took, whose subnet another root has
/// taken since, is refused by name instead of made again beside the other.
#[test]
fn data_roots_never_share_a_subnet() {
    let (Some(a), Some(b)) = (guard(), guard()) else {
        return;
    };
    let subnet = |g: &Guard| network_field(g, "bridge", SUBNET);
    assert_ne!(subnet(&a), subnet(&b));
    assert!(links().contains(&default_bridge(&a)));
    let Some(free) = unrouted_subnet(254) else {
        integration::skip("the host routes every 10.254.x.0/24");
        return;
    };
    a.ok(&["network", "create", "--subnet", &free, "lost"]);
    let id = a.ok(&["network", "inspect", "-f", "{{.Id}}", "lost"]);
    let lost = format!("wh-{}", &id[..12]);
    let del = std::process::Command::new("ip")
        .args(["link", "del", &lost])
        .status()
        .unwrap();
    assert!(del.success());
    b.ok(&["network", "create", "--subnet", &free, "taker"]);
    let out = a.run(&["run", "--network", "lost", "busybox", "true"]);
    assert_fails(
        &out,
        125,
        &format!("network lost: its subnet {free} overlaps "),
    );
    assert!(!links().contains(&lost));
}

/// The default network whose bridge a reboot took, and whose subnet a host interface
/// took since, moves to a free subnet when a container starts, as dockerd picks
/// docker0's at its start: its stopped members get addresses there. While a member
/// still runs (its bridge deleted by hand), the start is refused instead.
#[test]
fn a_lost_default_bridge_moves_off_a_taken_subnet() {
    let Some(g) = guard() else {
        return;
    };
    let subnet = || network_field(&g, "bridge", SUBNET);
    g.ok(&["run", "-d", "--name", "runner", "busybox", "sleep", "300"]);
    g.ok(&["create", "--name", "member", "busybox", "sleep", "300"]);
    let old_subnet = subnet();
    // A created container shows no address (as in docker); its endpoint has one.
    let id = g.inspect("member", "{{.Id}}");
    let db = wharf::store::Db::open(&g.env.root().join("wharf.db")).unwrap();
    let old_ip = db.endpoints_of(&id).unwrap()[0].address.clone();
    drop(db);
    assert!(in_subnet(&old_ip, &old_subnet), "{old_ip} {old_subnet}");
    let bridge = default_bridge(&g);
    // The host lock keeps every wharf from choosing a subnet while the bridge is gone
    // and another link takes its subnet, so no other test's data root can take it.
    let taker = {
        let lock = std::fs::File::options()
            .write(true)
            .open("/run/wharf/network.lock")
            .unwrap();
        // SAFETY: flock on a descriptor this test owns; released when `lock` drops.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        let ip = |args: &[&str]| {
            let ok = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ip {args:?}");
        };
        ip(&["link", "del", &bridge]);
        let taker = Link::add(&format!("whtk{}", std::process::id() % 100_000));
        let prefix = old_subnet.split('/').nth(1).unwrap();
        ip(&[
            "addr",
            "add",
            &format!("{old_ip}/{prefix}"),
            "dev",
            &taker.0,
        ]);
        ip(&["link", "set", &taker.0, "up"]);
        taker
    };
    // A network that a running container still uses does not move under it.
    let out = g.run(&["start", "member"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "network bridge: its subnet {old_subnet} overlaps "
        )),
        "{said}"
    );
    g.ok(&["rm", "-f", "runner"]);
    g.ok(&["start", "member"]);
    let new_subnet = subnet();
    assert_ne!(new_subnet, old_subnet);
    let new_ip: Ipv4Addr = g
        .inspect("member", "{{.NetworkSettings.Networks.bridge.IPAddress}}")
        .parse()
        .expect("an address");
    assert!(
        in_subnet(&new_ip.to_string(), &new_subnet),
        "{new_ip} {new_subnet}"
    );
    let mac = g.inspect("member", "{{.NetworkSettings.Networks.bridge.MacAddress}}");
    let o = new_ip.octets();
    assert_eq!(
        mac,
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    );
    let inside = g.ok(&["exec", "member", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(inside.contains(&format!("{new_ip}/")), "{inside}");
    let gateway = network_field(&g, "bridge", "{{(index .IPAM.Config 0).Gateway}}");
    assert!(in_subnet(&gateway, &new_subnet), "{gateway}");
    g.ok(&["exec", "member", "ping", "-c1", "-W3", &gateway]);
    drop(taker);
    g.ok(&["rm", "-f", "member"]);
    g.assert_clean();
}

/// A link this test made (a bridge: every kernel wharf runs on has them, unlike the
/// dummy module), deleted however the test ends.
struct Link(String);

impl Link {
    fn add(name: &str) -> Link {
        let ok = std::process::Command::new("ip")
            .args(["link", "add", name, "type", "bridge"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip link add {name} type bridge");
        Link(name.to_string())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
    }
}

/// Whether the address `ip` is inside the subnet "a.b.c.d/n".
fn in_subnet(ip: &str, subnet: &str) -> bool {
    let (net, prefix) = subnet.split_once('/').expect("a subnet");
    let (net, prefix): (Ipv4Addr, u32) = (net.parse().unwrap(), prefix.parse().unwrap());
    let ip: Ipv4Addr = ip.parse().expect("an address");
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

#[test]
fn a_port_taken_twice_fails_cleanly() {
    let Some(g) = guard() else {
        return;
    };
    let port = free_port();
    let spec = format!("{port}:80");
    g.ok(&[
        "run", "-d", "--name", "first", "-p", &spec, "busybox", "sleep", "300",
    ]);
    let before_rules = rules(&g);
    let before_veths = veths(&g);
    let out = g.run(&[
        "run", "-d", "--name", "second", "-p", &spec, "busybox", "true",
    ]);
    assert_fails(
        &out,
        125,
        &format!("Bind for 0.0.0.0:{port} failed: port is already allocated"),
    );
    assert!(g.run(&["inspect", "second"]).status.code() != Some(0));
    assert_eq!(rules(&g), before_rules);
    assert_eq!(veths(&g), before_veths);
    // A port any host process holds is refused the same way.
    let held = TcpListener::bind("0.0.0.0:0").unwrap();
    let hp = held.local_addr().unwrap().port();
    let out = g.run(&["run", "--rm", "-p", &format!("{hp}:80"), "busybox", "true"]);
    assert_fails(
        &out,
        125,
        &format!("Bind for 0.0.0.0:{hp} failed: port is already allocated"),
    );
    assert_eq!(g.ok(&["ps", "-a", "-q"]).lines().count(), 1);
    assert_eq!(veths(&g), before_veths);
    g.ok(&["rm", "-f", "first"]);
    g.assert_clean();
}

#[test]
fn publish_all_maps_exposed_ports() {
    let Some(g) = guard() else {
        return;
    };
    let tar = g.env.path("busybox.tar").display().to_string();
    g.ok(&[
        "import",
        "-c",
        "EXPOSE 80",
        "-c",
        "CMD [\"sh\"]",
        &tar,
        "exposing",
    ]);
    let www = g.env.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "exposed\n").unwrap();
    let vol = format!("{}:/www", www.display());
    g.ok(&[
        "run", "-d", "--name", "pub", "-P", "--expose", "81/udp", "-v", &vol, "exposing", "httpd",
        "-f", "-p", "80", "-h", "/www",
    ]);
    let mapped = g.ok(&["port", "pub", "80/tcp"]);
    let port: u16 = mapped
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a mapped port");
    assert!(port > 0);
    assert_eq!(
        http_get(SocketAddr::from(([127, 0, 0, 1], port)), 20).as_deref(),
        Some("exposed\n")
    );
    assert!(g.ok(&["port", "pub"]).contains("81/udp -> 0.0.0.0:"));
    assert_eq!(
        g.inspect("pub", "{{json .Config.ExposedPorts}}"),
        "{\"80/tcp\":{},\"81/udp\":{}}"
    );
    g.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "300"]);
    let names = |f: &str| g.ok(&["ps", "--filter", f, "--format", "{{.Names}}"]);
    assert_eq!(names("publish=80"), "pub\n");
    assert_eq!(names("publish=79-80/tcp"), "pub\n");
    assert_eq!(names("expose=81/udp"), "pub\n");
    assert_eq!(names("expose=81"), "");
}

#[test]
fn names_resolve_on_user_defined_networks() {
    let Some(g) = guard() else {
        return;
    };
    g.ok(&["network", "create", "appnet"]);
    let www = g.env.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "from db\n").unwrap();
    let vol = format!("{}:/www", www.display());
    g.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "appnet",
        "--network-alias",
        "database",
        "-v",
        &vol,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let db_ip = g.inspect("db", "{{.NetworkSettings.Networks.appnet.IPAddress}}");
    let short = g
        .ok(&["ps", "-q", "--filter", "name=db"])
        .trim()
        .to_string();
    // By name, alias and short id, through getaddrinfo (ping, wget) and DNS (nslookup).
    let out = g.ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "--dns",
        NO_UPSTREAM,
        "busybox",
        "sh",
        "-c",
        &format!(
            "ping -c1 -W3 db && ping -c1 -W3 database && ping -c1 -W3 {short} && \
             wget -q -O - http://db/ && wget -q -O - http://database/ && \
             nslookup db 127.0.0.11 && nslookup database 127.0.0.11"
        ),
    ]);
    assert!(out.contains(&format!("PING db ({db_ip})")), "{out}");
    assert_eq!(out.matches("from db").count(), 2, "{out}");
    assert!(out.contains(&format!("Address: {db_ip}")), "{out}");
    // A peer that starts later is seen by one already running, and vanishes on removal.
    g.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "appnet",
        "--dns",
        NO_UPSTREAM,
        "busybox",
        "sleep",
        "300",
    ]);
    g.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "appnet",
        "busybox",
        "sleep",
        "300",
    ]);
    let late_ip = g.inspect("late", "{{.NetworkSettings.Networks.appnet.IPAddress}}");
    let seen = g.ok(&["exec", "client", "nslookup", "late", "127.0.0.11"]);
    assert!(seen.contains(&format!("Address: {late_ip}")), "{seen}");
    g.ok(&["exec", "client", "ping", "-c1", "-W3", "late"]);
    g.ok(&["rm", "-f", "late"]);
    let gone = g.run(&["exec", "client", "ping", "-c1", "-W1", "late"]);
    assert_ne!(gone.status.code(), Some(0), "{:?}", text(&gone));
    // The network is in use until its containers go, then rm works.
    let out = g.run(&["network", "rm", "appnet"]);
    assert_fails(&out, 1, "has active endpoints");
    let id = g.ok(&["network", "inspect", "-f", "{{.Id}}", "appnet"]);
    let bridge = format!("wh-{}", &id[..12]);
    assert!(links().contains(&bridge));
    g.ok(&["rm", "-f", "db", "client"]);
    g.ok(&["network", "rm", "appnet"]);
    assert!(!links().contains(&bridge));
}

#[test]
fn links_none_and_host_networking() {
    let Some(g) = guard() else {
        return;
    };
    g.ok(&[
        "run",
        "-d",
        "--name",
        "target",
        "--expose",
        "5432",
        "-e",
        "DB_USER=app",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip = g.inspect("target", "{{.NetworkSettings.IPAddress}}");
    let env = g.ok(&[
        "run",
        "--rm",
        "--name",
        "web",
        "--link",
        "target:my-db",
        "busybox",
        "env",
    ]);
    for want in [
        "MY_DB_NAME=/web/my-db".to_string(),
        format!("MY_DB_PORT=tcp://{ip}:5432"),
        format!("MY_DB_PORT_5432_TCP_ADDR={ip}"),
        "MY_DB_PORT_5432_TCP_PROTO=tcp".to_string(),
        "MY_DB_ENV_DB_USER=app".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing: {env}");
    }
    let hosts = g.ok(&[
        "run",
        "--rm",
        "--link",
        "target:tgt",
        "--dns",
        NO_UPSTREAM,
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts && ping -c1 -W3 tgt",
    ]);
    assert!(hosts.contains(&format!("{ip}\ttgt ")), "{hosts}");
    assert!(hosts.contains("1 packets received"), "{hosts}");
    let out = g.run(&["run", "--rm", "--link", "nosuch:x", "busybox", "true"]);
    assert_fails(&out, 125, "No such container: nosuch");
    let none = g.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(none.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);
    let host = g.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let mut mine: Vec<String> = links().into_iter().collect();
    mine.sort();
    let mut theirs: Vec<String> = host.split_whitespace().map(String::from).collect();
    theirs.sort();
    assert!(
        theirs.contains(&"lo".to_string()) && theirs.len() > 1,
        "{host}"
    );
    assert!(
        theirs
            .iter()
            .all(|l| mine.contains(l) || l.starts_with("wh")),
        "{host}"
    );
    // --dns, --add-host and --hostname reach the name files.
    let out = g.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "--dns",
        "192.0.2.53",
        "--add-host",
        "gw:host-gateway",
        "--add-host",
        "peer:192.0.2.7",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts; hostname",
    ]);
    assert!(out.contains("nameserver 192.0.2.53"), "{out}");
    assert!(out.contains("192.0.2.7\tpeer"), "{out}");
    assert!(out.contains("\tbox\n") && out.ends_with("box\n"), "{out}");
    let gw = g.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        "bridge",
    ]);
    assert!(out.contains(&format!("{}\tgw", gw.trim())), "{out}");
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let Some(g) = guard() else {
        return;
    };
    g.ok(&[
        "network",
        "create",
        "--subnet",
        "10.213.7.0/24",
        "--gateway",
        "10.213.7.254",
        "--ip-range",
        "10.213.7.128/25",
        "--label",
        "team=qa",
        "-o",
        "com.docker.network.bridge.name=whqa0",
        "qa",
    ]);
    let inspect = g.ok(&["network", "inspect", "qa"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.213.7.0/24");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "10.213.7.254");
    assert_eq!(v[0]["Labels"]["team"], "qa");
    assert!(links().contains("whqa0"));
    let ls = g.ok(&[
        "network",
        "ls",
        "--filter",
        "label=team=qa",
        "--format",
        "{{.Name}} {{.Driver}}",
    ]);
    assert_eq!(ls, "qa bridge\n");
    g.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]);
    g.ok(&[
        "network",
        "connect",
        "--alias",
        "boxy",
        "--ip",
        "10.213.7.200",
        "qa",
        "box",
    ]);
    let addrs = g.ok(&["exec", "box", "ip", "-4", "-o", "addr"]);
    assert!(
        addrs.contains("eth1") && addrs.contains("10.213.7.200/24"),
        "{addrs}"
    );
    let inspect = g.ok(&["network", "inspect", "qa"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let containers = v[0]["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 1);
    let entry = containers.values().next().unwrap();
    assert_eq!(entry["Name"], "box");
    assert_eq!(entry["IPv4Address"], "10.213.7.200/24");
    assert_eq!(entry["MacAddress"], "02:42:0a:d5:07:c8");
    let out = g.run(&["network", "connect", "qa", "box"]);
    assert_fails(&out, 1, "already exists in network qa");
    let out = g.run(&["network", "rm", "bridge"]);
    assert_fails(
        &out,
        1,
        "bridge is a pre-defined network and cannot be removed",
    );
    g.ok(&["network", "disconnect", "qa", "box"]);
    let addrs = g.ok(&["exec", "box", "ip", "-4", "-o", "addr"]);
    assert!(!addrs.contains("10.213.7."), "{addrs}");
    g.ok(&["rm", "-f", "box"]);
    assert_eq!(
        g.ok(&["network", "prune", "-f"]),
        "Deleted Networks:\nqa\n\n"
    );
    assert!(!links().contains("whqa0"));
}

#[test]
fn fifty_concurrent_runs_get_distinct_addresses_and_ports() {
    let Some(g) = guard() else {
        return;
    };
    // 50 free ports from just below the kernel's ephemeral range: between this check and
    // wharf's bind no outgoing connection of a test running alongside can take one, as one
    // took a port the kernel had picked for port 0 here, nor can `free_port` give one.
    let ports = port_block(50);
    let handles: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut cmd = g.command(&[
                "run",
                "-d",
                "--name",
                &format!("c{i}"),
                "-p",
                &format!("127.0.0.1:{p}:80"),
                "busybox",
                "sleep",
                "300",
            ]);
            std::thread::spawn(move || cmd.output().unwrap())
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{:?}", text(&out));
    }
    let mut ips = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let line = g.inspect(&format!("c{i}"), "{{.NetworkSettings.IPAddress}}");
        assert!(!line.is_empty());
        assert!(ips.insert(line.clone()), "address {line} given twice");
        assert_eq!(
            g.ok(&["port", &format!("c{i}"), "80"]),
            format!("127.0.0.1:{port}\n")
        );
    }
    assert_eq!(veths(&g).len(), 50);
    assert_eq!(rules(&g).matches("dnat to").count(), 50);
}

#[test]
fn a_killed_monitor_leaves_nothing_after_rm_and_prune() {
    let Some(g) = guard() else {
        return;
    };
    let port = free_port();
    g.ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "300",
    ]);
    let monitor = g.monitor_of("victim");
    let netns = g.env.root().join("netns");
    assert_eq!(std::fs::read_dir(&netns).unwrap().count(), 1);
    assert_eq!(veths(&g).len(), 1);
    // SAFETY: kill has no memory preconditions; the pid is the monitor this test started.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    g.until(10, "the monitor to die", || {
        (!std::path::Path::new(&format!("/proc/{monitor}/status")).exists()
            || std::fs::read_to_string(format!("/proc/{monitor}/status"))
                .unwrap_or_default()
                .contains("State:\tZ"))
        .then_some(())
    });
    // A reboot-like loss of the namespace's mount must not stop the teardown either.
    let ns_file = std::fs::read_dir(&netns)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let _ = std::process::Command::new("umount")
        .arg("-l")
        .arg(&ns_file)
        .status();
    g.ok(&["rm", "-f", "victim"]);
    g.ok(&["system", "prune", "-f"]);
    assert_eq!(std::fs::read_dir(&netns).map(|d| d.count()).unwrap_or(0), 0);
    assert!(veths(&g).is_empty(), "{:?}", veths(&g));
    let r = rules(&g);
    assert!(!r.contains("dnat to"), "{r}");
    assert!(r.contains("jump ports"), "{r}");
    assert!(TcpListener::bind(("0.0.0.0", port)).is_ok());
    g.assert_clean();
}

#[test]
fn internal_networks_fixed_addresses_and_lookups_while_peers_churn() {
    let Some(g) = guard() else {
        return;
    };
    g.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.214.0.0/24",
        "inner",
    ]);
    let out = g.ok(&[
        "run",
        "--rm",
        "--network",
        "inner",
        "--ip",
        "10.214.0.77",
        "--mac-address",
        "02:00:00:00:00:77",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip link show eth0; ip route",
    ]);
    assert!(out.contains("10.214.0.77/24"), "{out}");
    assert!(out.contains("02:00:00:00:00:77"), "{out}");
    assert!(
        !out.contains("default"),
        "an internal network has no way out: {out}"
    );
    let id = g.ok(&["network", "inspect", "-f", "{{.Id}}", "inner"]);
    let r = rules(&g);
    assert!(
        r.contains(&format!(
            "iifname \"wh-{}\" oifname != \"wh-{}\" drop",
            &id[..12],
            &id[..12]
        )),
        "{r}"
    );
    let out = g.run(&[
        "run",
        "--rm",
        "--network",
        "inner",
        "--ip",
        "10.99.0.1",
        "busybox",
        "true",
    ]);
    assert_fails(
        &out,
        125,
        "Invalid address 10.99.0.1: It does not belong to any of this network's subnets",
    );
    g.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "inner",
        "--ip",
        "10.214.0.5",
        "busybox",
        "sleep",
        "300",
    ]);
    let out = g.run(&[
        "run",
        "--rm",
        "--network",
        "inner",
        "--ip",
        "10.214.0.5",
        "busybox",
        "true",
    ]);
    assert_fails(&out, 125, "Address already in use");
    g.ok(&["rm", "-f", "holder"]);
    assert_eq!(g.ok(&["ps", "-aq"]), "");
    // A name keeps resolving while other containers start and stop on the network.
    g.ok(&["network", "create", "churn"]);
    g.ok(&[
        "run",
        "-d",
        "--name",
        "stable",
        "--network",
        "churn",
        "busybox",
        "sleep",
        "300",
    ]);
    g.ok(&[
        "run", "-d", "--name", "asker", "--network", "churn", "--dns", NO_UPSTREAM, "busybox", "sh", "-c",
        "while :; do nslookup stable 127.0.0.11 >/dev/null 2>&1 && echo ok || echo FAIL; done > /tmp/log",
    ]);
    for i in 0..8 {
        g.ok(&[
            "run",
            "-d",
            "--name",
            &format!("x{i}"),
            "--network",
            "churn",
            "busybox",
            "sleep",
            "300",
        ]);
    }
    for i in 0..8 {
        g.ok(&["rm", "-f", &format!("x{i}")]);
    }
    let log = g.ok(&["exec", "asker", "cat", "/tmp/log"]);
    assert!(log.lines().filter(|l| *l == "ok").count() > 10, "{log}");
    assert!(!log.contains("FAIL"), "a lookup failed while peers churned");
}
