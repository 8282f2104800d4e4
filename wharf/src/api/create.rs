//! `POST /containers/create`'s body (docker's Config, HostConfig and NetworkingConfig) as
//! wharf's create options. A field wharf does not implement is refused with a 400 naming
//! it when it asks for anything; the zero values clients send for every field pass.

use std::collections::BTreeMap;

use bollard_stubs::models::{ContainerConfig, EndpointSettings, HostConfig};
use serde_json::Value;

use super::ApiError;
use crate::container::create::Options;
use crate::container::{parse, RestartPolicy};
use crate::network::ports::PortMap;

/// Config fields wharf applies.
const CONFIG: &[&str] = &[
    "Hostname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "HostConfig",
    "NetworkingConfig",
    "OnBuild",
    "MacAddress",
    "ArgsEscaped",
    "Healthcheck",
];

/// HostConfig fields wharf applies.
const HOST: &[&str] = &[
    "Binds",
    "NetworkMode",
    "PortBindings",
    "RestartPolicy",
    "AutoRemove",
    "VolumesFrom",
    "CapAdd",
    "CapDrop",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "Links",
    "PidMode",
    "Privileged",
    "PublishAllPorts",
    "ReadonlyRootfs",
    "SecurityOpt",
    "Tmpfs",
    "Memory",
    "MemoryReservation",
    "NanoCpus",
    "CpusetCpus",
    "PidsLimit",
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "CpusetMems",
    "MemorySwap",
    "BlkioWeight",
    "Init",
    "Mounts",
    "Runtime",
    "ConsoleSize",
    "LogConfig",
    "ContainerIDFile",
    "CgroupnsMode",
    "Isolation",
    "MemorySwappiness",
    "VolumeDriver",
];

/// A value that asks for nothing: what clients send for an unset field.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_unset),
    }
}

pub(super) fn refuse_unknown(section: &str, obj: &Value, known: &[&str]) -> Result<(), ApiError> {
    let Some(map) = obj.as_object() else {
        return Ok(());
    };
    for (k, v) in map {
        if !known.contains(&k.as_str()) && !is_unset(v) {
            return Err(ApiError::bad_request(format!(
                "{section}{k} is not supported by wharf (value {v})"
            )));
        }
    }
    Ok(())
}

fn bad(field: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("{field}: {e}"))
}

/// Decodes `v` (the part of the body at `section`, "" for the top level), naming the field
/// whose value is wrong: "HostConfig.Memory: invalid type: string ...".
fn decode<T: serde::de::DeserializeOwned>(section: &str, v: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v.clone()).map_err(|e| {
        let path = e.path().to_string();
        let field = match (section, path.as_str()) {
            (s, ".") => s.to_string(),
            ("", p) => p.to_string(),
            (s, p) => format!("{s}.{p}"),
        };
        bad(&field, e.into_inner())
    })
}

/// Decodes the body into create options for `name`, with `runtime` as the default.
pub fn options(body: &[u8], name: Option<String>, runtime: &str) -> Result<Options, ApiError> {
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    if !raw.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    refuse_unknown("", &raw, CONFIG)?;
    refuse_unknown("HostConfig.", &raw["HostConfig"], HOST)?;
    let host_raw = &raw["HostConfig"];
    // Zero values that are still choices.
    for (field, allowed) in [
        ("LogConfig", &["", "json-file"][..]),
        ("CgroupnsMode", &["", "private", "host"][..]),
        ("Isolation", &["", "default"][..]),
        ("VolumeDriver", &["", "local"][..]),
    ] {
        let v = if field == "LogConfig" {
            &host_raw[field]["Type"]
        } else {
            &host_raw[field]
        };
        if let Some(s) = v.as_str().filter(|s| !allowed.contains(s)) {
            return Err(ApiError::bad_request(format!(
                "HostConfig.{field} {s:?} is not supported by wharf"
            )));
        }
    }
    if host_raw["MemorySwappiness"]
        .as_i64()
        .is_some_and(|v| v != -1)
    {
        return Err(ApiError::bad_request(
            "HostConfig.MemorySwappiness is not supported by wharf",
        ));
    }
    let cfg: ContainerConfig = decode("", &raw)?;
    let host: HostConfig = match host_raw {
        Value::Null => HostConfig::default(),
        v => decode("HostConfig", v)?,
    };
    let image = cfg
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::bad_request("Config.Image: an image is required"))?;
    let mut mounts = Vec::new();
    for b in host.binds.iter().flatten() {
        mounts.push(parse::volume(b).map_err(|e| bad("HostConfig.Binds", e))?);
    }
    for m in host.mounts.iter().flatten() {
        mounts.push(parse::mount(&mount_text(m)?).map_err(|e| bad("HostConfig.Mounts", e))?);
    }
    for (path, opts) in host.tmpfs.iter().flatten() {
        let spec = if opts.is_empty() {
            path.clone()
        } else {
            format!("{path}:{opts}")
        };
        mounts.push(parse::tmpfs(&spec).map_err(|e| bad("HostConfig.Tmpfs", e))?);
    }
    for v in host.volumes_from.iter().flatten() {
        parse::volumes_from(v).map_err(|e| bad("HostConfig.VolumesFrom", e))?;
    }
    let mut port_bindings = PortMap::new();
    for (port, list) in host.port_bindings.iter().flatten() {
        let bad_port = |e| bad("HostConfig.PortBindings", e);
        let bindings: Vec<_> = list.iter().flatten().collect();
        if bindings.is_empty() {
            for key in crate::network::ports::parse_expose(port).map_err(bad_port)? {
                port_bindings.entry(key).or_default();
            }
        }
        // Each binding as the `-p` text it stands for, so that one parser checks both.
        for b in bindings {
            let ip = b.host_ip.as_deref().unwrap_or_default();
            let host_port = b.host_port.as_deref().unwrap_or_default();
            crate::network::ports::parse_publish(
                &format!("{ip}:{host_port}:{port}"),
                &mut port_bindings,
            )
            .map_err(bad_port)?;
        }
    }
    let restart_policy = match &host.restart_policy {
        Some(p) => {
            let name = p
                .name
                .map(|n| n.to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "no".into());
            parse::restart_policy_parts(&name, p.maximum_retry_count.unwrap_or(0))
                .map_err(|e| bad("HostConfig.RestartPolicy", e))?
        }
        None => RestartPolicy {
            name: "no".into(),
            ..Default::default()
        },
    };
    let network = host
        .network_mode
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    // The endpoint settings of the container's network (docker's --ip, --network-alias,
    // --mac-address), whichever key the client used for it.
    let endpoint: Option<EndpointSettings> = raw["NetworkingConfig"]["EndpointsConfig"]
        .as_object()
        .and_then(|m| m.get(&network).or_else(|| m.values().next()))
        .map(|v| decode("NetworkingConfig.EndpointsConfig", v))
        .transpose()?;
    let ip = endpoint
        .as_ref()
        .and_then(|e| e.ipam_config.as_ref())
        .and_then(|i| i.ipv4_address.clone())
        .filter(|s| !s.is_empty());
    let aliases = endpoint
        .as_ref()
        .and_then(|e| e.aliases.clone())
        .unwrap_or_default();
    let mac = cfg
        .mac_address
        .clone()
        .or_else(|| endpoint.as_ref().and_then(|e| e.mac_address.clone()))
        .filter(|s| !s.is_empty());
    let list = |v: &Option<Vec<String>>| v.clone().filter(|v| !v.is_empty());
    let runtime_name = host
        .runtime
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| runtime.to_string());
    let runtime_path =
        crate::runtime::resolve(&runtime_name).map_err(|e| bad("HostConfig.Runtime", e))?;
    let labels: BTreeMap<String, String> =
        cfg.labels.clone().unwrap_or_default().into_iter().collect();
    // Parsed from the body, not bollard's model: API 1.41's has no StartInterval.
    let healthcheck = match &raw["Healthcheck"] {
        Value::Null => None,
        v => Some(decode::<crate::container::health::HealthConfig>(
            "Healthcheck",
            v,
        )?),
    };
    let mut expose = Vec::new();
    for key in cfg.exposed_ports.iter().flat_map(|m| m.keys()) {
        expose
            .extend(crate::network::ports::parse_expose(key).map_err(|e| bad("ExposedPorts", e))?);
    }
    Ok(Options {
        name,
        image,
        command: cfg.cmd.clone().unwrap_or_default(),
        entrypoint: cfg.entrypoint.clone(),
        env: cfg.env.clone().unwrap_or_default(),
        workdir: cfg.working_dir.clone().filter(|w| !w.is_empty()),
        user: cfg.user.clone().filter(|u| !u.is_empty()),
        hostname: cfg.hostname.clone().filter(|h| !h.is_empty()),
        interactive: cfg.open_stdin.unwrap_or(false),
        tty: cfg.tty.unwrap_or(false),
        attach: cfg.attach_stdout.unwrap_or(false) || cfg.attach_stderr.unwrap_or(false),
        labels: labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        stop_signal: cfg.stop_signal.clone().filter(|s| !s.is_empty()),
        stop_timeout: cfg.stop_timeout,
        host: crate::container::HostConfig {
            network_mode: network,
            port_bindings,
            publish_all_ports: host.publish_all_ports.unwrap_or(false),
            links: list(&host.links),
            dns: list(&host.dns),
            dns_search: list(&host.dns_search),
            dns_options: list(&host.dns_options),
            extra_hosts: list(&host.extra_hosts),
            restart_policy,
            auto_remove: host.auto_remove.unwrap_or(false),
            cap_add: list(&host.cap_add),
            cap_drop: list(&host.cap_drop),
            pid_mode: host.pid_mode.clone().unwrap_or_default(),
            privileged: host.privileged.unwrap_or(false),
            readonly_rootfs: host.readonly_rootfs.unwrap_or(false),
            runtime: runtime_name,
            memory: host.memory.unwrap_or(0),
            memory_reservation: host.memory_reservation.unwrap_or(0),
            nano_cpus: host.nano_cpus.unwrap_or(0),
            cpuset_cpus: host.cpuset_cpus.clone().unwrap_or_default(),
            pids_limit: host.pids_limit.filter(|l| *l != 0),
            cpu_shares: host.cpu_shares.unwrap_or(0),
            cpu_period: host.cpu_period.unwrap_or(0),
            cpu_quota: host.cpu_quota.unwrap_or(0),
            cpuset_mems: host.cpuset_mems.clone().unwrap_or_default(),
            memory_swap: host.memory_swap.unwrap_or(0),
            blkio_weight: host.blkio_weight.unwrap_or(0),
            init: host.init,
            security_opt: list(&host.security_opt),
            volumes_from: list(&host.volumes_from),
            ..Default::default()
        },
        mounts,
        runtime_path,
        join: crate::network::JoinOptions { ip, aliases, mac },
        expose,
        healthcheck,
    })
}

/// A structured mount as `--mount`'s text, so that one parser checks both.
fn mount_text(m: &bollard_stubs::models::Mount) -> Result<String, ApiError> {
    let kind = m
        .typ
        .map(|t| t.to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "volume".into());
    let mut parts = vec![format!("type={kind}")];
    if let Some(s) = m.source.as_ref().filter(|s| !s.is_empty()) {
        parts.push(format!("source={s}"));
    }
    let target = m
        .target
        .as_ref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("HostConfig.Mounts: Target is required"))?;
    parts.push(format!("target={target}"));
    if m.read_only == Some(true) {
        parts.push("readonly".into());
    }
    if let Some(p) = m.bind_options.as_ref().and_then(|b| b.propagation) {
        let p = p.to_string();
        if !p.is_empty() {
            parts.push(format!("bind-propagation={p}"));
        }
    }
    if m.volume_options.as_ref().and_then(|v| v.no_copy) == Some(true) {
        parts.push("volume-nocopy".into());
    }
    if let Some(t) = &m.tmpfs_options {
        if let Some(size) = t.size_bytes.filter(|s| *s > 0) {
            parts.push(format!("tmpfs-size={size}"));
        }
        if let Some(mode) = t.mode.filter(|m| *m > 0) {
            parts.push(format!("tmpfs-mode={mode:o}"));
        }
    }
    Ok(parts.join(","))
}
