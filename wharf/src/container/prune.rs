//! `container prune`: removes every container that is not running, reporting the ids and
//! the space their writable layers held, and what a wharf killed while creating left:
//! container and volume directories without a record.

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

/// Removes container and volume directories that have no record, and addresses held for
/// containers that have none: a create or `volume create` killed between making them and
/// recording the container or volume. Only safe with the data root locked exclusively,
/// when no create is half done.
pub fn orphans(ctx: &mut crate::context::Context) -> Result<(), OpsError> {
    let ids: std::collections::HashSet<String> =
        super::all(&ctx.db)?.into_iter().map(|c| c.id).collect();
    for ep in ctx.db.endpoints(None)? {
        if !ids.contains(&ep.container_id) {
            ctx.db.remove_endpoints(&ep.container_id, None)?;
        }
    }
    let volumes: std::collections::HashSet<String> =
        ctx.db.volumes()?.into_iter().map(|v| v.name).collect();
    for (dir, known) in [("containers", &ids), ("volumes", &volumes)] {
        let Ok(entries) = std::fs::read_dir(ctx.root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            if !known.contains(&*e.file_name().to_string_lossy()) {
                let path = e.path();
                Layout::new(&path).umount()?;
                super::rootfs::remove_dir(&path)?;
            }
        }
    }
    Ok(())
}
