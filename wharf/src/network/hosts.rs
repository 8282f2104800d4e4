//! The name files of a bridged container: /etc/hosts (localhost, `--add-host`, links,
//! its own address and name, and the peers it shares a user-defined network with),
//! /etc/resolv.conf (the host's resolvers minus loopback ones, as docker does, or
//! `--dns`; the container's own resolver on user-defined networks) and the rewriting of
//! a running peer's hosts file in place: the file is bind-mounted, so a rename would not
//! reach the container, and it never shrinks under a reader (shorter text is padded).

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::bundle::defaults;

/// One name line: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub address: String,
    pub names: Vec<String>,
}

/// The hosts file text: docker's defaults, the extra entries, the container's own line,
/// then its peers.
pub fn hosts_text(extra: &[Entry], own: Option<&Entry>, peers: &[Entry]) -> String {
    let mut s = defaults::HOSTS.to_string();
    for e in extra.iter().chain(own).chain(peers) {
        s.push_str(&format!("{}\t{}\n", e.address, e.names.join(" ")));
    }
    s
}

/// Parses `--add-host name:ip` (docker also takes `name=ip`; `host-gateway` is the
/// gateway of the container's network).
pub fn parse_add_host(spec: &str, gateway: Option<&str>) -> Option<Entry> {
    let (name, ip) = spec.split_once('=').or_else(|| spec.split_once(':'))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip = if ip == "host-gateway" { gateway? } else { ip };
    (!name.is_empty() && ip.parse::<std::net::IpAddr>().is_ok()).then(|| Entry {
        address: ip.to_string(),
        names: vec![name.to_string()],
    })
}

/// resolv.conf for a container with a network of its own. `dns`, `search` and `options`
/// replace the host's (docker's `--dns*`); loopback resolvers of the host cannot be
/// reached from the container and are dropped, docker's public fallback taking their
/// place when none is left. `own` is the container's own resolver, listed alone (it
/// forwards to the others).
pub fn resolv_text(
    host: &str,
    dns: &[String],
    search: &[String],
    options: &[String],
    own: Option<&str>,
) -> String {
    let mut servers: Vec<String> = Vec::new();
    let mut host_search = Vec::new();
    let mut host_options = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(a) = words.next() {
                    servers.push(a.to_string());
                }
            }
            Some("search") | Some("domain") => host_search = words.map(String::from).collect(),
            Some("options") => host_options.extend(words.map(String::from)),
            _ => {}
        }
    }
    let mut servers = if dns.is_empty() {
        upstreams(&servers)
    } else {
        dns.to_vec()
    };
    if let Some(own) = own {
        servers = vec![own.to_string()];
    }
    let search = if search.is_empty() {
        host_search
    } else {
        search.to_vec()
    };
    let options = if options.is_empty() {
        host_options
    } else {
        options.to_vec()
    };
    let mut s = String::new();
    for n in servers {
        s.push_str(&format!("nameserver {n}\n"));
    }
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}

/// The resolvers a container can reach: the host's without loopback ones, or docker's
/// fallback.
pub fn upstreams(host_servers: &[String]) -> Vec<String> {
    let servers: Vec<String> = host_servers
        .iter()
        .filter(|a| {
            a.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .cloned()
        .collect();
    if servers.is_empty() {
        vec!["8.8.8.8".into(), "8.8.4.4".into()]
    } else {
        servers
    }
}

/// The nameservers of the host's resolv.conf.
pub fn host_servers() -> Vec<String> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .map(|a| a.trim().to_string())
        .collect()
}

/// Replaces the text of `path` in place (see the module comment) with what `text`
/// computes while the file is locked against other writers. A file not written yet is
/// left alone: a container starting at this moment computes its own text once its
/// file exists (`network::rewrite_own_hosts`), and sees every peer live by then.
pub fn rewrite<E: From<std::io::Error>>(
    path: &Path,
    text: impl FnOnce() -> Result<String, E>,
) -> Result<(), E> {
    let f = match std::fs::OpenOptions::new().write(true).open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        f => f?,
    };
    let mut f = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))?;
    let old = f.metadata()?.len() as usize;
    let mut data = text()?.into_bytes();
    if data.len() < old {
        data.resize(old, b'\n');
    }
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&data)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_drops_loopback_and_takes_overrides() {
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan\noptions edns0\n";
        assert_eq!(
            resolv_text(host, &[], &[], &[], None),
            "nameserver 10.0.0.2\nsearch lan\noptions edns0\n"
        );
        assert_eq!(
            resolv_text("nameserver 127.0.0.53\n", &[], &[], &[], None),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_text(
                host,
                &["1.1.1.1".into()],
                &["x.org".into()],
                &["ndots:2".into()],
                None
            ),
            "nameserver 1.1.1.1\nsearch x.org\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_text(host, &[], &[], &[], Some("127.0.0.11")),
            "nameserver 127.0.0.11\nsearch lan\noptions edns0\n"
        );
    }

    #[test]
    fn hosts_lines_and_add_host() {
        let e = parse_add_host("db:10.0.0.9", None).unwrap();
        assert_eq!(parse_add_host("db=10.0.0.9", None), Some(e.clone()));
        assert_eq!(
            parse_add_host("gw:host-gateway", Some("172.17.0.1"))
                .unwrap()
                .address,
            "172.17.0.1"
        );
        assert_eq!(parse_add_host("db:nope", None), None);
        let own = Entry {
            address: "172.17.0.2".into(),
            names: vec!["abc".into()],
        };
        let t = hosts_text(&[e], Some(&own), &[]);
        assert!(t.ends_with("10.0.0.9\tdb\n172.17.0.2\tabc\n"), "{t}");
    }

    #[test]
    fn rewrite_pads_shorter_text() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("hosts");
        std::fs::write(&p, "a long first text\n").unwrap();
        rewrite(&p, || Ok::<_, std::io::Error>("short\n".to_string())).unwrap();
        let got = std::fs::read_to_string(&p).unwrap();
        assert_eq!(got.trim_end(), "short");
        assert_eq!(got.len(), "a long first text\n".len());
    }
}
