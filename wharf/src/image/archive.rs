//! `save` and `load`: image archives as docker and podman write them. `save` writes an
//! OCI image layout (oci-layout, index.json, blobs/sha256) and, for docker-archive, the
//! `manifest.json` docker and podman read, pointing at the same blobs (docker 25's
//! format). `load` reads docker-archive (docker, podman, skopeo; legacy `<id>/layer.tar`
//! or blob paths) and OCI layouts, compressed or not, in one streaming pass, unpacking each
//! layer meanwhile once the archive has shown which layer it is (`early`).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::compression::{self, Compression};
use super::digest::{is_hex64, Digest};
use super::early::{self, EarlyUnpack};
use super::install::{self, Installed};
use super::oci::{
    default_platform, is_index, select_platform, Descriptor, Index, Manifest, IMAGE_NAME,
    OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, REF_NAME,
};
use super::reference::ImageRef;
use super::store::BlobStore;
use super::ImageError;
use crate::context::Context;
use crate::snapshot::Unpacked;

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
    let stop = AtomicBool::new(false);
    let (read, early) = std::thread::scope(|s| {
        let (ready, queue) = std::sync::mpsc::channel();
        let (snapshots, stop) = (&ctx.snapshots, &stop);
        let unpacking = s.spawn(move || snapshots.unpack_as_ready(queue, stop));
        let mut early = EarlyUnpack::new(&ctx.blobs, ready);
        let read = read_entries(&ctx.blobs, input, &mut early);
        if read.is_err() {
            // What is queued is not worth unpacking just to be removed again.
            stop.store(true, Ordering::SeqCst);
        }
        drop(early);
        match unpacking.join() {
            Ok(early) => (read, early),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let Entries { json, files } = read?;
    // A layer that failed early is unpacked again below if an image needs it, and its
    // failure reported then; the layers unpacked before it count as unpacked.
    let early = early.unpacked;
    crate::fault::at(crate::fault::Step::LoadBlobsStored);
    if let Some(m) = json.get("manifest.json") {
        let entries: Vec<DockerEntry> =
            serde_json::from_slice(m).map_err(|source| ArchiveError::Json {
                file: "manifest.json".into(),
                source,
            })?;
        return entries
            .iter()
            .map(|e| load_docker_entry(ctx, e, &json, &files, early.clone()))
            .collect();
    }
    if let Some(i) = json.get("index.json") {
        let index: Index = serde_json::from_slice(i).map_err(|source| ArchiveError::Json {
            file: "index.json".into(),
            source,
        })?;
        let mut out = Vec::new();
        for d in &index.manifests {
            out.push(load_oci_entry(ctx, d, early.clone())?);
        }
        return Ok(out);
    }
    Err(ArchiveError::NoManifest)
}

/// An archive's files once read: JSON documents kept in memory by path, and every other
/// file stored as a blob.
struct Entries {
    json: HashMap<String, Vec<u8>>,
    files: HashMap<String, Digest>,
}

/// Reads every file of the archive, handing each blob and document to `early` as it is
/// stored.
fn read_entries(
    blobs: &BlobStore,
    input: impl Read,
    early: &mut EarlyUnpack,
) -> Result<Entries, ArchiveError> {
    let mut archive = tar::Archive::new(input);
    let mut out = Entries {
        json: HashMap::new(),
        files: HashMap::new(),
    };
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
        // The entry's size, not its header's: a PAX header carries sizes over 8 GiB.
        let size = entry.size();
        if named_digest.is_none() && path.ends_with(".json")
            || path == "repositories"
            || path == "oci-layout"
        {
            if size > MAX_JSON {
                return Err(ArchiveError::TooLarge(path));
            }
            let buf = read_small(&mut entry, size)?;
            early.document(&Digest::of(&buf), &buf);
            out.json.insert(path, buf);
            continue;
        }
        let d = if size <= early::MAX_DOCUMENT {
            let buf = read_small(&mut entry, size)?;
            let (d, _) = blobs.put_reader(&mut &buf[..], named_digest)?;
            early.document(&d, &buf);
            d
        } else {
            blobs.put_reader(&mut entry, named_digest)?.0
        };
        early.stored(&d);
        out.files.insert(path, d);
    }
    Ok(out)
}

fn read_small(r: &mut impl Read, size: u64) -> Result<Vec<u8>, ArchiveError> {
    let mut buf = Vec::with_capacity(size as usize);
    r.read_to_end(&mut buf).map_err(ArchiveError::Read)?;
    Ok(buf)
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
    early: Unpacked,
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
    let image = install::install(ctx, &body, &names, &[], early)?;
    Ok(Loaded { image, names })
}

fn load_oci_entry(
    ctx: &mut Context,
    d: &Descriptor,
    early: Unpacked,
) -> Result<Loaded, ArchiveError> {
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
    let image = install::install(ctx, &body, &names, &[], early)?;
    Ok(Loaded { image, names })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::context::Access;
    use crate::snapshot::chain_ids;

    /// A gzip layer holding a one-byte file and a hard link to it; its blob and diff_id.
    fn layer(name: &str) -> (Vec<u8>, Digest) {
        let mut b = tar::Builder::new(Vec::new());
        append_to(&mut b, name, b"x");
        let mut h = header(0);
        h.set_entry_type(tar::EntryType::Link);
        b.append_link(&mut h, format!("{name}-link"), name).unwrap();
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        (gz.finish().unwrap(), Digest::of(&tar))
    }

    fn append_to(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = header(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }

    /// Reads `data`, and before going past `gate` waits until `path` exists; `seen` says
    /// whether it did.
    struct Gate<'a> {
        data: &'a [u8],
        pos: usize,
        gate: usize,
        path: &'a Path,
        seen: Option<bool>,
    }

    impl Read for Gate<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos >= self.gate && self.seen.is_none() {
                let deadline = Instant::now() + Duration::from_secs(10);
                while !self.path.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                self.seen = Some(self.path.exists());
            }
            let end = if self.pos < self.gate {
                self.gate
            } else {
                self.data.len()
            };
            let n = buf.len().min(end - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn a_layer_is_unpacked_while_the_rest_of_the_archive_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = Context::open(dir.path(), Access::Shared).unwrap();
        let (b1, diff1) = layer("first");
        let (b2, diff2) = layer("second");
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff1.to_string(), diff2.to_string()]},
        }))
        .unwrap();
        let desc =
            |kind: &str, blob: &[u8]| Descriptor::layer(kind, &Digest::of(blob), blob.len() as u64);
        let gzip = Compression::Gzip.layer_media_type();
        let manifest = serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: desc(OCI_CONFIG, &config),
            layers: vec![desc(gzip, &b1), desc(gzip, &b2)],
        })
        .unwrap();
        let index = serde_json::to_vec(&Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![desc(OCI_MANIFEST, &manifest)],
        })
        .unwrap();
        // wharf's own order: the manifest and config, then the layers, then the index.
        let mut b = tar::Builder::new(Vec::new());
        for blob in [&manifest, &config, &b1] {
            append_to(&mut b, &blob_path(&Digest::of(blob)), blob);
        }
        let gate = b.get_ref().len();
        append_to(&mut b, &blob_path(&Digest::of(&b2)), &b2);
        append_to(&mut b, "index.json", &index);
        let data = b.into_inner().unwrap();
        let first = ctx.snapshots.path(&diff1);
        let mut input = Gate {
            data: &data,
            pos: 0,
            gate,
            path: &first,
            seen: None,
        };
        let loaded = load(&mut ctx, &mut input).unwrap();
        assert_eq!(input.seen, Some(true), "the first layer waited for the end");
        assert_eq!(loaded.len(), 1);
        let top = &chain_ids(&[diff1.clone(), diff2])[1];
        assert!(ctx.snapshots.path(top).join("second").is_file());
        // The size the early unpack counted (a hard link is not content twice), not one
        // measured afterwards from the tree.
        assert_eq!(ctx.db.layer_size(&diff1).unwrap(), Some(1));
        assert_eq!(ctx.snapshots.measure(&diff1), 2);
    }
}
