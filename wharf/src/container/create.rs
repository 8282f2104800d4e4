//! `create`: an image and docker's options become a container record, a container
//! directory with its init layer and an empty upper layer. Docker's precedence applies:
//! `--entrypoint` drops the image's Cmd, arguments replace Cmd, `-e` overrides the
//! image's Env by key, `-w`/`-u` override WorkingDir/User. On any failure nothing is left.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::cp::{self, CpError};
use super::health::HealthConfig;
use super::rootfs::{remove_dir, Layout, RootfsError};
use super::{names, parse, Config, Container, ContainerError, HostConfig, Mount, Spec, State};
use crate::bundle::user::{self, UserError};
use crate::context::Context;
use crate::image::digest::Digest;
use crate::image::oci::ImageConfig;
use crate::image::ImageError;
use crate::volume::{self, VolumeError};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("No command specified")]
    NoCommand,
    #[error(transparent)]
    Name(#[from] names::InvalidName),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("filling a volume from the image: {0}")]
    CopyUp(#[from] CpError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// A value docker's daemon refuses (the message is docker's).
    #[error("{0}")]
    Invalid(String),
    #[error("creating {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<crate::store::StoreError> for CreateError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Container(e.into())
    }
}

/// What the command line asked for, before the image fills in the rest.
#[derive(Debug, Default)]
pub struct Options {
    pub name: Option<String>,
    /// The image as the user named it.
    pub image: String,
    pub command: Vec<String>,
    /// Replaces the image's entrypoint; an empty list clears it (`--entrypoint ""`).
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    pub attach: bool,
    pub labels: Vec<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub host: HostConfig,
    pub mounts: Vec<Mount>,
    pub runtime_path: PathBuf,
    /// `--ip`, `--mac-address` and `--network-alias` for the network of `host.network_mode`.
    pub join: crate::network::JoinOptions,
    /// `--expose` keys ("80/tcp").
    pub expose: Vec<String>,
    /// `--health-*` and `--no-healthcheck`, merged over the image's check.
    pub healthcheck: Option<HealthConfig>,
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    })
}

fn string(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// docker's daemon checks of the values, whichever front door they came through; nothing
/// is made before they pass.
pub fn validate(o: &Options) -> Result<(), CreateError> {
    let invalid = |m: String| Err(CreateError::Invalid(m));
    for e in &o.env {
        parse::env_var(e)?;
    }
    if let Some(w) = &o.workdir {
        parse::workdir(w)?;
    }
    if let Some(sig) = &o.stop_signal {
        parse::signal(sig)?;
    }
    if let Some(h) = &o.healthcheck {
        h.validate().map_err(CreateError::Invalid)?;
    }
    let h = &o.host;
    parse::capabilities(h.cap_add.as_deref().unwrap_or_default(), "CapAdd")?;
    parse::capabilities(h.cap_drop.as_deref().unwrap_or_default(), "CapDrop")?;
    super::resources::Update::of(h)
        .validate(std::path::Path::new("/sys"))
        .map_err(CreateError::Invalid)?;
    for e in h.extra_hosts.iter().flatten() {
        if crate::network::hosts::parse_add_host(e, Some("0.0.0.0")).is_none() {
            return invalid(format!(
                "invalid argument \"{e}\" for \"--add-host\" flag: bad format for add-host: \"{e}\""
            ));
        }
    }
    if h.auto_remove && !matches!(h.restart_policy.name.as_str(), "" | "no") {
        return invalid("Conflicting options: --restart and --rm".into());
    }
    if h.memory_swap > 0 && h.memory == 0 {
        return invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if h.memory > 0 && h.memory_reservation > h.memory {
        return invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        );
    }
    Ok(())
}

/// Makes the container; the caller has checked the values (`validate`) before anything else,
/// as `operations::container::create` does before it pulls a missing image.
pub fn create(ctx: &mut Context, image_id: &Digest, o: Options) -> Result<Container, CreateError> {
    let raw = ctx.blobs.read(image_id).map_err(ImageError::from)?;
    let img: ImageConfig = serde_json::from_slice(&raw).map_err(|source| ImageError::Config {
        digest: image_id.clone(),
        source,
    })?;
    let ic: Map<String, Value> = img.config.unwrap_or_default();
    let name = match &o.name {
        Some(n) => names::validate(n)?.to_string(),
        None => unique_name(ctx)?,
    };
    let id = super::random_id().map_err(|source| CreateError::Io {
        path: "/dev/urandom".into(),
        source,
    })?;
    let (entrypoint, cmd) = match &o.entrypoint {
        Some(e) if e.is_empty() => (None, Some(o.command.clone())),
        Some(e) => (Some(e.clone()), Some(o.command.clone())),
        None => (
            strings(ic.get("Entrypoint")),
            if o.command.is_empty() {
                strings(ic.get("Cmd"))
            } else {
                Some(o.command.clone())
            },
        ),
    };
    let mut argv: Vec<String> = entrypoint.iter().flatten().cloned().collect();
    argv.extend(cmd.iter().flatten().cloned());
    if argv.is_empty() {
        return Err(CreateError::NoCommand);
    }
    // docker's default PATH is added when the process starts (`bundle::process_env`), not
    // recorded in Config.Env.
    let mut env: Vec<String> = strings(ic.get("Env")).unwrap_or_default();
    for e in &o.env {
        parse::set_env(&mut env, e);
    }
    let mut labels: std::collections::BTreeMap<String, String> = ic
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    for l in &o.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let host_net = o.host.network_mode == "host";
    let network = crate::network::mode_network(&mut ctx.db, &ctx.root, &o.host.network_mode)?;
    let exposed_ports = exposed_ports(&ic, &o);
    check_ports(&o.host)?;
    check_links(ctx, &o.host)?;
    let hostname = match &o.hostname {
        Some(h) => h.clone(),
        None if host_net => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        None => id[..12].to_string(),
    };
    let user_spec = o.user.clone().unwrap_or_else(|| string(ic.get("User")));
    let working_dir = o
        .workdir
        .clone()
        .unwrap_or_else(|| string(ic.get("WorkingDir")));
    let stop_signal = o
        .stop_signal
        .clone()
        .or_else(|| {
            ic.get("StopSignal")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "SIGTERM".into());
    let image_check = ic
        .get("Healthcheck")
        .and_then(|v| serde_json::from_value::<HealthConfig>(v.clone()).ok());
    let healthcheck = HealthConfig::merge(o.healthcheck.clone(), image_check);
    let shell = strings(ic.get("Shell")).filter(|s| !s.is_empty());
    let layers: Vec<String> = ctx
        .db
        .layers(image_id)?
        .iter()
        .map(|l| l.chain_id.hex().to_string())
        .collect();
    let mut mounts = o.mounts;
    // HostConfig.Binds lists the container's own -v and --mount, not what --volumes-from adds.
    let binds: Vec<String> = mounts
        .iter()
        .filter(|m| m.kind == "bind" || (m.kind == "volume" && !m.name.is_empty()))
        .map(|m| {
            let mode = if m.mode.is_empty() {
                String::new()
            } else {
                format!(":{}", m.mode)
            };
            let src = if m.kind == "volume" {
                &m.name
            } else {
                &m.source
            };
            format!("{src}:{}{mode}", m.destination)
        })
        .collect();
    volumes_from(ctx, &o.host, &mut mounts)?;
    // docker: the image's VOLUMEs become anonymous volumes where nothing else is mounted,
    // and Config.Volumes lists them with the `-v /path` ones.
    let image_volumes: Vec<String> = ic
        .get("Volumes")
        .and_then(Value::as_object)
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    for dest in &image_volumes {
        let taken = mounts
            .iter()
            .any(|m| m.destination.trim_end_matches('/') == dest.trim_end_matches('/'));
        if !taken {
            mounts.push(Mount {
                kind: "volume".into(),
                destination: dest.clone(),
                rw: true,
                ..Default::default()
            });
        }
    }
    let config_volumes: Map<String, Value> = mounts
        .iter()
        .filter(|m| m.kind == "volume" && m.name.is_empty())
        .map(|m| (m.destination.clone(), Value::Object(Map::new())))
        .collect();
    // docker makes a missing -v source a directory (a --mount source must exist already);
    // an existing file is bound as it is.
    for m in &mounts {
        if m.kind == "bind" && !std::path::Path::new(&m.source).exists() {
            std::fs::create_dir_all(&m.source).map_err(|source| CreateError::Io {
                path: m.source.clone().into(),
                source,
            })?;
        }
    }
    mounts.sort_by_key(|m| m.destination.len());
    let cdir = super::dir(&ctx.root, &id);
    let layout = Layout::new(&cdir);
    let mut made_volumes = Vec::new();
    let built = (|| -> Result<Container, CreateError> {
        layout.prepare()?;
        crate::fault::at(crate::fault::Step::CreateDirPrepared);
        let lowers: Vec<PathBuf> = layers
            .iter()
            .map(|l| ctx.root.join("snapshots").join(l))
            .collect();
        if o.host.init == Some(true) {
            layout.add_init_mount_point(&lowers)?;
        }
        std::fs::write(super::log_path(&ctx.root, &id), b"").map_err(|source| CreateError::Io {
            path: super::log_path(&ctx.root, &id),
            source,
        })?;
        // The user is resolved, and volumes filled, from the image as the container will
        // see it.
        layout.mount(&lowers)?;
        crate::fault::at(crate::fault::Step::CreateRootfsMounted);
        let resolved = user::resolve(&layout.merged, &user_spec)
            .map_err(CreateError::from)
            .and_then(|r| {
                provision_volumes(ctx, &layout.merged, &mut mounts, &mut made_volumes)?;
                crate::fault::at(crate::fault::Step::CreateVolumesMade);
                Ok(r)
            });
        layout.umount()?;
        let resolved = resolved?;
        let c = Container {
            id: id.clone(),
            name: name.clone(),
            image_id: image_id.to_string(),
            created: super::now(),
            spec: Spec {
                config: Config {
                    hostname,
                    user: user_spec.clone(),
                    attach_stdin: o.interactive && o.attach,
                    attach_stdout: o.attach,
                    attach_stderr: o.attach,
                    tty: o.tty,
                    open_stdin: o.interactive,
                    stdin_once: o.interactive && o.attach,
                    env,
                    cmd,
                    image: o.image.clone(),
                    working_dir,
                    entrypoint,
                    labels,
                    stop_signal,
                    stop_timeout: o.stop_timeout,
                    volumes: (!config_volumes.is_empty()).then_some(Value::Object(config_volumes)),
                    exposed_ports: exposed_ports.clone(),
                    mac_address: o.join.mac.clone().unwrap_or_default(),
                    healthcheck: healthcheck.clone(),
                    shell: shell.clone(),
                    ..Default::default()
                },
                host: HostConfig {
                    binds: (!binds.is_empty()).then_some(binds),
                    // docker records the swap a memory limit gets by default.
                    memory_swap: o.host.swap(),
                    ..o.host.clone()
                },
                mounts: mounts.clone(),
                path: argv[0].clone(),
                args: argv[1..].to_vec(),
                uid: resolved.uid,
                gid: resolved.gid,
                additional_gids: resolved.additional_gids,
                runtime_path: o.runtime_path.clone(),
                layers: layers.clone(),
            },
            state: State::default(),
        };
        if let Some(n) = network.as_ref().filter(|n| n.bridge.is_some()) {
            crate::network::join(&mut ctx.db, &ctx.root, &c.id, n, &o.join)?;
            crate::fault::at(crate::fault::Step::CreateNetworkJoined);
        }
        let created = crate::events::container_event(&c, "create", &[]);
        ctx.db.add_container(&c.to_row(), &[created])?;
        crate::fault::at(crate::fault::Step::CreateRecorded);
        Ok(c)
    })();
    if built.is_err() {
        let _ = ctx.db.remove_endpoints(&id, None);
        let _ = layout.umount();
        let _ = remove_dir(&cdir);
        for v in &made_volumes {
            let _ = volume::remove(&mut ctx.db, &ctx.root, v);
        }
    }
    built
}

/// docker's Config.ExposedPorts: the image's, `--expose` and the ports of `-p`.
fn exposed_ports(
    ic: &Map<String, Value>,
    o: &Options,
) -> std::collections::BTreeMap<String, Value> {
    let mut out: std::collections::BTreeMap<String, Value> = ic
        .get("ExposedPorts")
        .and_then(Value::as_object)
        .map(|m| {
            m.keys()
                .map(|k| {
                    let k = if k.contains('/') {
                        k.clone()
                    } else {
                        format!("{k}/tcp")
                    };
                    (k, Value::Object(Map::new()))
                })
                .collect()
        })
        .unwrap_or_default();
    for k in o.expose.iter().chain(o.host.port_bindings.keys()) {
        out.insert(k.clone(), Value::Object(Map::new()));
    }
    out
}

/// docker refuses a fixed host port another process or container holds already at
/// create, so that `run` leaves no record behind: each is bound for a moment. (The
/// container takes its ports for good when it starts.)
fn check_ports(h: &HostConfig) -> Result<(), CreateError> {
    if h.network_mode == "host" {
        return Ok(());
    }
    for (key, bindings) in &h.port_bindings {
        for b in bindings.iter().filter(|b| !b.host_port.is_empty()) {
            crate::network::ports::take(key, b).map_err(crate::network::NetworkError::from)?;
        }
    }
    Ok(())
}

/// `--link NAME[:ALIAS]` needs a running container on the default bridge, as in docker.
fn check_links(ctx: &Context, h: &HostConfig) -> Result<(), CreateError> {
    for l in h.links.iter().flatten() {
        let name = l.split_once(':').map(|(n, _)| n).unwrap_or(l);
        let target = super::lookup::find(&ctx.db, name)?;
        if !target.is_running() {
            return Err(crate::network::NetworkError::LinkNotRunning(name.to_string()).into());
        }
    }
    Ok(())
}

/// Adds the volume and bind mounts of each `--volumes-from` container, as docker does: at the
/// same destinations (a later source wins, the container's own `-v`/`--mount` win over all),
/// writable only where the source's mount is and the mode allows, never filled from the image.
fn volumes_from(
    ctx: &Context,
    host: &HostConfig,
    mounts: &mut Vec<Mount>,
) -> Result<(), CreateError> {
    let own: Vec<String> = mounts.iter().map(|m| m.destination.clone()).collect();
    for spec in host.volumes_from.iter().flatten() {
        let (source, rw) = parse::volumes_from(spec)?;
        let from = super::lookup::find(&ctx.db, source)?;
        for m in from
            .spec
            .mounts
            .iter()
            .filter(|m| m.kind == "bind" || m.kind == "volume")
        {
            if own.contains(&m.destination) {
                continue;
            }
            mounts.retain(|x| x.destination != m.destination);
            // docker records no mode for these: RW says it.
            mounts.push(Mount {
                rw: m.rw && rw,
                mode: String::new(),
                nocopy: true,
                ..m.clone()
            });
        }
    }
    Ok(())
}

/// Makes (or finds) each volume the container mounts, and fills an empty one from the
/// image at its destination (with ownership and modes), as docker does unless `nocopy`.
/// `made` collects the volumes made here, for the caller to undo on failure.
fn provision_volumes(
    ctx: &mut Context,
    merged: &std::path::Path,
    mounts: &mut [Mount],
    made: &mut Vec<String>,
) -> Result<(), CreateError> {
    for m in mounts.iter_mut().filter(|m| m.kind == "volume") {
        let name = (!m.name.is_empty()).then_some(m.name.as_str());
        let (v, new) = volume::create(&mut ctx.db, &ctx.root, name, Default::default())?;
        if new {
            made.push(v.row.name.clone());
            crate::events::record(
                &ctx.db,
                crate::events::Kind::Volume,
                "create",
                &v.row.name,
                &[("driver", "local")],
            );
        }
        m.name = v.row.name.clone();
        m.source = v.mountpoint.display().to_string();
        let empty = std::fs::read_dir(&v.mountpoint).is_ok_and(|mut d| d.next().is_none());
        if m.nocopy || !empty {
            continue;
        }
        let src = cp::resolve_in_root(merged, &m.destination, true)?;
        if src.is_dir() {
            cp::copy_contents(&src, &v.mountpoint)?;
        }
    }
    Ok(())
}

/// A random name no container has; docker retries with a digit after a collision.
fn unique_name(ctx: &Context) -> Result<String, CreateError> {
    for attempt in 0..20 {
        let n = names::random(attempt);
        if ctx.db.container_by_name(&n)?.is_none() {
            return Ok(n);
        }
    }
    Ok(format!(
        "{}_{}",
        names::random(1),
        &super::random_id().unwrap_or_default()[..6]
    ))
}
