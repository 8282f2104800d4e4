//! Finds the image a user means: a name (tag or digest reference) first, then a full or
//! short image ID, as docker resolves its arguments.

use super::digest::{is_hex64, Digest};
use super::reference::{ImageRef, RefError};
use crate::store::{Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    Reference(#[from] RefError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the user named the image, which decides what `rmi` removes.
#[derive(Debug, Clone)]
pub enum Named {
    Tag(ImageRef),
    Digest(ImageRef),
    Id,
}

pub fn find(db: &Db, input: &str) -> Result<(Digest, Named), LookupError> {
    if let Some(id) = by_id(db, input)? {
        return Ok((id, Named::Id));
    }
    let r = match ImageRef::parse(input) {
        Ok(r) => r,
        Err(RefError::HexName(_)) => return Err(LookupError::NotFound(input.to_string())),
        Err(e) => return Err(e.into()),
    };
    if let Some(d) = &r.digest {
        let name = format!("{}@{}", r.repository(), d);
        for img in db.images()? {
            if img.repo_digests.contains(&name) || img.manifest_digest.as_str() == d {
                return Ok((img.id, Named::Digest(r)));
            }
        }
    } else if let Some(name) = r.tagged_name() {
        if let Some(id) = db.tag_target(&name)? {
            return Ok((id, Named::Tag(r)));
        }
    }
    Err(LookupError::NotFound(r.familiar()))
}

/// An ID is `sha256:<hex>` or a hex prefix; a bare word that could be a name is only an
/// ID when no tag by that name exists, which the caller checks by trying names after.
fn by_id(db: &Db, input: &str) -> Result<Option<Digest>, LookupError> {
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    // A short bare word might be a repository name ("beef"); names win then.
    if !input.starts_with("sha256:") && !is_hex64(hex) {
        if let Ok(r) = ImageRef::parse(input) {
            if let Some(n) = r.tagged_name() {
                if db.tag_target(&n)?.is_some() {
                    return Ok(None);
                }
            }
        }
    }
    let ids = db.ids_with_prefix(&hex.to_ascii_lowercase())?;
    match ids.len() {
        1 => Ok(ids.into_iter().next()),
        _ => Ok(None),
    }
}
