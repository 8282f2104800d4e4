//! Undoing what a failed pull, load or import left in the store. Until its database
//! commit such an operation is invisible, but blobs it committed and layers it unpacked
//! stay on disk; when it fails (a full disk, a bad layer, an unreachable registry) they
//! are removed again so the store is exactly as before.
//!
//! Another process adding content at the same time may already count on a blob this one
//! wrote, so removal happens only under the exclusive lock, taken without waiting. When
//! another process holds the lock, the leftovers stay: nothing references them, no
//! listing shows them, and the next `image prune` or `rmi` collects them.

use std::collections::HashSet;

use super::digest::Digest;
use super::ImageError;
use crate::context::Context;

/// What the store held before an operation started adding to it.
pub struct Undo {
    blobs: HashSet<Digest>,
    snapshots: HashSet<Digest>,
}

impl Undo {
    pub fn before(ctx: &Context) -> Result<Self, ImageError> {
        Ok(Self {
            blobs: ctx.blobs.list()?.into_iter().collect(),
            snapshots: ctx.snapshots.list()?.into_iter().collect(),
        })
    }

    /// Runs `op`; when it fails, removes the blobs and snapshots that appeared meanwhile
    /// and that no image references, then returns the operation's error.
    pub fn guard<T, E: From<ImageError>>(
        mut ctx: Context,
        op: impl FnOnce(&mut Context) -> Result<T, E>,
    ) -> Result<T, E> {
        let undo = Self::before(&ctx)?;
        match op(&mut ctx) {
            Ok(v) => Ok(v),
            Err(e) => {
                if let Some(ctx) = ctx.into_exclusive() {
                    // The operation's error is the one to report; what could not be
                    // removed is unreferenced and goes with the next prune.
                    let _ = undo.rollback(&ctx);
                }
                Err(e)
            }
        }
    }

    /// Removes what appeared since `before` and is unreferenced; the caller holds the
    /// exclusive lock.
    fn rollback(&self, ctx: &Context) -> Result<(), ImageError> {
        let blobs = ctx.db.referenced_blobs()?;
        for d in ctx.blobs.list()? {
            if !self.blobs.contains(&d) && !blobs.contains(&d) {
                ctx.blobs.remove(&d)?;
            }
        }
        let layers = ctx.db.referenced_layers()?;
        for c in ctx.snapshots.list()? {
            if !self.snapshots.contains(&c) && !layers.contains(&c) {
                ctx.snapshots.remove(&c)?;
            }
        }
        Ok(())
    }
}
