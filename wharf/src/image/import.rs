//! `import`: a root filesystem tarball (plain, gzip, xz or zstd) becomes a one-layer image.
//! The tarball is decompressed once into an uncompressed layer blob whose digest is the
//! diff_id; the config gets docker's import history entry and any `--change` lines.

use std::io::Read;

use serde_json::Map;

use super::changes::{self, ChangeError};
use super::compression;
use super::install::{self, Installed};
use super::oci::{Descriptor, History, ImageConfig, RootFs};
use super::reference::ImageRef;
use super::ImageError;
use crate::context::Context;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the tarball: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

pub struct Options<'a> {
    pub changes: &'a [String],
    pub message: Option<&'a str>,
    pub name: Option<&'a ImageRef>,
}

pub fn import(
    ctx: &mut Context,
    input: impl Read + Send,
    opts: &Options,
) -> Result<Installed, ImportError> {
    // Apply changes first so a bad change fails before any data is stored.
    let mut config = Map::new();
    for c in opts.changes {
        changes::apply(&mut config, c)?;
    }
    let (_, mut tar) = compression::decoder(input).map_err(ImportError::Read)?;
    let (layer, size) = ctx
        .blobs
        .put_reader(&mut tar, None)
        .map_err(|e| ImportError::Image(e.into()))?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let cfg = ImageConfig {
        created: Some(now.clone()),
        author: None,
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(config),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.to_string()],
        },
        history: vec![History {
            created: Some(now),
            created_by: None,
            author: None,
            comment: Some(
                opts.message
                    .map_or_else(|| "Imported from -".to_string(), str::to_string),
            ),
            empty_layer: false,
        }],
        comment: None,
    };
    let cfg_bytes = serde_json::to_vec(&cfg).map_err(ImageError::Json)?;
    let descriptor = Descriptor::layer(
        compression::Compression::None.layer_media_type(),
        &layer,
        size,
    );
    Ok(install::install_local(
        ctx,
        &cfg_bytes,
        vec![descriptor],
        opts.name,
    )?)
}
