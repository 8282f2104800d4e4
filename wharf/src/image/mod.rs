//! Images: references, the content store, layer unpacking, registries and archives.

pub mod archive;
pub mod changes;
pub mod compression;
pub mod digest;
pub mod early;
pub mod filter;
pub mod import;
pub mod install;
pub mod layout;
pub mod lookup;
pub mod oci;
pub mod pattern;
pub mod reference;
pub mod registry;
pub mod remove;
pub mod store;
pub mod undo;
pub mod unpack;

use digest::{Digest, DigestError};

/// Failures of image operations that combine the stores.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid manifest {digest}: {source}")]
    Manifest {
        digest: Digest,
        source: serde_json::Error,
    },
    #[error("invalid image config {digest}: {source}")]
    Config {
        digest: Digest,
        source: serde_json::Error,
    },
    #[error("image config {config} lists {diff_ids} diff_ids for {layers} layers")]
    LayerCount {
        config: Digest,
        diff_ids: usize,
        layers: usize,
    },
    #[error("blob {0} is corrupt: its content does not match its digest")]
    Corrupt(Digest),
    #[error("encoding JSON: {0}")]
    Json(serde_json::Error),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Reference(#[from] reference::RefError),
    #[error(transparent)]
    Blob(#[from] store::BlobError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
