//! `update`: change a running container's resources, from a LinuxResources JSON (`-r FILE` or
//! `-r -` for stdin, as docker sends it) and runc's per-field flags, which win over the file.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use super::{status, Global};
use crate::state::Status;

#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    pub resources: Option<PathBuf>,
    pub blkio_weight: Option<u16>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_share: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpu_burst: Option<u64>,
    pub cpu_idle: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub pids_limit: Option<i64>,
}

/// Parses sizes as docker and runc do: `1024`, `64k`, `32m`, `1.5g` (binary multiples), `-1`.
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b').trim_end_matches('i');
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (num, unit) = trimmed.split_at(split);
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size {s:?}"))?;
    let mult: f64 = match unit.trim() {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("invalid size {s:?}"),
    };
    Ok((n * mult) as i64)
}

/// The requested resources as one LinuxResources: the file, then each flag on top.
pub fn requested(o: &UpdateOptions) -> anyhow::Result<LinuxResources> {
    let mut v: Value = match &o.resources {
        None => json!({}),
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading resources from stdin")?;
            serde_json::from_str(&s).context("resources from stdin")?
        }
        Some(p) => {
            serde_json::from_slice(&std::fs::read(p).with_context(|| format!("reading {p:?}"))?)
                .with_context(|| format!("{p:?}"))?
        }
    };
    let mut set = |section: &str, key: &str, value: Value| {
        if !v[section].is_object() {
            v[section] = json!({});
        }
        v[section][key] = value;
    };
    if let Some(w) = o.blkio_weight {
        set("blockIO", "weight", json!(w));
    }
    if let Some(x) = o.cpu_period {
        set("cpu", "period", json!(x));
    }
    if let Some(x) = o.cpu_quota {
        set("cpu", "quota", json!(x));
    }
    if let Some(x) = o.cpu_share {
        set("cpu", "shares", json!(x));
    }
    if let Some(x) = o.cpu_rt_period {
        set("cpu", "realtimePeriod", json!(x));
    }
    if let Some(x) = o.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", json!(x));
    }
    if let Some(x) = o.cpu_burst {
        set("cpu", "burst", json!(x));
    }
    if let Some(x) = o.cpu_idle {
        set("cpu", "idle", json!(x));
    }
    if let Some(x) = &o.cpuset_cpus {
        set("cpu", "cpus", json!(x));
    }
    if let Some(x) = &o.cpuset_mems {
        set("cpu", "mems", json!(x));
    }
    for (flag, key, value) in [
        ("--memory", "limit", &o.memory),
        ("--memory-reservation", "reservation", &o.memory_reservation),
        ("--memory-swap", "swap", &o.memory_swap),
    ] {
        if let Some(s) = value {
            let n = parse_bytes(s).with_context(|| format!("{flag} {s:?}"))?;
            set("memory", key, json!(n));
        }
    }
    if let Some(x) = o.pids_limit {
        set("pids", "limit", json!(x));
    }
    serde_json::from_value(v).context("resources")
}

pub fn update(g: &Global, id: &str, o: &UpdateOptions) -> anyhow::Result<()> {
    let resources = requested(o)?;
    let (dir, state) = g.store().open(id)?;
    if status(&state, &dir.path) == Status::Stopped {
        bail!("container not running");
    }
    super::container_cgroup(g, &state, id)?.apply(&resources)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("12qb").is_err());
    }

    #[test]
    fn flags_win_over_the_file_values() {
        let o = UpdateOptions {
            memory: Some("64m".into()),
            cpu_quota: Some(50000),
            pids_limit: Some(10),
            ..Default::default()
        };
        let r = requested(&o).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50000));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 10);
    }
}
