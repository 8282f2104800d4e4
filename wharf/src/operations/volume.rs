//! Volumes as `docker volume` and `/volumes` handle them: create (local driver only),
//! list with docker's filters, inspect, remove, prune.

use std::collections::BTreeMap;
use std::path::Path;

use super::OperationError;
use crate::context::{Access, Context};
use crate::events::{self, Kind};
use crate::volume::{self, Volume, VolumeError};

/// Creates the volume (a named one that exists is returned as it is, as docker does).
pub fn create(
    root: &Path,
    name: Option<&str>,
    driver: &str,
    options: &BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
) -> Result<Volume, OperationError> {
    if !driver.is_empty() && driver != "local" {
        return Err(OperationError::Invalid(format!(
            "create {}: volume driver {driver:?} is not supported (only \"local\")",
            name.unwrap_or("")
        )));
    }
    if let Some((k, v)) = options.iter().next() {
        return Err(OperationError::Invalid(format!(
            "create: driver option \"{k}={v}\" is not supported: wharf's local volumes are plain directories"
        )));
    }
    let mut ctx = Context::open(root, Access::Shared)?;
    let (v, made) = volume::create(&mut ctx.db, root, name, labels)?;
    if made {
        events::record(
            &ctx.db,
            Kind::Volume,
            "create",
            &v.row.name,
            &[("driver", "local")],
        );
    }
    Ok(v)
}

/// `label=KEY` or `label=KEY=VALUE` against a volume's labels.
fn has_label(v: &Volume, want: &str) -> bool {
    let labels = v.labels();
    match want.split_once('=') {
        Some((k, val)) => labels.get(k).is_some_and(|x| x == val),
        None => labels.contains_key(want),
    }
}

/// A listed volume and how many containers use it.
pub struct Listed {
    pub volume: Volume,
    pub users: usize,
}

/// The volumes `filters` (`name=`, `label=`, `driver=`, `dangling=`) keep.
pub fn list(root: &Path, filters: &[String]) -> Result<Vec<Listed>, OperationError> {
    let ctx = Context::open(root, Access::Shared)?;
    let mut out = Vec::new();
    for v in volume::list(&ctx.db, root)? {
        let users = volume::users(&ctx.db, &v.row.name)?.len();
        let mut keep = true;
        for f in filters {
            let (k, val) = f.split_once('=').ok_or_else(|| {
                OperationError::Invalid("bad format of filter (expected name=value)".into())
            })?;
            keep &= match k {
                "name" => v.row.name.contains(val),
                "label" => has_label(&v, val),
                "driver" => val == "local",
                "dangling" => match val {
                    "true" | "1" => users == 0,
                    "false" | "0" => users > 0,
                    _ => {
                        return Err(OperationError::Invalid(format!(
                            "invalid filter 'dangling={val}'"
                        )))
                    }
                },
                _ => return Err(OperationError::Invalid(format!("invalid filter '{k}'"))),
            };
        }
        if keep {
            out.push(Listed { volume: v, users });
        }
    }
    Ok(out)
}

pub fn inspect(root: &Path, name: &str) -> Result<Volume, OperationError> {
    let ctx = Context::open(root, Access::Shared)?;
    Ok(volume::get(&ctx.db, root, name)?)
}

/// Removes the volume; with `force` a missing one is not an error.
pub fn remove(root: &Path, name: &str, force: bool) -> Result<bool, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    match volume::remove(&mut ctx.db, root, name) {
        Ok(()) => {
            events::record(
                &ctx.db,
                Kind::Volume,
                "destroy",
                name,
                &[("driver", "local")],
            );
            Ok(true)
        }
        Err(VolumeError::NotFound(_)) if force => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The unused anonymous volumes (every unused one with `all` or the `all=true` filter),
/// narrowed by `label=` / `label!=` filters as in docker.
pub fn prune(root: &Path, all: bool, filters: &[String]) -> Result<volume::Pruned, OperationError> {
    let mut conditions = Vec::new();
    for f in filters {
        match f.split_once('=') {
            Some(("label!", v)) => conditions.push((false, v.to_string())),
            Some(("label", v)) => conditions.push((true, v.to_string())),
            Some(("all", "true" | "1" | "false" | "0")) => {}
            _ => return Err(OperationError::Invalid(format!("invalid filter '{f}'"))),
        }
    }
    let all = all || filters.iter().any(|f| f == "all=true" || f == "all=1");
    let mut ctx = Context::open(root, Access::Shared)?;
    Ok(volume::prune(&mut ctx.db, root, all, |v| {
        !conditions.iter().all(|(want, l)| has_label(v, l) == *want)
    })?)
}
