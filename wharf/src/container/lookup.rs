//! Finds the container a user means, as docker does: a full id, then a name (with or
//! without its leading slash), then a unique id prefix.

use super::{Container, ContainerError};
use crate::store::Db;

pub fn find(db: &Db, input: &str) -> Result<Container, ContainerError> {
    if let Some(row) = db.container(input)? {
        return Container::from_row(row);
    }
    let name = input.strip_prefix('/').unwrap_or(input);
    if let Some(row) = db.container_by_name(name)? {
        return Container::from_row(row);
    }
    let not_found = || ContainerError::NotFound(input.to_string());
    if input.is_empty() || !input.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let ids = db.container_ids_with_prefix(&input.to_ascii_lowercase())?;
    match ids.as_slice() {
        [id] => super::load(db, id)?.ok_or_else(not_found),
        [] => Err(not_found()),
        _ => Err(ContainerError::Ambiguous(input.to_string())),
    }
}
