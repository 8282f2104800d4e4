//! Containers: the record `create` writes (docker's Config and HostConfig plus what wharf
//! resolved), the state the monitor and lifecycle commands keep, names, lookup, the
//! per-container directory and its overlay root filesystem.

pub mod archive;
pub mod commit;
pub mod cp;
pub mod create;
pub mod diff;
pub mod export;
pub mod filter;
pub mod health;
pub mod logs;
pub mod lookup;
pub mod names;
pub mod ops;
pub mod parse;
pub mod prune;
pub mod resources;
pub mod rootfs;
pub mod stats;
pub mod top;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use ops::OpsError;

use crate::store::{ContainerRow, Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("Multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    #[error("container record {id} is corrupt: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
    /// A change the record refuses (docker's conflicting update options).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// docker's `Config` for a container, serialised with docker's field names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// docker's nil slice: `null` when empty.
    #[serde(serialize_with = "null_if_empty", deserialize_with = "empty_if_null")]
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<health::HealthConfig>,
    pub image: String,
    pub volumes: Option<serde_json::Value>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub on_build: Option<Vec<String>>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// "80/tcp" -> {} for the image's EXPOSE, `--expose` and `-p`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub exposed_ports: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// The image's SHELL, which a `CMD-SHELL` healthcheck runs under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

fn null_if_empty<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(v)
    }
}

fn empty_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// "no", "always", "unless-stopped" or "on-failure".
    pub name: String,
    pub maximum_retry_count: u32,
}

/// A `-v`, `--mount` or `--tmpfs` entry, or a volume an image declares.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    /// "bind", "volume" or "tmpfs".
    #[serde(rename = "Type")]
    pub kind: String,
    /// A volume's name; empty for a volume still to be made anonymous, and for other kinds.
    #[serde(default)]
    pub name: String,
    /// A volume that must not be filled from the image on first use (`nocopy`).
    #[serde(default)]
    pub nocopy: bool,
    pub source: String,
    pub destination: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// The subset of docker's `HostConfig` wharf implements, with docker's field names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub pid_mode: String,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub tmpfs: Option<std::collections::BTreeMap<String, String>>,
    pub runtime: String,
    pub memory: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpuset_cpus: String,
    pub pids_limit: Option<i64>,
    /// `--cpu-shares`, `--cpu-period`, `--cpu-quota`, `--cpuset-mems`, `--memory-swap`
    /// and `--blkio-weight`: zero (empty) is unset, as in docker.
    #[serde(default)]
    pub cpu_shares: i64,
    #[serde(default)]
    pub cpu_period: i64,
    #[serde(default)]
    pub cpu_quota: i64,
    #[serde(default)]
    pub cpuset_mems: String,
    #[serde(default)]
    pub memory_swap: i64,
    #[serde(default)]
    pub blkio_weight: u16,
    pub init: Option<bool>,
    /// `seccomp=unconfined`, `seccomp=<profile JSON>`, `no-new-privileges=true|false`.
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    /// `--volumes-from CONTAINER[:MODE]`, as given.
    #[serde(default)]
    pub volumes_from: Option<Vec<String>>,
    /// `-p`: "80/tcp" -> host bindings.
    #[serde(default)]
    pub port_bindings: crate::network::ports::PortMap,
    /// `-P`: every exposed port gets an ephemeral host port.
    #[serde(default)]
    pub publish_all_ports: bool,
    /// `--link NAME[:ALIAS]`, as given.
    #[serde(default)]
    pub links: Option<Vec<String>>,
    #[serde(default)]
    pub dns: Option<Vec<String>>,
    #[serde(default)]
    pub dns_search: Option<Vec<String>>,
    #[serde(default)]
    pub dns_options: Option<Vec<String>>,
    /// `--add-host NAME:IP`, as given.
    #[serde(default)]
    pub extra_hosts: Option<Vec<String>>,
}

impl HostConfig {
    /// The memory plus swap limit: what was asked, else docker's default for a memory
    /// limit (as much swap as memory, 2x in total), else 0 (none).
    pub fn swap(&self) -> i64 {
        match (self.memory, self.memory_swap) {
            (m, 0) if m > 0 => m * 2,
            (_, s) => s,
        }
    }
}

/// What `create` resolved from the image and the options and must not change later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub config: Config,
    pub host: HostConfig,
    /// `-v` and `--mount` entries, resolved to absolute host paths.
    pub mounts: Vec<Mount>,
    /// Path and Args of the container's process.
    pub path: String,
    pub args: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The runtime binary, resolved once so every later command drives the same one.
    pub runtime_path: PathBuf,
    /// Chain ids of the image's layers, bottom first.
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restart_count: u32,
    pub oom_killed: bool,
    /// The monitor's pid and its start time (clock ticks since boot), so a reused pid is
    /// never mistaken for the monitor.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    /// Set by stop, kill and rm: the monitor must not restart the container.
    pub stop_requested: bool,
    /// The host ports published while it runs (docker's NetworkSettings.Ports).
    #[serde(default)]
    pub ports: crate::network::ports::PortMap,
    /// docker's State.Health, for a container with a healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<health::Health>,
}

/// A container as read from the store.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub created: String,
    pub spec: Spec,
    pub state: State,
}

impl Container {
    pub fn from_row(row: ContainerRow) -> Result<Self, ContainerError> {
        let corrupt = |source| ContainerError::Corrupt {
            id: row.id.clone(),
            source,
        };
        Ok(Self {
            spec: serde_json::from_str(&row.spec).map_err(corrupt)?,
            state: serde_json::from_str(&row.state).map_err(corrupt)?,
            id: row.id,
            name: row.name,
            image_id: row.image_id,
            created: row.created,
        })
    }

    pub fn to_row(&self) -> ContainerRow {
        ContainerRow {
            id: self.id.clone(),
            name: self.name.clone(),
            image_id: self.image_id.clone(),
            created: self.created.clone(),
            spec: serde_json::to_string(&self.spec).unwrap_or_default(),
            state: serde_json::to_string(&self.state).unwrap_or_default(),
        }
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// docker's status text: "Up 3 minutes", "Exited (0) 2 seconds ago", ...
    pub fn status_text(&self) -> String {
        use crate::format::human_duration;
        let s = &self.state;
        let ago = |t: &Option<String>| human_duration(secs_since(t.as_deref()));
        match self.effective_status() {
            Status::Created => "Created".into(),
            Status::Running => match &s.health {
                Some(h) => format!("Up {} ({})", ago(&s.started_at), h.ps_text()),
                None => format!("Up {}", ago(&s.started_at)),
            },
            Status::Paused => format!("Up {} (Paused)", ago(&s.started_at)),
            Status::Restarting => {
                format!("Restarting ({}) {} ago", s.exit_code, ago(&s.finished_at))
            }
            Status::Removing => "Removal In Progress".into(),
            Status::Exited if s.finished_at.is_none() => "Created".into(),
            Status::Exited => format!("Exited ({}) {} ago", s.exit_code, ago(&s.finished_at)),
            Status::Dead => "Dead".into(),
        }
    }

    /// The process's command line as docker lists it: arguments with a space quoted.
    pub fn command_text(&self) -> String {
        let mut cmd = self.spec.path.clone();
        for a in &self.spec.args {
            cmd.push(' ');
            if a.contains(' ') {
                cmd.push_str(&format!("'{a}'"));
            } else {
                cmd.push_str(a);
            }
        }
        cmd
    }

    /// Whether the monitor recorded in the state is still that process.
    pub fn monitor_alive(&self) -> bool {
        self.state.monitor_pid > 0
            && process_start(self.state.monitor_pid) == Some(self.state.monitor_start)
    }

    /// The status to show: a record that says running while its monitor is gone has no
    /// one left to record the exit, so it is reported as dead rather than trusted.
    pub fn effective_status(&self) -> Status {
        match self.state.status {
            Status::Running | Status::Paused | Status::Restarting if !self.monitor_alive() => {
                Status::Dead
            }
            ref s => s.clone(),
        }
    }

    /// The health `ps --filter health=` matches: `none` without a check.
    pub fn health_status(&self) -> &str {
        self.state
            .health
            .as_ref()
            .map_or(health::NONE, |h| h.status.as_str())
    }

    /// The probe's command line while the container has an active check.
    pub fn health_command(&self) -> Option<Vec<String>> {
        let shell = self.spec.config.shell.as_deref().unwrap_or_default();
        self.spec.config.healthcheck.as_ref()?.command(shell)
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.effective_status(),
            Status::Running | Status::Paused | Status::Restarting
        )
    }
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn process_start(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')' come field 3 (state) onwards; a zombie is not alive.
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Where a container's files live: `<root>/containers/<id>`.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(id)
}

pub fn log_path(root: &Path, id: &str) -> PathBuf {
    dir(root, id).join(format!("{id}-json.log"))
}

pub fn load(db: &Db, id: &str) -> Result<Option<Container>, ContainerError> {
    db.container(id)?.map(Container::from_row).transpose()
}

pub fn all(db: &Db) -> Result<Vec<Container>, ContainerError> {
    db.containers()?
        .into_iter()
        .map(Container::from_row)
        .collect()
}

/// Applies `f` to the stored state; returns the new state, or None when the container is gone.
pub fn update(
    db: &mut Db,
    id: &str,
    f: impl FnMut(&mut State),
) -> Result<Option<State>, ContainerError> {
    update_reporting(db, id, f, &[])
}

/// `update`, with the events the change makes written in the same transaction.
pub fn update_reporting(
    db: &mut Db,
    id: &str,
    mut f: impl FnMut(&mut State),
    events: &[crate::store::EventRow],
) -> Result<Option<State>, ContainerError> {
    let mut parse_err = None;
    let new = db.update_container(
        id,
        crate::store::Field::State,
        &mut |cur| {
            let mut s: State = match serde_json::from_str(cur) {
                Ok(s) => s,
                Err(e) => {
                    parse_err = Some(e);
                    State::default()
                }
            };
            f(&mut s);
            Some(serde_json::to_string(&s).unwrap_or_default())
        },
        events,
    )?;
    if let Some(source) = parse_err {
        return Err(ContainerError::Corrupt {
            id: id.to_string(),
            source,
        });
    }
    Ok(new.and_then(|s| serde_json::from_str(&s).ok()))
}

/// Rewrites the stored spec with `f` in one transaction; returns the new spec, or None when
/// the container is gone. When `f` refuses, nothing changes.
pub fn update_spec(
    db: &mut Db,
    id: &str,
    mut f: impl FnMut(&Spec) -> Result<Spec, String>,
) -> Result<Option<Spec>, ContainerError> {
    let mut failure: Option<ContainerError> = None;
    let new = db.update_container(
        id,
        crate::store::Field::Spec,
        &mut |cur| {
            let next = serde_json::from_str::<Spec>(cur)
                .map_err(|source| ContainerError::Corrupt {
                    id: id.to_string(),
                    source,
                })
                .and_then(|spec| f(&spec).map_err(ContainerError::Refused));
            match next.and_then(|spec| {
                serde_json::to_string(&spec).map_err(|source| ContainerError::Corrupt {
                    id: id.to_string(),
                    source,
                })
            }) {
                Ok(text) => Some(text),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        },
        &[],
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(new.and_then(|s| serde_json::from_str(&s).ok()))
}

/// The time now with nine fraction digits: recorded times sort as text.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The time now as Go's RFC3339Nano writes it, trailing zeros of the fraction dropped:
/// docker's json-file log times.
pub fn now_go() -> String {
    rfc3339_nano(chrono::Utc::now())
}

fn rfc3339_nano(t: chrono::DateTime<chrono::Utc>) -> String {
    let full = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let (body, _) = full.split_at(full.len() - 1);
    format!("{}Z", body.trim_end_matches('0').trim_end_matches('.'))
}

/// 64 random hex digits, like docker's container ids.
pub fn random_id() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut b)?;
    Ok(hex::encode(b))
}

/// Seconds from an RFC 3339 time to now (0 when absent or unreadable).
pub fn secs_since(ts: Option<&str>) -> i64 {
    ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_go_rfc3339_nano() {
        let t = |s: &str| {
            super::rfc3339_nano(
                chrono::DateTime::parse_from_rfc3339(s)
                    .unwrap()
                    .with_timezone(&chrono::Utc),
            )
        };
        assert_eq!(
            t("2026-11-25T15:20:56.120000000Z"),
            "2026-11-25T15:20:56.12Z"
        );
        assert_eq!(t("2026-11-25T15:20:56Z"), "2026-11-25T15:20:56Z");
        assert_eq!(
            t("2026-11-25T15:20:56.000000001Z"),
            "2026-11-25T15:20:56.000000001Z"
        );
    }
}
