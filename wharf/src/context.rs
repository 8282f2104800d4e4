//! The data root: where the database, the content store and the snapshots live, and the
//! lock that keeps garbage collection apart from writers. Adding content takes the lock
//! shared (many pulls at once); deleting content takes it exclusive, so a blob another
//! process just wrote but has not recorded yet is never collected.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::image::store::{BlobError, BlobStore};
use crate::snapshot::{SnapshotError, Snapshots};
use crate::store::{Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("data root {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("locking data root {path}: {source}")]
    Lock { path: PathBuf, source: nix::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read or add content.
    Shared,
    /// Delete content.
    Exclusive,
}

pub struct Context {
    pub root: PathBuf,
    pub db: Db,
    pub blobs: BlobStore,
    pub snapshots: Snapshots,
    lock: Flock<File>,
}

impl Context {
    pub fn open(root: &Path, access: Access) -> Result<Self, ContextError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ContextError::Io { path, source }
        };
        fs::create_dir_all(root).map_err(io(root))?;
        let lock_path = root.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let arg = match access {
            Access::Shared => FlockArg::LockShared,
            Access::Exclusive => FlockArg::LockExclusive,
        };
        let lock = Flock::lock(file, arg).map_err(|(_, source)| ContextError::Lock {
            path: lock_path,
            source,
        })?;
        let blobs = BlobStore::open(&root.join("images"))?;
        let snapshots = Snapshots::open(&root.join("snapshots"))?;
        let db = Db::open(&root.join("wharf.db"))?;
        if access == Access::Exclusive {
            // Nobody else writes now, so any temporary file is a leftover of a killed process.
            blobs.clean_tmp()?;
            snapshots.clean_tmp()?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            db,
            blobs,
            snapshots,
            lock,
        })
    }

    /// The store alone, without the data root's lock: for what watches for a long time
    /// (wait, logs -f, events, API waits), which must not hold back an exclusive command
    /// (`rmi`, `prune`) meanwhile.
    pub fn watch(root: &Path) -> Result<Db, ContextError> {
        Ok(Db::open(&root.join("wharf.db"))?)
    }

    /// Makes a shared lock exclusive when no other process holds the lock, without
    /// waiting. flock(2) converts by dropping the old lock first, so on failure the
    /// context is dropped and no lock is held any more.
    pub fn into_exclusive(self) -> Option<Self> {
        self.lock
            .relock(FlockArg::LockExclusiveNonblock)
            .is_ok()
            .then_some(self)
    }
}
