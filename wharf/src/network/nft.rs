//! wharf's own nftables table (one per data root, so two data roots never touch each
//! other's rules, and the host's tables are left alone): DNAT of published ports, the
//! masquerades bridges need, the drop that keeps a 127.0.0.1-published port from other
//! hosts (moby#41872), and the isolation of internal networks. Every rule carries the id
//! of its owner (a container, or `net:<id>` for a network) as its comment: a container's
//! ports are added and removed as single rules, never by rewriting the ruleset.
//! Commands go to `nft -j` through the `nftables` crate.

use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use nftables::helper::{self, NftablesError};
use nftables::schema::{NfListObject, NfObject, Nftables};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nftables: {0}")]
    Run(String),
    #[error("nftables: building a command: {0}")]
    Build(#[from] serde_json::Error),
}

impl From<NftablesError> for NftError {
    fn from(e: NftablesError) -> Self {
        match e {
            NftablesError::NftFailed { stderr, hint, .. } => {
                NftError::Run(format!("{hint}: {}", stderr.trim()))
            }
            e => NftError::Run(e.to_string()),
        }
    }
}

/// The table of the data root at `root`.
pub fn table(root: &Path) -> String {
    let path = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let sum = Sha256::digest(path.as_os_str().as_encoded_bytes());
    format!("wharf_{}", &hex::encode(sum)[..8])
}

/// One published port, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub proto: String,
    /// None: every local address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub addr: Ipv4Addr,
    pub port: u16,
}

fn apply(commands: Vec<Value>) -> Result<(), NftError> {
    let doc: Nftables = serde_json::from_value(json!({ "nftables": commands }))?;
    helper::apply_ruleset(&doc)?;
    Ok(())
}

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn ne(left: Value, right: Value) -> Value {
    json!({"match": {"op": "!=", "left": left, "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn fib_local(flag: &str) -> Value {
    eq(
        json!({"fib": {"result": "type", "flags": [flag]}}),
        json!("local"),
    )
}

fn prefix(net: &Ipv4Net) -> Value {
    json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}})
}

fn rule(t: &str, chain: &str, comment: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": "ip", "table": t, "chain": chain,
        "comment": comment, "expr": expr}}})
}

fn base_chain(t: &str, name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({"add": {"chain": {"family": "ip", "table": t, "name": name,
        "type": kind, "hook": hook, "prio": prio, "policy": "accept"}}})
}

/// Makes the table and its chains; run before any rule goes in. The hook chains are
/// flushed and refilled in the same atomic batch, so running it twice (or in two
/// processes at once) leaves one copy of each jump.
pub fn ensure_table(t: &str) -> Result<(), NftError> {
    let jump = |chain: &str| {
        json!({"add": {"rule": {"family": "ip", "table": t, "chain": chain,
            "expr": [fib_local("daddr"), {"jump": {"target": "ports"}}]}}})
    };
    let flush =
        |chain: &str| json!({"flush": {"chain": {"family": "ip", "table": t, "name": chain}}});
    apply(vec![
        json!({"add": {"table": {"family": "ip", "name": t}}}),
        json!({"add": {"chain": {"family": "ip", "table": t, "name": "ports"}}}),
        base_chain(t, "prerouting", "nat", "prerouting", -100),
        base_chain(t, "output", "nat", "output", -100),
        base_chain(t, "postrouting", "nat", "postrouting", 100),
        base_chain(t, "forward", "filter", "forward", 0),
        base_chain(t, "guard", "filter", "prerouting", -300),
        flush("prerouting"),
        flush("output"),
        jump("prerouting"),
        jump("output"),
    ])
}

/// The rules of a bridge network: masquerade of what leaves it for the outside (unless
/// internal), of DNATed traffic that came from the host itself (127.0.0.1 needs it, with
/// route_localnet on the bridge) or from the same subnet (hairpin); for an internal
/// network, a drop of everything crossing its bridge.
pub fn add_network(
    t: &str,
    id: &str,
    bridge: &str,
    subnet: &Ipv4Net,
    internal: bool,
) -> Result<(), NftError> {
    let tag = format!("net:{id}");
    let oif = || eq(meta("oifname"), json!(bridge));
    let dnat =
        || json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}});
    let masq = json!({"masquerade": null});
    let mut rules = vec![
        rule(
            t,
            "postrouting",
            &tag,
            vec![oif(), dnat(), fib_local("saddr"), masq.clone()],
        ),
        rule(
            t,
            "postrouting",
            &tag,
            vec![
                oif(),
                dnat(),
                eq(payload("ip", "saddr"), prefix(subnet)),
                masq.clone(),
            ],
        ),
    ];
    if internal {
        for (a, b) in [("iifname", "oifname"), ("oifname", "iifname")] {
            rules.push(rule(
                t,
                "forward",
                &tag,
                vec![
                    eq(meta(a), json!(bridge)),
                    ne(meta(b), json!(bridge)),
                    json!({"drop": null}),
                ],
            ));
        }
    } else {
        rules.push(rule(
            t,
            "postrouting",
            &tag,
            vec![
                eq(payload("ip", "saddr"), prefix(subnet)),
                ne(meta("oifname"), json!(bridge)),
                masq,
            ],
        ));
    }
    apply(rules)
}

/// DNAT rules for a container's published ports (and the loopback guard of those
/// published on a 127.0.0.0/8 address), tagged with the container's id.
pub fn add_forwards(t: &str, owner: &str, fwds: &[Forward]) -> Result<(), NftError> {
    if fwds.is_empty() {
        return Ok(());
    }
    let mut rules = Vec::new();
    for f in fwds {
        let mut m = Vec::new();
        if let Some(ip) = f.host_ip {
            m.push(eq(payload("ip", "daddr"), json!(ip.to_string())));
        }
        m.push(eq(payload(&f.proto, "dport"), json!(f.host_port)));
        let mut dnat = m.clone();
        dnat.push(json!({"dnat": {"addr": f.addr.to_string(), "port": f.port}}));
        rules.push(rule(t, "ports", owner, dnat));
        if f.host_ip.is_some_and(|ip| ip.is_loopback()) {
            let mut guard = vec![ne(meta("iifname"), json!("lo"))];
            guard.extend(m);
            guard.push(json!({"drop": null}));
            rules.push(rule(t, "guard", owner, guard));
        }
    }
    apply(rules)
}

/// Deletes every rule of the table whose comment is `owner`; a missing table has none.
pub fn remove_owner(t: &str, owner: &str) -> Result<(), NftError> {
    remove_where(t, |c| c == owner)
}

/// Deletes every rule whose comment `doomed` picks; the table's own rules (the hook
/// chains' jumps) carry none and are never picked.
pub fn remove_where(t: &str, doomed: impl Fn(&str) -> bool) -> Result<(), NftError> {
    let Some(rules) = rules(t, None)? else {
        return Ok(());
    };
    let deletes: Vec<Value> = rules
        .iter()
        .filter(|(_, _, c)| !c.is_empty() && doomed(c))
        .map(|(chain, handle, _)| {
            json!({"delete": {"rule": {"family": "ip", "table": t, "chain": chain,
                "handle": handle, "expr": []}}})
        })
        .collect();
    if deletes.is_empty() {
        return Ok(());
    }
    apply(deletes)
}

/// Whether network `id` has its rules. Only the postrouting chain is read, where every
/// bridge network has rules and no container has any: its size does not grow with the
/// number of containers or ports.
pub fn has_network(t: &str, id: &str) -> Result<bool, NftError> {
    let tag = format!("net:{id}");
    Ok(rules(t, Some("postrouting"))?
        .unwrap_or_default()
        .iter()
        .any(|(_, _, c)| *c == tag))
}

/// A rule as listed: its chain, handle and comment.
type Listed = (String, u32, String);

/// Every rule of the table, or of one of its chains; None when the table does not exist.
fn rules(t: &str, chain: Option<&str>) -> Result<Option<Vec<Listed>>, NftError> {
    let args: Vec<&str> = match chain {
        Some(c) => vec!["list", "chain", "ip", t, c],
        None => vec!["list", "table", "ip", t],
    };
    let listed = helper::get_current_ruleset_with_args(helper::DEFAULT_NFT, args.iter());
    let doc = match listed {
        Ok(d) => d,
        Err(NftablesError::NftFailed { stderr, .. }) if stderr.contains("No such file") => {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Some(
        doc.objects
            .iter()
            .filter_map(|o| match o {
                NfObject::ListObject(NfListObject::Rule(r)) => Some((
                    r.chain.to_string(),
                    r.handle.unwrap_or(0),
                    r.comment.as_ref().map(Cow::to_string).unwrap_or_default(),
                )),
                _ => None,
            })
            .collect(),
    ))
}
