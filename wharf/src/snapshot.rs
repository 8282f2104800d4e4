//! Unpacked layers, one directory per chain id under `snapshots/`, shared by every image
//! that has the same layer stack. A layer is unpacked into a temporary directory, its
//! diff_id checked, then renamed into place, so a present directory is always complete.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest as _, Sha256};

use crate::image::digest::Digest;
use crate::image::store::ReadOnce;
use crate::image::unpack::{self, UnpackError};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("layer {blob}: {source}")]
    Unpack { blob: Digest, source: UnpackError },
    #[error(
        "layer {blob}: diff_id mismatch: the image config says {expected}, the layer is {actual}"
    )]
    DiffId {
        blob: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("snapshot directory {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Chain ids per the OCI image spec: the first is the diff_id, each next one is
/// sha256("<previous chain id> <diff_id>").
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let h = Sha256::new_with_prefix(format!("{prev} {d}"));
                Digest::from_hex(&hex::encode(h.finalize()))
                    .unwrap_or_else(|_| unreachable!("sha256 hex is always valid"))
            }
        };
        out.push(next);
    }
    out
}

/// One layer to unpack: where its blob is and what it must hash to uncompressed.
#[derive(Debug, Clone)]
pub struct Job {
    pub chain_id: Digest,
    pub blob: Digest,
    pub blob_path: PathBuf,
    pub diff_id: Digest,
}

/// The content size of each layer an operation unpacked, by chain id; a layer whose
/// snapshot was already there is not in it.
pub type Unpacked = HashMap<Digest, u64>;

/// What `Snapshots::unpack_as_ready` did: the layers it unpacked, and the first failure.
#[derive(Debug)]
pub struct Outcome {
    pub unpacked: Unpacked,
    pub failure: Option<SnapshotError>,
}

impl Outcome {
    pub fn into_result(self) -> Result<Unpacked, SnapshotError> {
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.unpacked),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    pub fn open(dir: &Path) -> Result<Self, SnapshotError> {
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.path(chain_id).is_dir()
    }

    /// Unpacks `job` unless its snapshot exists; returns the content size when it unpacked.
    pub fn unpack(&self, job: &Job) -> Result<Option<u64>, SnapshotError> {
        if self.exists(&job.chain_id) {
            return Ok(None);
        }
        let tmp_root = self.dir.join("tmp");
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempdir_in(&tmp_root)
            .map_err(io_err(&tmp_root))?;
        let blob = ReadOnce::open(&job.blob_path).map_err(io_err(&job.blob_path))?;
        let out =
            unpack::unpack_layer(blob, tmp.path()).map_err(|source| SnapshotError::Unpack {
                blob: job.blob.clone(),
                source,
            })?;
        if out.diff_id != job.diff_id {
            return Err(SnapshotError::DiffId {
                blob: job.blob.clone(),
                expected: job.diff_id.clone(),
                actual: out.diff_id,
            });
        }
        let dest = self.path(&job.chain_id);
        let staged = tmp.keep();
        match fs::rename(&staged, &dest) {
            Ok(()) => Ok(Some(out.content_size)),
            // Another process finished the same layer first; theirs is as good as ours.
            Err(_) if dest.is_dir() => {
                remove_tree(&staged)?;
                Ok(Some(out.content_size))
            }
            Err(e) => {
                remove_tree(&staged)?;
                Err(io_err(&dest)(e))
            }
        }
    }

    /// Unpacks all jobs, as many at a time as there are cores.
    pub fn unpack_all(&self, jobs: &[Job]) -> Result<Unpacked, SnapshotError> {
        let (ready, queue) = std::sync::mpsc::channel();
        for job in jobs {
            let _ = ready.send(job.clone());
        }
        drop(ready);
        self.unpack_queue(queue, &AtomicBool::new(false), jobs.len())
            .into_result()
    }

    /// Unpacks the jobs that arrive on `queue`, as they arrive, as many at a time as there
    /// are cores, until its sender is dropped. No new job starts after a failure or once
    /// `stop` is set (by a caller whose own part failed), so what is queued then is dropped.
    pub fn unpack_as_ready(&self, queue: Receiver<Job>, stop: &AtomicBool) -> Outcome {
        self.unpack_queue(queue, stop, usize::MAX)
    }

    /// `unpack_as_ready` with no more workers than `jobs`, the most that can arrive.
    fn unpack_queue(&self, queue: Receiver<Job>, stop: &AtomicBool, jobs: usize) -> Outcome {
        let queue = Mutex::new(queue);
        let outcome = Mutex::new(Outcome {
            unpacked: Unpacked::new(),
            failure: None,
        });
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = cores.min(jobs).max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let Some(job) = queue.lock().ok().and_then(|q| q.recv().ok()) else {
                        return;
                    };
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let r = self.unpack(&job);
                    let Ok(mut outcome) = outcome.lock() else {
                        return;
                    };
                    match r {
                        Ok(Some(size)) => {
                            outcome.unpacked.insert(job.chain_id, size);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            stop.store(true, Ordering::SeqCst);
                            outcome.failure.get_or_insert(e);
                        }
                    }
                });
            }
        });
        // A worker that panicked has made the scope panic already.
        outcome.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// Content bytes of an existing snapshot, for a layer whose size was never recorded.
    pub fn measure(&self, chain_id: &Digest) -> u64 {
        walkdir::WalkDir::new(self.path(chain_id))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    pub fn remove(&self, chain_id: &Digest) -> Result<(), SnapshotError> {
        let p = self.path(chain_id);
        if !p.exists() {
            return Ok(());
        }
        // Rename first so a half-deleted tree never looks like a complete snapshot.
        let doomed = self.dir.join("tmp").join(format!("rm-{}", chain_id.hex()));
        fs::rename(&p, &doomed).map_err(io_err(&p))?;
        remove_tree(&doomed)
    }

    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let e = e.map_err(io_err(&self.dir))?;
            if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Removes leftovers of interrupted unpacks; the caller holds the exclusive lock.
    pub fn clean_tmp(&self) -> Result<(), SnapshotError> {
        let tmp = self.dir.join("tmp");
        for e in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            remove_tree(&e.map_err(io_err(&tmp))?.path())?;
        }
        Ok(())
    }
}

fn remove_tree(p: &Path) -> Result<(), SnapshotError> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(p)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn diff_id_mismatch_leaves_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = Snapshots::open(&dir.path().join("s")).unwrap();
        let right = layer_job(dir.path(), "f", b"x");
        let job = |diff_id: Digest| Job {
            chain_id: diff_id.clone(),
            blob: right.blob.clone(),
            blob_path: right.blob_path.clone(),
            diff_id,
        };
        let wrong = job(Digest::of(b"other"));
        assert!(matches!(
            snaps.unpack(&wrong),
            Err(SnapshotError::DiffId { .. })
        ));
        assert!(!snaps.exists(&wrong.chain_id));
        assert_eq!(fs::read_dir(dir.path().join("s/tmp")).unwrap().count(), 0);
        let right = job(right.diff_id.clone());
        assert_eq!(
            snaps.unpack_all(std::slice::from_ref(&right)).unwrap(),
            Unpacked::from([(right.chain_id.clone(), 1)])
        );
        assert!(snaps.path(&right.chain_id).join("f").is_file());
        assert_eq!(snaps.list().unwrap(), vec![right.chain_id.clone()]);
    }

    /// A one-file layer `name` holding `data`, written to `dir/name`; its unpack job.
    fn layer_job(dir: &Path, name: &str, data: &[u8]) -> Job {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        let tar = b.into_inner().unwrap();
        let blob_path = dir.join(name);
        fs::write(&blob_path, &tar).unwrap();
        Job {
            chain_id: Digest::of(name.as_bytes()),
            blob: Digest::of(&tar),
            blob_path,
            diff_id: Digest::of(&tar),
        }
    }

    #[test]
    fn layers_are_unpacked_as_they_arrive_not_after_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = Snapshots::open(&dir.path().join("s")).unwrap();
        let jobs = [
            layer_job(dir.path(), "first", b"1"),
            layer_job(dir.path(), "second", b"22"),
        ];
        let (ready, queue) = std::sync::mpsc::channel();
        let out = std::thread::scope(|s| {
            let unpacking = s.spawn(|| snaps.unpack_as_ready(queue, &AtomicBool::new(false)));
            // The second layer's blob "arrives" first: it is unpacked while the first is
            // still on its way.
            ready.send(jobs[1].clone()).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !snaps.exists(&jobs[1].chain_id) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "second never unpacked"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert!(!snaps.exists(&jobs[0].chain_id));
            ready.send(jobs[0].clone()).unwrap();
            drop(ready);
            unpacking.join().unwrap()
        });
        assert_eq!(
            out.into_result().unwrap(),
            Unpacked::from([(jobs[0].chain_id.clone(), 1), (jobs[1].chain_id.clone(), 2)])
        );
        assert!(snaps.path(&jobs[0].chain_id).join("first").is_file());
    }

    #[test]
    fn nothing_sent_is_nothing_unpacked_and_a_set_stop_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = Snapshots::open(&dir.path().join("s")).unwrap();
        let (ready, queue) = std::sync::mpsc::channel::<Job>();
        drop(ready);
        let out = snaps.unpack_as_ready(queue, &AtomicBool::new(false));
        assert!(out.unpacked.is_empty() && out.failure.is_none());
        let job = layer_job(dir.path(), "queued", b"1");
        let (ready, queue) = std::sync::mpsc::channel();
        ready.send(job.clone()).unwrap();
        drop(ready);
        let out = snaps.unpack_as_ready(queue, &AtomicBool::new(true));
        assert!(out.unpacked.is_empty() && out.failure.is_none());
        assert!(!snaps.exists(&job.chain_id));
    }

    #[test]
    fn a_failure_stops_what_follows_and_keeps_what_went_before() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = Snapshots::open(&dir.path().join("s")).unwrap();
        let good = layer_job(dir.path(), "good", b"1");
        let mut bad = layer_job(dir.path(), "bad", b"2");
        bad.diff_id = Digest::of(b"not this layer");
        let after = layer_job(dir.path(), "after", b"3");
        let stop = AtomicBool::new(false);
        let (ready, queue) = std::sync::mpsc::channel();
        let out = std::thread::scope(|s| {
            let unpacking = s.spawn(|| snaps.unpack_as_ready(queue, &stop));
            ready.send(good.clone()).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !snaps.exists(&good.chain_id) {
                assert!(std::time::Instant::now() < deadline, "good never unpacked");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            ready.send(bad).unwrap();
            while !stop.load(Ordering::SeqCst) {
                assert!(std::time::Instant::now() < deadline, "bad never failed");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            ready.send(after.clone()).unwrap();
            drop(ready);
            unpacking.join().unwrap()
        });
        assert!(matches!(out.failure, Some(SnapshotError::DiffId { .. })));
        assert_eq!(out.unpacked, Unpacked::from([(good.chain_id, 1)]));
        assert!(!snaps.exists(&after.chain_id));
        assert_eq!(fs::read_dir(dir.path().join("s/tmp")).unwrap().count(), 0);
    }
}
