//! Volumes, as docker's `local` driver keeps them: a directory `volumes/<name>/_data` under
//! the data root and a record in the store, bind-mounted into containers. Named volumes
//! come from `volume create` or the first `-v NAME:/path`; anonymous ones (64 hex digits)
//! from `-v /path` and an image's VOLUMEs, and go with their container on `rm -v` and
//! `--rm`. A volume that any container refers to, running or not, is in use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::container::{self, ContainerError};
use crate::store::{Db, StoreError, VolumeRow};

/// The label docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    InvalidName(String),
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Rootfs(#[from] container::rootfs::RootfsError),
}

/// A recorded volume and where its data is.
#[derive(Debug, Clone)]
pub struct Volume {
    pub row: VolumeRow,
    pub mountpoint: PathBuf,
}

impl Volume {
    fn new(root: &Path, row: VolumeRow) -> Self {
        let mountpoint = mountpoint(root, &row.name);
        Self { row, mountpoint }
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.row.labels).unwrap_or_default()
    }

    /// `volume inspect`'s object.
    pub fn inspect(&self) -> Value {
        let labels = self.labels();
        json!({
            "CreatedAt": self.row.created,
            "Driver": "local",
            "Labels": if labels.is_empty() { Value::Null } else { json!(labels) },
            "Mountpoint": self.mountpoint,
            "Name": self.row.name,
            "Options": null,
            "Scope": "local",
        })
    }
}

pub fn mountpoint(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name).join("_data")
}

/// docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate(name: &str) -> Result<(), VolumeError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    let rest_ok = !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(VolumeError::InvalidName(name.to_string()))
    }
}

/// Makes a volume: `name` None makes an anonymous one. A name that exists is returned as
/// is (docker's `volume create` of an existing name). The bool says whether it is new.
pub fn create(
    db: &mut Db,
    root: &Path,
    name: Option<&str>,
    mut labels: BTreeMap<String, String>,
) -> Result<(Volume, bool), VolumeError> {
    let name = match name {
        Some(n) => {
            validate(n)?;
            if let Some(row) = db.volume(n)? {
                return Ok((Volume::new(root, row), false));
            }
            n.to_string()
        }
        None => {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
            container::random_id().map_err(|source| VolumeError::Io {
                path: "/dev/urandom".into(),
                source,
            })?
        }
    };
    let data = mountpoint(root, &name);
    std::fs::create_dir_all(&data).map_err(|source| VolumeError::Io {
        path: data.clone(),
        source,
    })?;
    crate::fault::at(crate::fault::Step::VolumeDirMade);
    let row = VolumeRow {
        name: name.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        labels: serde_json::to_string(&labels).unwrap_or_else(|_| "{}".into()),
        anonymous: labels.contains_key(ANONYMOUS_LABEL),
    };
    let (row, added) = db.add_volume(&row)?;
    Ok((Volume::new(root, row), added))
}

pub fn get(db: &Db, root: &Path, name: &str) -> Result<Volume, VolumeError> {
    db.volume(name)?
        .map(|row| Volume::new(root, row))
        .ok_or_else(|| VolumeError::NotFound(name.to_string()))
}

pub fn list(db: &Db, root: &Path) -> Result<Vec<Volume>, VolumeError> {
    Ok(db
        .volumes()?
        .into_iter()
        .map(|row| Volume::new(root, row))
        .collect())
}

/// Ids of the containers that mount `name`.
pub fn users(db: &Db, name: &str) -> Result<Vec<String>, VolumeError> {
    Ok(container::all(db)?
        .into_iter()
        .filter(|c| {
            c.spec
                .mounts
                .iter()
                .any(|m| m.kind == "volume" && m.name == name)
        })
        .map(|c| c.id)
        .collect())
}

/// `volume rm`: refused while a container refers to the volume.
pub fn remove(db: &mut Db, root: &Path, name: &str) -> Result<(), VolumeError> {
    get(db, root, name)?;
    let users = users(db, name)?;
    if !users.is_empty() {
        return Err(VolumeError::InUse {
            name: name.to_string(),
            users,
        });
    }
    discard(db, root, name)
}

/// Drops the record, then the data: a kill in between leaves a directory no command
/// shows, never a volume without data.
fn discard(db: &mut Db, root: &Path, name: &str) -> Result<(), VolumeError> {
    db.remove_volume(name)?;
    crate::fault::at(crate::fault::Step::VolumeRowRemoved);
    Ok(container::rootfs::remove_dir(
        &root.join("volumes").join(name),
    )?)
}

/// The anonymous volumes only `c` uses, removed after `c` (`rm -v`, `--rm`).
pub fn remove_anonymous_of(
    db: &mut Db,
    root: &Path,
    c: &container::Container,
) -> Result<(), VolumeError> {
    for m in c.spec.mounts.iter().filter(|m| m.kind == "volume") {
        let anonymous = db.volume(&m.name)?.is_some_and(|v| v.anonymous);
        if anonymous && users(db, &m.name)?.iter().all(|u| *u == c.id) {
            discard(db, root, &m.name)?;
            crate::events::record(
                db,
                crate::events::Kind::Volume,
                "destroy",
                &m.name,
                &[("driver", "local")],
            );
        }
    }
    Ok(())
}

/// What a prune removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub names: Vec<String>,
    pub reclaimed: u64,
}

/// `volume prune`: the unused anonymous volumes, or every unused one with `all`, that
/// `keep` does not hold back (the filters).
pub fn prune(
    db: &mut Db,
    root: &Path,
    all: bool,
    keep: impl Fn(&Volume) -> bool,
) -> Result<Pruned, VolumeError> {
    let mut out = Pruned::default();
    for v in list(db, root)? {
        if !(all || v.row.anonymous) || keep(&v) || !users(db, &v.row.name)?.is_empty() {
            continue;
        }
        let size = container::prune::dir_size(&v.mountpoint);
        discard(db, root, &v.row.name)?;
        out.names.push(v.row.name);
        out.reclaimed += size;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        for ok in ["data", "my-vol_1.x", "a1"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "-x", ".x", "with space", "a/b", "", "x:y"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_reuses_names_and_rm_refuses_nothing_unknown() {
        let d = tempfile::tempdir().unwrap();
        let mut db = Db::open(&d.path().join("db")).unwrap();
        let (v, new) = create(&mut db, d.path(), Some("data"), BTreeMap::new()).unwrap();
        assert!(new && v.mountpoint.is_dir() && !v.row.anonymous);
        let (_, new) = create(&mut db, d.path(), Some("data"), BTreeMap::new()).unwrap();
        assert!(!new);
        let (a, _) = create(&mut db, d.path(), None, BTreeMap::new()).unwrap();
        assert!(a.row.anonymous && a.row.name.len() == 64);
        assert_eq!(
            a.labels().get(ANONYMOUS_LABEL).map(String::as_str),
            Some("")
        );
        let pruned = prune(&mut db, d.path(), false, |_| false).unwrap();
        assert_eq!(pruned.names, vec![a.row.name.clone()]);
        assert!(!a.mountpoint.exists());
        remove(&mut db, d.path(), "data").unwrap();
        assert!(matches!(
            remove(&mut db, d.path(), "data"),
            Err(VolumeError::NotFound(_))
        ));
    }
}
