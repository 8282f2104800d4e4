//! `container prune`: removes every container that is not running, reporting the ids and
//! the space their writable layers held.

use std::path::Path;

use super::rootfs::Layout;
use super::{ops, OpsError};
use crate::store::Db;

/// What a prune removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub ids: Vec<String>,
    pub reclaimed: u64,
}

/// Bytes of the regular files under `dir`, without following symlinks.
pub fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

pub fn prune(root: &Path, db: &mut Db) -> Result<Pruned, OpsError> {
    let mut out = Pruned::default();
    for c in super::all(db)? {
        if c.is_running() {
            continue;
        }
        let size = dir_size(&Layout::new(&super::dir(root, &c.id)).upper);
        ops::remove(root, db, &c, false)?;
        out.ids.push(c.id);
        out.reclaimed += size;
    }
    Ok(out)
}
