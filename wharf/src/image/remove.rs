//! Removing images the way `docker rmi` and `docker image prune` do, and collecting the
//! blobs and snapshots no image needs any more. Callers hold the exclusive lock.

use super::digest::Digest;
use super::layout;
use super::lookup::{self, Named};
use super::reference::ImageRef;
use super::ImageError;
use crate::context::Context;

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("conflict: unable to delete {0} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepos(String),
    #[error("conflict: unable to delete {image} ({how}) - image is being used by {state} container {container}")]
    InUse {
        image: String,
        how: &'static str,
        state: &'static str,
        container: String,
    },
    #[error(transparent)]
    Lookup(#[from] lookup::LookupError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("removing {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl From<crate::store::StoreError> for RemoveError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Image(e.into())
    }
}

/// What `rmi` did, in docker's words: `Untagged: x`, `Deleted: sha256:...`.
#[derive(Debug, Default)]
pub struct Report {
    pub untagged: Vec<String>,
    pub deleted: Vec<Digest>,
    pub reclaimed: u64,
}

fn familiar(name: &str) -> String {
    ImageRef::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_string())
}

/// `rmi [-f] input`.
pub fn rmi(ctx: &mut Context, input: &str, force: bool) -> Result<Report, RemoveError> {
    let (id, named) = lookup::find(&ctx.db, input)?;
    let img = ctx
        .db
        .image(&id)?
        .ok_or_else(|| lookup::LookupError::NotFound(input.to_string()))?;
    let mut report = Report::default();
    match named {
        Named::Tag(r) if img.tags.len() > 1 => {
            let name = r.tagged_name().unwrap_or_default();
            ctx.db.untag(&name)?;
            report.untagged.push(r.familiar());
            layout::write_index(ctx)?;
            return Ok(report);
        }
        Named::Id if !force => {
            let repos: std::collections::BTreeSet<String> = img
                .tags
                .iter()
                .filter_map(|t| ImageRef::parse(t).ok().map(|r| r.repository()))
                .collect();
            if repos.len() > 1 {
                return Err(RemoveError::MultipleRepos(id.short().to_string()));
            }
        }
        _ => {}
    }
    if let Some((container, running)) = user_of(ctx, &id)? {
        let short = |s: &str| s.chars().take(12).collect::<String>();
        if running || !force {
            return Err(RemoveError::InUse {
                image: id.short().to_string(),
                how: if running {
                    "cannot be forced"
                } else {
                    "must be forced"
                },
                state: if running { "running" } else { "stopped" },
                container: short(&container),
            });
        }
        // Forced while a stopped container uses it: only the names go, the layers stay
        // for the container.
        for t in &img.tags {
            ctx.db.untag(t)?;
            report.untagged.push(familiar(t));
        }
        layout::write_index(ctx)?;
        return Ok(report);
    }
    for t in &img.tags {
        report.untagged.push(familiar(t));
    }
    for d in &img.repo_digests {
        report.untagged.push(familiar(d));
    }
    delete_images(ctx, &[id], &mut report)?;
    Ok(report)
}

/// The first container created from `id`, and whether it is running.
fn user_of(ctx: &Context, id: &Digest) -> Result<Option<(String, bool)>, RemoveError> {
    let users = ctx.db.containers_of_image(id.as_str())?;
    let running = |state: &str| {
        serde_json::from_str::<crate::container::State>(state).is_ok_and(|s| {
            matches!(
                s.status,
                crate::container::Status::Running
                    | crate::container::Status::Paused
                    | crate::container::Status::Restarting
            )
        })
    };
    Ok(users
        .iter()
        .find(|(_, s)| running(s))
        .or(users.first())
        .map(|(c, s)| (c.clone(), running(s))))
}

/// `image prune`: dangling images, or with `all` every image; never one a container uses.
pub fn prune(ctx: &mut Context, all: bool) -> Result<Report, RemoveError> {
    // The build cache's images are the builder's: `builder prune` removes them.
    let cache = ctx.db.build_cache_images()?;
    let mut victims: Vec<Digest> = Vec::new();
    for i in ctx.db.images()? {
        if (all || i.tags.is_empty())
            && !cache.contains(i.id.as_str())
            && user_of(ctx, &i.id)?.is_none()
        {
            victims.push(i.id);
        }
    }
    let mut report = Report::default();
    for img in ctx.db.images()? {
        if victims.contains(&img.id) {
            report.untagged.extend(img.tags.iter().map(|t| familiar(t)));
            report
                .untagged
                .extend(img.repo_digests.iter().map(|t| familiar(t)));
        }
    }
    delete_images(ctx, &victims, &mut report)?;
    Ok(report)
}

/// `builder prune`: forgets the build cache and deletes the images only it kept (untagged,
/// used by no container).
pub fn prune_build_cache(ctx: &mut Context) -> Result<Report, RemoveError> {
    let cache = ctx.db.build_cache_clear()?;
    let mut victims = Vec::new();
    for i in ctx.db.images()? {
        if cache.contains(i.id.as_str()) && i.tags.is_empty() && user_of(ctx, &i.id)?.is_none() {
            victims.push(i.id);
        }
    }
    let mut report = Report::default();
    delete_images(ctx, &victims, &mut report)?;
    Ok(report)
}

fn delete_images(
    ctx: &mut Context,
    ids: &[Digest],
    report: &mut Report,
) -> Result<(), RemoveError> {
    let layers_before = ctx.db.referenced_layers()?;
    for id in ids {
        ctx.db.remove_image(id)?;
        report.deleted.push(id.clone());
    }
    let layers_after = ctx.db.referenced_layers()?;
    let mut gone: Vec<&Digest> = layers_before.difference(&layers_after).collect();
    gone.sort();
    report.deleted.extend(gone.into_iter().cloned());
    layout::write_index(ctx)?;
    report.reclaimed = collect_garbage(ctx)?;
    Ok(())
}

/// Deletes blobs and snapshots that no recorded image references; returns bytes freed.
pub fn collect_garbage(ctx: &mut Context) -> Result<u64, ImageError> {
    let blobs = ctx.db.referenced_blobs()?;
    let mut freed = 0;
    for d in ctx.blobs.list()? {
        if !blobs.contains(&d) {
            freed += ctx.blobs.size(&d).unwrap_or(0);
            ctx.blobs.remove(&d)?;
        }
    }
    let layers = ctx.db.referenced_layers()?;
    for c in ctx.snapshots.list()? {
        if !layers.contains(&c) {
            freed += ctx.snapshots.measure(&c);
            ctx.snapshots.remove(&c)?;
        }
    }
    Ok(freed)
}
