//! Registry credentials in docker's client config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): read through docker_credential (which also runs credential
//! helpers), written by `login`/`logout` as docker's `auths` entries, keeping every other
//! key of the file.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot find the docker config directory: set DOCKER_CONFIG or HOME")]
    NoConfigDir,
    #[error("docker config {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("docker config {path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn config_path() -> Result<PathBuf, CredentialsError> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .ok_or(CredentialsError::NoConfigDir)?;
    Ok(dir.join("config.json"))
}

/// Username and password stored for `server`, if any.
pub fn get(server: &str) -> Option<(String, String)> {
    match docker_credential::get_credential(server) {
        Ok(docker_credential::DockerCredential::UsernamePassword(u, p)) => Some((u, p)),
        _ => None,
    }
}

fn read() -> Result<(PathBuf, Map<String, Value>), CredentialsError> {
    let path = config_path()?;
    match fs::read(&path) {
        Ok(b) => {
            let v: Map<String, Value> =
                serde_json::from_slice(&b).map_err(|source| CredentialsError::Json {
                    path: path.clone(),
                    source,
                })?;
            Ok((path, v))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((path, Map::new())),
        Err(source) => Err(CredentialsError::Io { path, source }),
    }
}

fn write(path: &PathBuf, v: &Map<String, Value>) -> Result<(), CredentialsError> {
    let io = |source| CredentialsError::Io {
        path: path.clone(),
        source,
    };
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    let body = serde_json::to_vec_pretty(v).map_err(|source| CredentialsError::Json {
        path: path.clone(),
        source,
    })?;
    io::Write::write_all(&mut tmp, &body).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

pub fn store(server: &str, user: &str, password: &str) -> Result<(), CredentialsError> {
    let (path, mut v) = read()?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let auths = v.entry("auths").or_insert_with(|| json!({}));
    if !auths.is_object() {
        *auths = json!({});
    }
    if let Some(a) = auths.as_object_mut() {
        a.insert(server.to_string(), json!({ "auth": auth }));
    }
    write(&path, &v)
}

/// Removes the entry for `server`; returns false when there was none.
pub fn remove(server: &str) -> Result<bool, CredentialsError> {
    let (path, mut v) = read()?;
    let removed = v
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .and_then(|a| a.remove(server))
        .is_some();
    if removed {
        write(&path, &v)?;
    }
    Ok(removed)
}
