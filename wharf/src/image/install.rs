//! Records an image whose blobs are in the content store: checks the manifest and config
//! (`plan`), unpacks missing layers into snapshots, verifying diff_ids (a pull does it as each
//! blob arrives), then makes the image and its names visible in one database transaction
//! (`finish`). Until that commit nothing of the new
//! image is visible, so an interruption leaves the store as it was.

use super::digest::Digest;
use super::layout;
use super::oci::{Descriptor, ImageConfig, Manifest, OCI_CONFIG, OCI_MANIFEST};
use super::reference::ImageRef;
use super::ImageError;
use crate::context::Context;
use crate::snapshot::{chain_ids, Job, Unpacked};
use crate::store::{LayerRow, NewImage};

#[derive(Debug, Clone)]
pub struct Installed {
    pub id: Digest,
    pub new: bool,
}

/// The layer descriptors of an installed image, bottom first, for an image made on top
/// of it (commit, build).
pub fn layer_descriptors(ctx: &Context, id: &Digest) -> Result<Vec<Descriptor>, ImageError> {
    Ok(ctx
        .db
        .layers(id)?
        .iter()
        .map(|l| Descriptor::layer(&l.media_type, &l.blob, l.blob_size))
        .collect())
}

/// Installs an image made here (import, commit): stores its config, writes an OCI manifest
/// over `layers` (blobs already in the store) and installs it under `name`, if any.
pub fn install_local(
    ctx: &mut Context,
    config: &[u8],
    layers: Vec<Descriptor>,
    name: Option<&ImageRef>,
) -> Result<Installed, ImageError> {
    let config_digest = ctx.blobs.put(config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: OCI_CONFIG.into(),
            digest: config_digest.to_string(),
            size: config.len() as u64,
            annotations: None,
            platform: None,
        },
        layers,
    };
    let body = serde_json::to_vec(&manifest).map_err(ImageError::Json)?;
    let names: Vec<ImageRef> = name.cloned().into_iter().collect();
    install(ctx, &body, &names, &[], Unpacked::new())
}

/// Installs the image described by `manifest` (stored as a blob here) with `names` as tags
/// and `repo_digest` names such as `docker.io/library/alpine@sha256:...`. `unpacked` holds
/// the layers this operation has unpacked already (a load does while it reads).
pub fn install(
    ctx: &mut Context,
    manifest: &[u8],
    names: &[ImageRef],
    repo_digests: &[String],
    mut unpacked: Unpacked,
) -> Result<Installed, ImageError> {
    let plan = plan(ctx, manifest)?;
    // A missing or short blob is named before anything is unpacked.
    for i in 0..plan.jobs.len() {
        plan.blob_size(ctx, i)?;
    }
    unpacked.extend(ctx.snapshots.unpack_all(&plan.jobs)?);
    crate::fault::at(crate::fault::Step::ImageUnpacked);
    finish(ctx, plan, &unpacked, names, repo_digests)
}

/// An image whose manifest is stored and whose config is stored and checked, with the unpack
/// job of each layer; the layers' blobs may still be on their way (a pull unpacks each as it
/// arrives).
pub struct Plan {
    manifest_digest: Digest,
    manifest: Manifest,
    config_digest: Digest,
    config: ImageConfig,
    chains: Vec<Digest>,
    pub jobs: Vec<Job>,
}

impl Plan {
    /// The stored size of layer `i`'s blob, which must be the manifest's.
    fn blob_size(&self, ctx: &Context, i: usize) -> Result<u64, ImageError> {
        let (job, layer) = (&self.jobs[i], &self.manifest.layers[i]);
        let size = ctx.blobs.size(&job.blob)?;
        if size != layer.size {
            return Err(ImageError::Blob(super::store::BlobError::Size {
                digest: job.blob.clone(),
                expected: layer.size,
                actual: size,
            }));
        }
        Ok(size)
    }
}

/// Stores `manifest`, checks the config it names (which must be stored) and plans the
/// unpacking of its layers.
pub fn plan(ctx: &Context, manifest: &[u8]) -> Result<Plan, ImageError> {
    let manifest_digest = ctx.blobs.put(manifest)?;
    let m: Manifest = serde_json::from_slice(manifest).map_err(|source| ImageError::Manifest {
        digest: manifest_digest.clone(),
        source,
    })?;
    let config_digest = Digest::parse(&m.config.digest)?;
    let config_bytes = ctx.blobs.read(&config_digest)?;
    if Digest::of(&config_bytes) != config_digest {
        return Err(ImageError::Corrupt(config_digest));
    }
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|source| ImageError::Config {
            digest: config_digest.clone(),
            source,
        })?;
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(ImageError::LayerCount {
            config: config_digest,
            diff_ids: config.rootfs.diff_ids.len(),
            layers: m.layers.len(),
        });
    }
    let diff_ids = config.diff_ids()?;
    let chains = chain_ids(&diff_ids);
    let mut jobs = Vec::new();
    for (i, layer) in m.layers.iter().enumerate() {
        let blob = Digest::parse(&layer.digest)?;
        jobs.push(Job {
            chain_id: chains[i].clone(),
            blob_path: ctx.blobs.path(&blob),
            blob,
            diff_id: diff_ids[i].clone(),
        });
    }
    Ok(Plan {
        manifest_digest,
        manifest: m,
        config_digest,
        config,
        chains,
        jobs,
    })
}

/// Records the planned image once its layers are unpacked (`unpacked`: the content size of
/// each layer this operation unpacked, as `Snapshots::unpack_all` returns them).
pub fn finish(
    ctx: &mut Context,
    plan: Plan,
    unpacked: &Unpacked,
    names: &[ImageRef],
    repo_digests: &[String],
) -> Result<Installed, ImageError> {
    let mut layers = Vec::with_capacity(plan.jobs.len());
    for (i, job) in plan.jobs.iter().enumerate() {
        let blob_size = plan.blob_size(ctx, i)?;
        let size = match unpacked.get(&job.chain_id) {
            Some(&s) => s,
            None => match ctx.db.layer_size(&job.chain_id)? {
                Some(s) => s,
                None => ctx.snapshots.measure(&job.chain_id),
            },
        };
        layers.push(LayerRow {
            chain_id: job.chain_id.clone(),
            diff_id: job.diff_id.clone(),
            parent: i.checked_sub(1).map(|p| plan.chains[p].clone()),
            size,
            blob: job.blob.clone(),
            blob_size,
            media_type: plan.manifest.layers[i].media_type.clone(),
        });
    }
    let Plan {
        manifest_digest,
        manifest: m,
        config_digest,
        config,
        ..
    } = plan;
    let img = NewImage {
        id: config_digest.clone(),
        manifest_digest,
        manifest_media_type: m.media_type.clone().unwrap_or_else(|| OCI_MANIFEST.into()),
        created: config.created.clone(),
        layers,
        tags: names.iter().filter_map(ImageRef::tagged_name).collect(),
        repo_digests: repo_digests.to_vec(),
    };
    let new = ctx.db.add_image(&img)?;
    crate::fault::at(crate::fault::Step::ImageRecorded);
    layout::write_index(ctx)?;
    Ok(Installed {
        id: config_digest,
        new,
    })
}
