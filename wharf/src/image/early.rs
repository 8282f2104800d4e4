//! Unpacking an archive's layers while the rest of it is still being read. A stored blob is
//! known to be a layer, and which one, once the archive has shown a config that lists it
//! (an uncompressed layer's digest is its diff_id) or a manifest and its config (a
//! compressed one). Archives that hold these before their layers, as wharf's own and most
//! OCI ones do, get each layer unpacked by the snapshot workers as soon as its blob is
//! stored, while the reader goes on. This is only a head start: the install that follows
//! plans every image from what the archive names and unpacks whatever is not there yet, so
//! a layer never reached here costs time, not correctness. Configs of another platform are
//! passed over, as a multi-platform index installs only this one; a stack the archive turns
//! out not to install (two variants of amd64, a manifest no index names) stays unreferenced
//! until the next `image prune`, since removing a snapshot another process may have just
//! found takes the exclusive lock.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::Sender;

use super::digest::Digest;
use super::oci::{default_platform, ImageConfig, Manifest};
use super::store::BlobStore;
use crate::snapshot::{chain_ids, Job};

/// The largest JSON document worth looking at: configs and manifests are far smaller.
pub const MAX_DOCUMENT: u64 = 1 << 20;

/// What one layer blob unpacks to.
#[derive(Clone)]
struct Target {
    chain_id: Digest,
    diff_id: Digest,
}

pub struct EarlyUnpack<'a> {
    blobs: &'a BlobStore,
    ready: Sender<Job>,
    stored: HashSet<Digest>,
    /// Every layer a config or manifest read so far has named, by blob.
    layers: HashMap<Digest, Vec<Target>>,
    /// The layers of each config read so far, bottom first.
    configs: HashMap<Digest, Vec<Target>>,
    /// Manifests read before their config.
    waiting: Vec<Manifest>,
    /// Chain ids already sent to be unpacked.
    sent: HashSet<Digest>,
}

impl<'a> EarlyUnpack<'a> {
    /// Sends each layer to unpack on `ready` once it is both stored in `blobs` and known.
    pub fn new(blobs: &'a BlobStore, ready: Sender<Job>) -> Self {
        Self {
            blobs,
            ready,
            stored: HashSet::new(),
            layers: HashMap::new(),
            configs: HashMap::new(),
            waiting: Vec::new(),
            sent: HashSet::new(),
        }
    }

    /// A blob is now in the store.
    pub fn stored(&mut self, blob: &Digest) {
        self.stored.insert(blob.clone());
        self.send(blob);
    }

    /// A JSON document of the archive (a blob or a file such as docker's `<id>.json`),
    /// with its digest: a manifest or a config tells which blobs are layers.
    pub fn document(&mut self, digest: &Digest, body: &[u8]) {
        if body.first() != Some(&b'{') {
            return;
        }
        if let Ok(m) = serde_json::from_slice::<Manifest>(body) {
            self.manifest(m);
        } else if let Ok(c) = serde_json::from_slice::<ImageConfig>(body) {
            self.config(digest, &c);
        }
    }

    fn config(&mut self, digest: &Digest, c: &ImageConfig) {
        // Another platform's layers of a multi-platform archive are not installed.
        let want = default_platform();
        if !(c.os.is_empty() || c.os == want.os)
            || !(c.architecture.is_empty() || c.architecture == want.architecture)
        {
            return;
        }
        let Ok(diff_ids) = c.diff_ids() else {
            return;
        };
        let targets: Vec<Target> = chain_ids(&diff_ids)
            .into_iter()
            .zip(diff_ids)
            .map(|(chain_id, diff_id)| Target { chain_id, diff_id })
            .collect();
        for t in &targets {
            self.layer(t.diff_id.clone(), t.clone());
        }
        self.configs.insert(digest.clone(), targets);
        for m in std::mem::take(&mut self.waiting) {
            self.manifest(m);
        }
    }

    fn manifest(&mut self, m: Manifest) {
        let Ok(config) = Digest::parse(&m.config.digest) else {
            return;
        };
        let Some(targets) = self.configs.get(&config) else {
            self.waiting.push(m);
            return;
        };
        if targets.len() != m.layers.len() {
            return;
        }
        let known: Vec<(Digest, Target)> = m
            .layers
            .iter()
            .zip(targets)
            .filter_map(|(l, t)| Some((Digest::parse(&l.digest).ok()?, t.clone())))
            .collect();
        for (blob, t) in known {
            self.layer(blob, t);
        }
    }

    fn layer(&mut self, blob: Digest, t: Target) {
        self.layers.entry(blob.clone()).or_default().push(t);
        self.send(&blob);
    }

    fn send(&mut self, blob: &Digest) {
        if !self.stored.contains(blob) {
            return;
        }
        for t in self.layers.get(blob).into_iter().flatten() {
            if self.sent.insert(t.chain_id.clone()) {
                let _ = self.ready.send(Job {
                    chain_id: t.chain_id.clone(),
                    blob: blob.clone(),
                    blob_path: self.blobs.path(blob),
                    diff_id: t.diff_id.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::Receiver;

    use super::*;

    fn config(diff_ids: &[&Digest], arch: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        }))
        .unwrap()
    }

    fn manifest(config: &Digest, layers: &[&Digest]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "c", "digest": config.to_string(), "size": 1},
            "layers": layers.iter().map(|d| serde_json::json!({"mediaType": "l", "digest": d.to_string(), "size": 1})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    /// The (blob, chain id, diff_id) of each job sent so far.
    fn sent(queue: &Receiver<Job>) -> Vec<(Digest, Digest, Digest)> {
        queue
            .try_iter()
            .map(|j| (j.blob, j.chain_id, j.diff_id))
            .collect()
    }

    /// Runs `test` on an EarlyUnpack over an empty store, with the end its jobs arrive at.
    fn with_early(test: impl FnOnce(&mut EarlyUnpack, &Receiver<Job>, &BlobStore)) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let (ready, queue) = std::sync::mpsc::channel();
        test(&mut EarlyUnpack::new(&blobs, ready), &queue, &blobs);
    }

    #[test]
    fn a_compressed_layer_is_sent_once_its_manifest_and_config_are_read_in_any_order() {
        with_early(|e, queue, _| {
            let (gz1, gz2) = (Digest::of(b"gz1"), Digest::of(b"gz2"));
            let (d1, d2) = (Digest::of(b"tar1"), Digest::of(b"tar2"));
            let chains = chain_ids(&[d1.clone(), d2.clone()]);
            let c = config(&[&d1, &d2], "amd64");
            let cd = Digest::of(&c);
            e.stored(&gz2);
            e.document(&Digest::of(b"m"), &manifest(&cd, &[&gz1, &gz2]));
            assert!(sent(queue).is_empty(), "the config is not read yet");
            e.document(&cd, &c);
            assert_eq!(sent(queue), vec![(gz2, chains[1].clone(), d2)]);
            e.stored(&Digest::of(b"something else"));
            assert!(sent(queue).is_empty());
            e.stored(&gz1);
            e.stored(&gz1);
            assert_eq!(sent(queue), vec![(gz1, chains[0].clone(), d1)]);
        });
    }

    #[test]
    fn an_uncompressed_layer_is_known_from_the_config_alone() {
        with_early(|e, queue, blobs| {
            let tar = Digest::of(b"tar");
            e.stored(&tar);
            let c = config(&[&tar], "amd64");
            e.document(&Digest::of(&c), &c);
            let jobs: Vec<Job> = queue.try_iter().collect();
            assert_eq!(jobs.len(), 1);
            assert_eq!((&jobs[0].chain_id, &jobs[0].diff_id), (&tar, &tar));
            assert_eq!(jobs[0].blob_path, blobs.path(&tar));
        });
    }

    #[test]
    fn another_platforms_layers_and_other_documents_send_nothing() {
        with_early(|e, queue, _| {
            let tar = Digest::of(b"tar");
            e.stored(&tar);
            let c = config(&[&tar], "arm64");
            e.document(&Digest::of(&c), &c);
            e.document(&Digest::of(b"i"), br#"{"schemaVersion":2,"manifests":[]}"#);
            e.document(&Digest::of(b"x"), b"not json");
            assert!(sent(queue).is_empty());
        });
    }
}
