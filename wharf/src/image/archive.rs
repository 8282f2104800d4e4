//! `save` and `load`: image archives as docker and podman write them. `save` writes an
//! OCI image layout (oci-layout, index.json, blobs/sha256) and, for docker-archive, the
//! `manifest.json` docker and podman read, pointing at the same blobs (docker 25's
//! format). `load` reads docker-archive (docker, podman, skopeo; legacy `<id>/layer.tar`
//! or blob paths) and OCI layouts, compressed or not, in one streaming pass.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::compression::{self, Compression};
use super::digest::{is_hex64, Digest};
use super::install::{self, Installed};
use super::oci::{
    default_platform, is_index, select_platform, Descriptor, Index, Manifest, IMAGE_NAME,
    OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, REF_NAME,
};
use super::reference::ImageRef;
use super::ImageError;
use crate::context::Context;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading archive: {0}")]
    Read(io::Error),
    #[error("writing archive: {0}")]
    Write(io::Error),
    #[error("archive entry {0:?} is too large for a JSON document")]
    TooLarge(String),
    #[error("invalid {file} in archive: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error("archive has neither manifest.json nor index.json")]
    NoManifest,
    #[error("archive refers to {0:?}, which it does not contain")]
    MissingFile(String),
    #[error("archive index has no manifest for linux/amd64")]
    NoPlatform,
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl From<super::store::BlobError> for ArchiveError {
    fn from(e: super::store::BlobError) -> Self {
        Self::Image(e.into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
}

/// One entry of docker's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// An image to save: its manifest digest and the names to record for it.
pub struct SaveItem {
    pub manifest: Digest,
    pub names: Vec<ImageRef>,
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

pub fn save(
    ctx: &Context,
    items: &[SaveItem],
    format: Format,
    out: impl Write,
) -> Result<(), ArchiveError> {
    let mut tar = tar::Builder::new(out);
    let mut written = std::collections::HashSet::new();
    let mut index = Vec::new();
    let mut docker = Vec::new();
    append(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for item in items {
        let body = ctx.blobs.read(&item.manifest)?;
        let m: Manifest = serde_json::from_slice(&body).map_err(|source| ArchiveError::Json {
            file: item.manifest.to_string(),
            source,
        })?;
        let config = Digest::parse(&m.config.digest).map_err(ImageError::from)?;
        let mut layers = Vec::new();
        for d in std::iter::once(&item.manifest)
            .cloned()
            .chain(std::iter::once(config.clone()))
            .chain(
                m.layers
                    .iter()
                    .filter_map(|l| Digest::parse(&l.digest).ok()),
            )
        {
            if d != item.manifest && d != config {
                layers.push(blob_path(&d));
            }
            if written.insert(d.clone()) {
                let size = ctx.blobs.size(&d)?;
                let mut h = header(size);
                tar.append_data(&mut h, blob_path(&d), ctx.blobs.open_blob(&d)?)
                    .map_err(ArchiveError::Write)?;
            }
        }
        let desc = |annotations| Descriptor {
            media_type: m.media_type.clone().unwrap_or_else(|| OCI_MANIFEST.into()),
            digest: item.manifest.to_string(),
            size: body.len() as u64,
            annotations,
            platform: None,
        };
        if item.names.is_empty() {
            index.push(desc(None));
        }
        for n in &item.names {
            let mut a = BTreeMap::new();
            a.insert(IMAGE_NAME.to_string(), n.to_string());
            a.insert(REF_NAME.to_string(), n.tag.clone().unwrap_or_default());
            index.push(desc(Some(a)));
        }
        docker.push(DockerEntry {
            config: blob_path(&config),
            repo_tags: Some(item.names.iter().map(ImageRef::familiar).collect()),
            layers,
        });
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests: index,
    };
    append(
        &mut tar,
        "index.json",
        &serde_json::to_vec(&index).map_err(ImageError::Json)?,
    )?;
    if format == Format::DockerArchive {
        append(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&docker).map_err(ImageError::Json)?,
        )?;
    }
    tar.into_inner()
        .map_err(ArchiveError::Write)?
        .flush()
        .map_err(ArchiveError::Write)
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append(tar: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) -> Result<(), ArchiveError> {
    let mut h = header(data.len() as u64);
    tar.append_data(&mut h, name, data)
        .map_err(ArchiveError::Write)
}

/// What one loaded image got called; `names` is empty for an untagged image.
pub struct Loaded {
    pub image: Installed,
    pub names: Vec<ImageRef>,
}

const MAX_JSON: u64 = 16 << 20;

pub fn load(ctx: &mut Context, input: impl Read + Send) -> Result<Vec<Loaded>, ArchiveError> {
    let (_, input) = compression::decoder(input).map_err(ArchiveError::Read)?;
    let mut archive = tar::Archive::new(input);
    let mut json: HashMap<String, Vec<u8>> = HashMap::new();
    // Files stored as blobs, by their path in the archive.
    let mut files: HashMap<String, Digest> = HashMap::new();
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let named_digest = path
            .strip_prefix("blobs/sha256/")
            .filter(|h| is_hex64(h))
            .and_then(|h| Digest::from_hex(h).ok());
        if named_digest.is_none() && path.ends_with(".json")
            || path == "repositories"
            || path == "oci-layout"
        {
            let size = entry.header().size().map_err(ArchiveError::Read)?;
            if size > MAX_JSON {
                return Err(ArchiveError::TooLarge(path));
            }
            let mut buf = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut buf).map_err(ArchiveError::Read)?;
            json.insert(path, buf);
            continue;
        }
        let (d, _) = ctx.blobs.put_reader(&mut entry, named_digest)?;
        files.insert(path, d);
    }
    crate::fault::at(crate::fault::Step::LoadBlobsStored);
    if let Some(m) = json.get("manifest.json") {
        let entries: Vec<DockerEntry> =
            serde_json::from_slice(m).map_err(|source| ArchiveError::Json {
                file: "manifest.json".into(),
                source,
            })?;
        return entries
            .iter()
            .map(|e| load_docker_entry(ctx, e, &json, &files))
            .collect();
    }
    if let Some(i) = json.get("index.json") {
        let index: Index = serde_json::from_slice(i).map_err(|source| ArchiveError::Json {
            file: "index.json".into(),
            source,
        })?;
        let mut out = Vec::new();
        for d in &index.manifests {
            out.push(load_oci_entry(ctx, d)?);
        }
        return Ok(out);
    }
    Err(ArchiveError::NoManifest)
}

/// The blob holding an archive file, storing in-memory JSON files as blobs on demand.
fn file_blob(
    ctx: &Context,
    path: &str,
    json: &HashMap<String, Vec<u8>>,
    files: &HashMap<String, Digest>,
) -> Result<Digest, ArchiveError> {
    let path = path.trim_start_matches("./");
    if let Some(d) = files.get(path) {
        return Ok(d.clone());
    }
    if let Some(body) = json.get(path) {
        return Ok(ctx.blobs.put(body)?);
    }
    Err(ArchiveError::MissingFile(path.to_string()))
}

fn load_docker_entry(
    ctx: &mut Context,
    e: &DockerEntry,
    json: &HashMap<String, Vec<u8>>,
    files: &HashMap<String, Digest>,
) -> Result<Loaded, ArchiveError> {
    let config = file_blob(ctx, &e.config, json, files)?;
    let mut layers = Vec::new();
    for l in &e.layers {
        let d = file_blob(ctx, l, json, files)?;
        let mut head = [0u8; 8];
        let n = ctx
            .blobs
            .open_blob(&d)?
            .read(&mut head)
            .map_err(ArchiveError::Read)?;
        let kind = Compression::detect(&head[..n]);
        layers.push(Descriptor::layer(
            kind.layer_media_type(),
            &d,
            ctx.blobs.size(&d)?,
        ));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: OCI_CONFIG.into(),
            size: ctx.blobs.size(&config)?,
            digest: config.to_string(),
            annotations: None,
            platform: None,
        },
        layers,
    };
    let names = e
        .repo_tags
        .iter()
        .flatten()
        .map(|t| ImageRef::parse_tagged(t).map_err(ImageError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let body = serde_json::to_vec(&manifest).map_err(ImageError::Json)?;
    let image = install::install(ctx, &body, &names, &[])?;
    Ok(Loaded { image, names })
}

fn load_oci_entry(ctx: &mut Context, d: &Descriptor) -> Result<Loaded, ArchiveError> {
    let digest = Digest::parse(&d.digest).map_err(ImageError::from)?;
    let mut body = ctx.blobs.read(&digest)?;
    if is_index(&d.media_type, &body) {
        let index: Index = serde_json::from_slice(&body).map_err(|source| ArchiveError::Json {
            file: d.digest.clone(),
            source,
        })?;
        let m = select_platform(&index, &default_platform()).ok_or(ArchiveError::NoPlatform)?;
        body = ctx
            .blobs
            .read(&Digest::parse(&m.digest).map_err(ImageError::from)?)?;
    }
    let annotations = d.annotations.clone().unwrap_or_default();
    // containerd's full name first; a ref.name is a name only when it is more than a tag.
    let name = annotations.get(IMAGE_NAME).or_else(|| {
        annotations
            .get(REF_NAME)
            .filter(|n| n.contains(':') || n.contains('/'))
    });
    let names: Vec<ImageRef> = name
        .map(|n| ImageRef::parse_tagged(n).map_err(ImageError::from))
        .transpose()?
        .into_iter()
        .collect();
    let image = install::install(ctx, &body, &names, &[])?;
    Ok(Loaded { image, names })
}
