//! Which containers `ps --filter` shows, as docker's daemon decides it: values of one key
//! widen the match (any may hold), except `label`, whose values all must; different keys
//! all apply. `name` is a regular expression; `ancestor`, `before` and `since` name an
//! image or a container and are resolved once, before matching.

use std::collections::BTreeMap;

use super::{lookup, Container, ContainerError, Status};
use crate::image::digest::Digest;
use crate::store::Db;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("bad format of filter (expected name=value)")]
    Format,
    #[error("invalid filter '{0}'")]
    Invalid(String),
    #[error("Invalid filter 'status={0}'")]
    Status(String),
    #[error("invalid filter 'name={value}': {source}")]
    Regex { value: String, source: regex::Error },
    #[error(transparent)]
    Container(#[from] ContainerError),
}

const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Parsed and resolved `--filter` arguments.
#[derive(Debug, Default)]
pub struct Filters {
    values: BTreeMap<String, Vec<String>>,
    names: Vec<regex::Regex>,
    /// Image ids `ancestor` named (an unknown image matches nothing).
    ancestors: Vec<Digest>,
    before: Option<String>,
    since: Option<String>,
}

impl Filters {
    pub fn parse(db: &Db, list: &[String]) -> Result<Self, FilterError> {
        let mut f = Filters::default();
        for item in list {
            let (k, v) = item.split_once('=').ok_or(FilterError::Format)?;
            match k {
                "id" | "label" | "exited" | "volume" | "network" | "publish" | "expose" => {}
                "status" if STATUSES.contains(&v) => {}
                "status" => return Err(FilterError::Status(v.to_string())),
                "health" if matches!(v, "starting" | "healthy" | "unhealthy" | "none") => {}
                "name" => {
                    f.names
                        .push(regex::Regex::new(v).map_err(|source| FilterError::Regex {
                            value: v.to_string(),
                            source,
                        })?)
                }
                "ancestor" => {
                    if let Ok((id, _)) = crate::image::lookup::find(db, v) {
                        f.ancestors.push(id);
                    }
                }
                "before" => f.before = Some(lookup::find(db, v)?.created),
                "since" => f.since = Some(lookup::find(db, v)?.created),
                _ => return Err(FilterError::Invalid(k.to_string())),
            }
            f.values
                .entry(k.to_string())
                .or_default()
                .push(v.to_string());
        }
        Ok(f)
    }

    /// Whether the filters ask for stopped containers too (docker's implicit `-a`).
    pub fn want_stopped(&self) -> bool {
        ["status", "exited", "before", "since"]
            .iter()
            .any(|k| self.values.contains_key(*k))
    }

    pub fn matches(&self, c: &Container) -> bool {
        self.values.iter().all(|(k, vals)| {
            let any = |f: &dyn Fn(&str) -> bool| vals.iter().any(|v| f(v));
            match k.as_str() {
                "id" => any(&|v| c.id.starts_with(v)),
                // docker tries the name with and without its leading slash.
                "name" => self
                    .names
                    .iter()
                    .any(|r| r.is_match(&c.name) || r.is_match(&format!("/{}", c.name))),
                "status" => any(&|v| c.effective_status().as_str() == v),
                "exited" => {
                    c.effective_status() == Status::Exited
                        && any(&|v| c.state.exit_code.to_string() == v)
                }
                "label" => vals.iter().all(|v| match v.split_once('=') {
                    Some((lk, lv)) => c.spec.config.labels.get(lk).is_some_and(|x| x == lv),
                    None => c.spec.config.labels.contains_key(v),
                }),
                "ancestor" => self.ancestors.iter().any(|a| a.to_string() == c.image_id),
                "before" => self.before.as_ref().is_some_and(|t| c.created < *t),
                "since" => self.since.as_ref().is_some_and(|t| c.created > *t),
                "volume" => any(&|v| {
                    c.spec.mounts.iter().any(|m| {
                        m.destination == v || m.source == v || (!m.name.is_empty() && m.name == v)
                    })
                }),
                "network" => any(&|v| crate::network::mode_name(&c.spec.host.network_mode) == v),
                "health" => any(&|v| v == c.health_status()),
                // A container port or range, `/tcp` unless said: published (bound while
                // running, or asked for) or exposed.
                "publish" => any(&|v| {
                    crate::network::ports::parse_expose(v)
                        .unwrap_or_default()
                        .iter()
                        .any(|k| {
                            c.state.ports.contains_key(k)
                                || c.spec.host.port_bindings.contains_key(k)
                        })
                }),
                "expose" => any(&|v| {
                    crate::network::ports::parse_expose(v)
                        .unwrap_or_default()
                        .iter()
                        .any(|k| c.spec.config.exposed_ports.contains_key(k))
                }),
                _ => false,
            }
        })
    }
}
