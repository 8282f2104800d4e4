//! `commit`: a container's upper layer becomes a new layer on top of its image. The
//! layer is an uncompressed tar of the upper directory with overlay whiteouts converted
//! to OCI ones; the config is the image's (unknown fields kept) with the container's
//! Cmd, Entrypoint, Env, WorkingDir, User and Labels, then `--change` lines, a history
//! entry with the author and message, and the new diff_id. The container is paused while
//! the layer is written when asked (docker's default).

use std::path::Path;

use serde_json::{json, Map, Value};

use super::archive::{append_tree, TreeOptions};
use super::rootfs::Layout;
use super::{ops, Container, Status};
use crate::context::Context;
use crate::image::changes::{self, ChangeError};
use crate::image::compression::Compression;
use crate::image::digest::Digest;
use crate::image::install::{self, Installed};
use crate::image::oci::Descriptor;
use crate::image::reference::ImageRef;
use crate::image::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("writing the layer: {0}")]
    Layer(std::io::Error),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Ops(#[from] ops::OpsError),
}

pub struct Options<'a> {
    pub author: Option<&'a str>,
    pub message: Option<&'a str>,
    pub changes: &'a [String],
    pub pause: bool,
    pub name: Option<&'a ImageRef>,
}

/// The image config's `config` with the container's settings over it.
fn merged_config(base: Option<&Value>, c: &Container) -> Map<String, Value> {
    let mut m = base.and_then(Value::as_object).cloned().unwrap_or_default();
    let cfg = &c.spec.config;
    let env = if cfg.env.is_empty() {
        Value::Null
    } else {
        json!(cfg.env)
    };
    m.insert("Env".into(), env);
    m.insert("Cmd".into(), json!(cfg.cmd));
    m.insert("Entrypoint".into(), json!(cfg.entrypoint));
    m.insert("WorkingDir".into(), json!(cfg.working_dir));
    m.insert("User".into(), json!(cfg.user));
    m.insert("Labels".into(), json!(cfg.labels));
    m
}

pub fn commit(ctx: &mut Context, c: &Container, o: &Options) -> Result<Installed, CommitError> {
    // Bad changes fail before anything is written.
    let image_id = Digest::parse(&c.image_id).map_err(ImageError::from)?;
    let raw = ctx.blobs.read(&image_id).map_err(ImageError::from)?;
    let mut config: Value = serde_json::from_slice(&raw).map_err(|source| ImageError::Config {
        digest: image_id.clone(),
        source,
    })?;
    let mut merged = merged_config(config.get("config"), c);
    for ch in o.changes {
        changes::apply(&mut merged, ch)?;
    }
    let pause = o.pause && c.effective_status() == Status::Running;
    let rt = ops::runtime(&ctx.root, c);
    if pause {
        rt.pause(&c.id).map_err(ops::OpsError::from)?;
    }
    let layer = write_layer(ctx, c);
    if pause {
        let _ = rt.resume(&c.id);
    }
    let (diff_id, size) = layer?;
    let now = super::now();
    config["created"] = json!(now);
    config["config"] = Value::Object(merged);
    config["container"] = json!(c.id);
    config["container_config"] = serde_json::to_value(&c.spec.config).map_err(ImageError::Json)?;
    if let Some(a) = o.author {
        config["author"] = json!(a);
    }
    if let Some(m) = o.message {
        config["comment"] = json!(m);
    }
    let mut entry = json!({
        "created": now,
        "created_by": std::iter::once(c.spec.path.as_str())
            .chain(c.spec.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
    });
    if let Some(a) = o.author {
        entry["author"] = json!(a);
    }
    if let Some(m) = o.message {
        entry["comment"] = json!(m);
    }
    push(&mut config, "history", entry);
    push(
        &mut config["rootfs"],
        "diff_ids",
        json!(diff_id.to_string()),
    );
    config["rootfs"]["type"] = json!("layers");
    let cfg_bytes = serde_json::to_vec(&config).map_err(ImageError::Json)?;
    crate::fault::at(crate::fault::Step::CommitLayerWritten);
    let mut layers = install::layer_descriptors(ctx, &image_id)?;
    layers.push(Descriptor::layer(
        Compression::None.layer_media_type(),
        &diff_id,
        size,
    ));
    Ok(install::install_local(ctx, &cfg_bytes, layers, o.name)?)
}

fn push(v: &mut Value, key: &str, item: Value) {
    match v.get_mut(key).and_then(Value::as_array_mut) {
        Some(list) => list.push(item),
        None => v[key] = json!([item]),
    }
}

/// The upper directory as a layer blob: its digest (the diff_id) and size.
pub(crate) fn write_layer(ctx: &Context, c: &Container) -> Result<(Digest, u64), CommitError> {
    let upper = Layout::new(&super::dir(&ctx.root, &c.id)).upper;
    let w = ctx.blobs.writer(None).map_err(ImageError::from)?;
    let mut b = tar::Builder::new(w);
    let o = TreeOptions {
        whiteouts: true,
        ..Default::default()
    };
    append_tree(&mut b, &upper, Path::new(""), o).map_err(CommitError::Layer)?;
    let w = b.into_inner().map_err(CommitError::Layer)?;
    let size = w.written();
    let digest = w.commit().map_err(ImageError::from)?;
    Ok((digest, size))
}
