//! Published ports: docker's `-p [ip:][hostPort:]containerPort[/proto]` (ranges included)
//! and `--expose` parsed into PortBindings and ExposedPorts, and the host ports taken. A
//! host port is taken by binding a socket to it (never listening: the DNAT rule sends the
//! traffic on before any socket sees it) that the container's monitor holds while the
//! container runs. The kernel decides who gets a port, atomically, against every host
//! process and every other container; an ephemeral port is the one it picks for port 0.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    #[error("invalid proto: {0}")]
    Proto(String),
    #[error("invalid IP address: {0}")]
    Ip(String),
    #[error("invalid ranges specified for container and host Ports: {0} and {1}")]
    Ranges(String, String),
    #[error("Bind for {0} failed: port is already allocated")]
    Allocated(String),
    #[error("binding {0}: {1}")]
    Bind(String, nix::Error),
}

/// One host side of a published port, with docker's field names ("" means any address,
/// or an ephemeral port; a port may be a range `a-b` to pick from).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// docker's map from "80/tcp" to its host bindings.
pub type PortMap = BTreeMap<String, Vec<PortBinding>>;

fn port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0 && a <= b).then_some((a, b))
}

fn split_proto(s: &str) -> Result<(&str, &str), PortError> {
    let (port, proto) = s.rsplit_once('/').unwrap_or((s, "tcp"));
    match proto {
        "tcp" | "udp" => Ok((port, proto)),
        p => Err(PortError::Proto(p.to_string())),
    }
}

/// Adds the ports of one `-p` value to `bindings`.
pub fn parse_publish(spec: &str, bindings: &mut PortMap) -> Result<(), PortError> {
    let (rest, proto) = split_proto(spec)?;
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (container, host_port, host_ip) = match parts.as_slice() {
        [c] => (*c, "", ""),
        [c, h] => (*c, *h, ""),
        [c, h, ip] => (*c, *h, ip.trim_start_matches('[').trim_end_matches(']')),
        _ => unreachable!("rsplitn(3) yields one to three parts"),
    };
    if !host_ip.is_empty() && host_ip.parse::<Ipv4Addr>().is_err() {
        return Err(PortError::Ip(host_ip.to_string()));
    }
    let (c0, c1) =
        port_range(container).ok_or_else(|| PortError::ContainerPort(container.into()))?;
    let host = if host_port.is_empty() {
        None
    } else {
        Some(port_range(host_port).ok_or_else(|| PortError::HostPort(host_port.into()))?)
    };
    let n = c1 - c0;
    if let Some((h0, h1)) = host {
        // One container port may take any port of a host range; otherwise the lengths match.
        if n > 0 && h1 - h0 != n {
            return Err(PortError::Ranges(container.into(), host_port.into()));
        }
    }
    for i in 0..=n {
        let host_port = match host {
            None => String::new(),
            Some((h0, h1)) if n == 0 && h1 > h0 => format!("{h0}-{h1}"),
            Some((h0, _)) => (h0 + i).to_string(),
        };
        bindings
            .entry(format!("{}/{proto}", c0 + i))
            .or_default()
            .push(PortBinding {
                host_ip: host_ip.to_string(),
                host_port,
            });
    }
    Ok(())
}

/// The keys ("80/tcp") of one `--expose` value (a port or a range).
pub fn parse_expose(spec: &str) -> Result<Vec<String>, PortError> {
    let (rest, proto) = split_proto(spec)?;
    let (a, b) = port_range(rest).ok_or_else(|| PortError::ContainerPort(rest.into()))?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// A host port the container holds: where, and the socket that keeps it.
#[derive(Debug)]
pub struct Held {
    pub key: String,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub socket: OwnedFd,
}

fn bind_one(proto: &str, ip: Ipv4Addr, port: u16) -> Result<(OwnedFd, u16), nix::Error> {
    let kind = if proto == "udp" {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(ip, port)),
    )?;
    let got: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
    Ok((fd, got.port()))
}

/// Takes the host port of one binding of `key`; a range is tried port by port.
pub fn take(key: &str, b: &PortBinding) -> Result<Held, PortError> {
    let proto = key.rsplit_once('/').map(|(_, p)| p).unwrap_or("tcp");
    let host_ip: Option<Ipv4Addr> = if b.host_ip.is_empty() {
        None
    } else {
        Some(
            b.host_ip
                .parse()
                .map_err(|_| PortError::Ip(b.host_ip.clone()))?,
        )
    };
    let ip = host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let (lo, hi) = if b.host_port.is_empty() {
        (0, 0)
    } else {
        port_range(&b.host_port).ok_or_else(|| PortError::HostPort(b.host_port.clone()))?
    };
    let mut last = nix::Error::EADDRINUSE;
    for port in lo..=hi {
        match bind_one(proto, ip, port) {
            Ok((socket, host_port)) => {
                return Ok(Held {
                    key: key.to_string(),
                    host_ip,
                    host_port,
                    socket,
                })
            }
            Err(e) => last = e,
        }
    }
    let at = if lo == hi {
        format!("{ip}:{lo}")
    } else {
        format!("{ip}:{lo}-{hi}")
    };
    Err(match last {
        nix::Error::EADDRINUSE => PortError::Allocated(at),
        e => PortError::Bind(at, e),
    })
}

/// The bindings to take at start: the explicit ones, and with `-P` an ephemeral port for
/// every exposed port without one.
pub fn wanted(bindings: &PortMap, exposed: &[String], publish_all: bool) -> PortMap {
    let mut out = bindings.clone();
    if publish_all {
        for k in exposed {
            out.entry(k.clone())
                .or_insert_with(|| vec![PortBinding::default()]);
        }
    }
    out
}

/// Takes every port of `map`, or none: on failure the ones taken are released.
pub fn take_all(map: &PortMap) -> Result<Vec<Held>, PortError> {
    let mut held = Vec::new();
    for (key, bs) in map {
        for b in bs {
            held.push(take(key, b)?);
        }
    }
    Ok(held)
}

/// docker's sort of port keys: by number, then protocol.
pub fn sort_key(k: &str) -> (u16, String) {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    (p.parse().unwrap_or(0), proto.to_string())
}

/// docker's PORTS column: published ports as `ip:host->port/proto`, exposed ones as
/// `port/proto`, sorted by container port.
pub fn display(published: &PortMap, exposed: &[String]) -> String {
    let mut keys: Vec<&String> = exposed.iter().chain(published.keys()).collect();
    keys.sort_by_key(|k| sort_key(k));
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        match published.get(k) {
            Some(bs) if !bs.is_empty() => {
                for b in bs {
                    out.push(format!("{}:{}->{k}", b.host_ip, b.host_port));
                }
            }
            _ => out.push(k.clone()),
        }
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PortMap, PortError> {
        let mut m = PortMap::new();
        parse_publish(s, &mut m).map(|_| m)
    }

    fn b(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn publish_specs_parse_as_docker_does() {
        assert_eq!(parse("80").unwrap()["80/tcp"], vec![b("", "")]);
        assert_eq!(parse("8080:80").unwrap()["80/tcp"], vec![b("", "8080")]);
        assert_eq!(
            parse("127.0.0.1:8080:80/udp").unwrap()["80/udp"],
            vec![b("127.0.0.1", "8080")]
        );
        assert_eq!(
            parse("127.0.0.1::80").unwrap()["80/tcp"],
            vec![b("127.0.0.1", "")]
        );
        let m = parse("8000-8001:80-81").unwrap();
        assert_eq!(m["80/tcp"], vec![b("", "8000")]);
        assert_eq!(m["81/tcp"], vec![b("", "8001")]);
        assert_eq!(
            parse("8000-8010:80").unwrap()["80/tcp"],
            vec![b("", "8000-8010")]
        );
        assert_eq!(parse("80-81").unwrap().len(), 2);
        assert_eq!(parse("x:80"), Err(PortError::HostPort("x".into())));
        assert_eq!(parse("80/sctpx"), Err(PortError::Proto("sctpx".into())));
        assert_eq!(parse("1.2.3:80:80"), Err(PortError::Ip("1.2.3".into())));
        assert_eq!(parse("0"), Err(PortError::ContainerPort("0".into())));
        assert_eq!(
            parse("8000-8002:80-81"),
            Err(PortError::Ranges("80-81".into(), "8000-8002".into()))
        );
        assert_eq!(parse_expose("80-81/udp").unwrap(), vec!["80/udp", "81/udp"]);
    }

    #[test]
    fn ports_column_is_dockers() {
        let mut m = PortMap::new();
        m.insert("80/tcp".into(), vec![b("0.0.0.0", "8080")]);
        let shown = display(&m, &["443/tcp".into(), "80/tcp".into(), "53/udp".into()]);
        assert_eq!(shown, "53/udp, 0.0.0.0:8080->80/tcp, 443/tcp");
    }

    #[test]
    fn a_taken_port_is_refused_with_dockers_words() {
        let a = take("80/tcp", &b("127.0.0.1", "")).unwrap();
        assert!(a.host_port > 0);
        let again = take("80/tcp", &b("127.0.0.1", &a.host_port.to_string()));
        assert_eq!(
            again.unwrap_err().to_string(),
            format!(
                "Bind for 127.0.0.1:{} failed: port is already allocated",
                a.host_port
            )
        );
        // A range skips the taken port.
        let range = format!("{}-{}", a.host_port, a.host_port.saturating_add(20));
        let c = take("80/tcp", &b("127.0.0.1", &range)).unwrap();
        assert_ne!(c.host_port, a.host_port);
    }
}
