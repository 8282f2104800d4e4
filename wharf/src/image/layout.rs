//! Keeps the content store's `index.json` in step with the database, so that other OCI
//! tools (skopeo `oci:`, umoci) can read wharf's store: one entry per tag carrying the
//! tag as `org.opencontainers.image.ref.name`, and one per untagged image.

use std::collections::BTreeMap;
use std::fs::File;

use nix::fcntl::{Flock, FlockArg};

use super::oci::{Descriptor, Index, IMAGE_NAME, OCI_INDEX, REF_NAME};
use super::reference::ImageRef;
use super::store::{write_atomic, BlobError};
use super::ImageError;
use crate::context::Context;

pub fn write_index(ctx: &Context) -> Result<(), ImageError> {
    let root = ctx.blobs.root();
    let lock_path = root.join("index.json.lock");
    let io = |source| BlobError::Io {
        path: lock_path.clone(),
        source,
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io)?;
    // Serialises writers so the last one to write has read the latest database state.
    let _lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io(e.into()))?;
    let mut manifests = Vec::new();
    for img in ctx.db.images()? {
        let size = ctx.blobs.size(&img.manifest_digest)?;
        let desc = |annotations| Descriptor {
            media_type: img.manifest_media_type.clone(),
            digest: img.manifest_digest.to_string(),
            size,
            annotations,
            platform: None,
        };
        if img.tags.is_empty() {
            manifests.push(desc(None));
        }
        for t in &img.tags {
            let r = ImageRef::parse(t)?;
            let mut a = BTreeMap::new();
            a.insert(IMAGE_NAME.to_string(), t.clone());
            a.insert(REF_NAME.to_string(), r.tag.unwrap_or_default());
            manifests.push(desc(Some(a)));
        }
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests,
    };
    let body = serde_json::to_vec(&index).map_err(ImageError::Json)?;
    write_atomic(&root.join("index.json"), &body)?;
    Ok(())
}
