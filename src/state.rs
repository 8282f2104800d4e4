//! Container state under `<root>/<id>/`: `state.json` (written to a temporary file and renamed),
//! the config as it was at create time, and `exec.fifo`. A container is locked with flock on its
//! directory while a command changes it. The init's pid is stored with its start time, so that a
//! recycled pid is never taken for the container.
//!
//! A deleted container's emptied directory is kept as `<root>/.=spare` for the next create
//! (renames, not mkdir and rmdir). On a disk filesystem such as ext4, mkdir allocates a block and
//! removal frees it, and with `discard` the last close of the removed directory waits for the
//! device to trim that block: 0.1 ms of every `run` when the root is on such a disk, up to 6 ms
//! at times. `=` is not allowed in a container ID, so the name can never be a container's.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

pub const OCI_VERSION: &str = "1.0.2";
pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const EXEC_FIFO: &str = "exec.fifo";
/// The empty directory kept for the next container (see the module's comment).
pub const SPARE: &str = ".=spare";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container does not exist")]
    NotExist,
    #[error("container with given ID already exists")]
    Exists,
    #[error("invalid container ID format: {0:?}")]
    InvalidId(String),
    #[error("{path:?}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path:?}: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("locking {path:?}: {source}")]
    Lock { path: PathBuf, source: Errno },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What hull records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat).
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
    pub cgroup_path: PathBuf,
    #[serde(default)]
    pub systemd_cgroup: bool,
}

/// The state as `hull state` and `list -f json` print it: runc's keys, in runc's order.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
    pub owner: &'a str,
}

/// The state handed to hooks on stdin (runtime-spec's State).
#[derive(Debug, Serialize)]
pub struct HookState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'static str,
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

impl State {
    pub fn report(&self, status: Status) -> Report<'_> {
        Report {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status: status.as_str(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: &self.owner,
        }
    }

    pub fn hook_state(&self, status: Status) -> Vec<u8> {
        serde_json::to_vec(&HookState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status: status.as_str(),
            pid: self.pid,
            bundle: &self.bundle,
            annotations: &self.annotations,
        })
        .expect("state serialises")
    }
}

/// Is `pid` still the process that started at `start_time`, and not a zombie?
pub fn process_alive(pid: i32, start_time: u64) -> bool {
    pid > 0
        && read_stat(pid)
            .is_some_and(|(state, start)| start == start_time && state != 'Z' && state != 'X')
}

/// (state letter, start time) of a process from /proc/<pid>/stat.
pub fn read_stat(pid: i32) -> Option<(char, u64)> {
    let stat = crate::procfile::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// runc's rule for container IDs: letters, digits and `_+-.`, and not `.` or `..`.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

/// The `--root` directory holding one directory per container.
pub struct Store {
    root: PathBuf,
}

/// A container's directory, locked for as long as this value lives.
pub struct ContainerDir {
    pub path: PathBuf,
    lock: Flock<File>,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Makes the directory of a new container, from the spare one when there is one; fails if
    /// the ID is taken.
    pub fn create(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        let path = self.dir(id);
        match rename_noreplace(&self.root.join(SPARE), &path) {
            Ok(()) => return lock(path),
            Err(Errno::EEXIST) => return Err(StateError::Exists),
            // No spare (ENOENT), or a filesystem without RENAME_NOREPLACE: make one.
            Err(_) => {}
        }
        let mkdir = || std::fs::DirBuilder::new().mode(0o711).create(&path);
        // The root is made only the first time: usually it is there.
        let made = match mkdir() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o711)
                    .create(&self.root)
                    .map_err(io(&self.root))?;
                mkdir()
            }
            r => r,
        };
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists)
            }
            Err(e) => return Err(io(&path)(e)),
        }
        lock(path)
    }

    /// Locks an existing container's directory and reads its state.
    pub fn open(&self, id: &str) -> Result<(ContainerDir, State), StateError> {
        validate_id(id)?;
        let path = self.dir(id);
        let dir = match lock_current(&path) {
            Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotExist)
            }
            r => r?,
        };
        let state = dir.read()?;
        Ok((dir, state))
    }

    /// Reads a container's state without locking it, for listings that must not wait on a
    /// command in progress.
    pub fn peek(&self, id: &str) -> Result<State, StateError> {
        let p = self.dir(id).join(STATE_FILE);
        let bytes = std::fs::read(&p).map_err(io(&p))?;
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path: p, source })
    }

    /// IDs of every container, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = match std::fs::read_dir(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            r => r.map_err(io(&self.root))?,
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn rename_noreplace(from: &Path, to: &Path) -> Result<(), Errno> {
    nix::fcntl::renameat2(
        None,
        from,
        None,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
}

/// Opens and locks a directory this command has just made or taken: no other command can
/// have moved it, since none acts on a directory without state.json.
fn lock(path: PathBuf) -> Result<ContainerDir, StateError> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(&path)
        .map_err(io(&path))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => return Ok(ContainerDir { path, lock }),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, source)) => return Err(StateError::Lock { path, source }),
        }
    }
}

/// Locks an existing container's directory. A command that waited for the lock may find
/// that the directory it locked was deleted meanwhile, or became the spare or another
/// container's: it then starts again with whatever the path names now.
fn lock_current(path: &Path) -> Result<ContainerDir, StateError> {
    loop {
        let dir = lock(path.to_path_buf())?;
        if still_at(&dir.lock, path).map_err(io(path))? {
            return Ok(dir);
        }
    }
}

/// Whether `path` is a directory with nothing in it.
pub(crate) fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// Whether `path` still names the directory open as `dir`.
fn still_at(dir: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (open, named) = (dir.metadata()?, std::fs::metadata(path)?);
    Ok(open.dev() == named.dev() && open.ino() == named.ino())
}

impl ContainerDir {
    pub fn read(&self) -> Result<State, StateError> {
        let p = self.path.join(STATE_FILE);
        let bytes = match std::fs::read(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotExist),
            r => r.map_err(io(&p))?,
        };
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path: p, source })
    }

    /// Replaces state.json atomically: readers see the old or the new state, never a mix.
    pub fn write(&self, state: &State) -> Result<(), StateError> {
        self.stage(state)?.commit()
    }

    /// Writes `state` beside state.json, for `Staged::commit` to put in place later.
    pub fn stage(&self, state: &State) -> Result<Staged, StateError> {
        stage(
            &self.path.join(STATE_FILE),
            &serde_json::to_vec(state).expect("state serialises"),
        )
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Removes the directory and everything in it: the files hull keeps there, then the
    /// directory, searched for anything else only if it is not empty then. An empty directory
    /// becomes the spare unless there is one already.
    pub fn remove(self) -> Result<(), StateError> {
        for name in [STATE_FILE, CONFIG_FILE, EXEC_FIFO] {
            let _ = nix::unistd::unlinkat(
                Some(self.lock.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        if let (true, Some(root)) = (is_empty_dir(&self.path), self.path.parent()) {
            if rename_noreplace(&self.path, &root.join(SPARE)).is_ok() {
                return Ok(());
            }
        }
        match std::fs::remove_dir(&self.path) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                std::fs::remove_dir_all(&self.path)
            }
            r => r,
        }
        .map_err(io(&self.path))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    stage(path, bytes)?.commit()
}

/// A file written under a temporary name beside `path`, which `commit` renames into place
/// (readers see the old file or the new one, never a mix); dropped uncommitted, it is removed.
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

/// Writes `bytes` beside `path`, for `Staged::commit`.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<Staged, StateError> {
    let staged = Staged {
        tmp: path.with_extension(format!("tmp{}", std::process::id())),
        path: path.to_path_buf(),
        committed: false,
    };
    std::fs::File::create(&staged.tmp)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(io(path))?;
    Ok(staged)
}

impl Staged {
    pub fn commit(mut self) -> Result<(), StateError> {
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc() {
        for ok in ["a", "A-b_c.d+e", "123"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_own_stat() {
        let (state, start) = read_stat(std::process::id() as i32).unwrap();
        assert!(state != 'Z' && state != 'X', "{state}");
        assert!(start > 0);
        assert!(process_alive(std::process::id() as i32, start));
        assert!(!process_alive(std::process::id() as i32, start + 1));
    }

    #[test]
    fn store_create_refuses_duplicates() {
        let (tmp, store) = scratch();
        let dir = store.create("x").unwrap();
        drop(dir);
        assert!(matches!(store.create("x"), Err(StateError::Exists)));
        assert!(matches!(store.open("y"), Err(StateError::NotExist)));
        // Also when a spare is there to be taken.
        store.create("s").unwrap().remove().unwrap();
        assert!(matches!(store.create("x"), Err(StateError::Exists)));
        assert_eq!(names(tmp.path()), [SPARE, "x"]);
    }

    /// A store in a temporary directory that goes with the test, failed or not.
    fn scratch() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        (tmp, store)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_deleted_containers_directory_is_the_next_ones() {
        use std::os::unix::fs::MetadataExt;
        let (tmp, store) = scratch();
        let x = store.create("x").unwrap();
        let ino = std::fs::metadata(&x.path).unwrap().ino();
        std::fs::write(x.path.join(CONFIG_FILE), b"{}").unwrap();
        x.remove().unwrap();
        assert_eq!(names(tmp.path()), [SPARE]);
        assert!(names(&tmp.path().join(SPARE)).is_empty());
        assert!(store.ids().unwrap().is_empty());
        assert!(matches!(store.open(SPARE), Err(StateError::InvalidId(_))));

        let y = store.create("y").unwrap();
        assert_eq!(std::fs::metadata(&y.path).unwrap().ino(), ino);
        assert_eq!(names(tmp.path()), ["y"]);
        // A second deleted container finds the spare taken and goes.
        let z = store.create("z").unwrap();
        y.remove().unwrap();
        z.remove().unwrap();
        assert_eq!(names(tmp.path()), [SPARE]);
    }

    #[test]
    fn a_directory_holding_more_than_hulls_files_is_not_kept() {
        let (tmp, store) = scratch();
        let x = store.create("x").unwrap();
        std::fs::create_dir(x.path.join("criu-root")).unwrap();
        std::fs::write(x.path.join("criu-root/f"), b"").unwrap();
        x.remove().unwrap();
        assert!(names(tmp.path()).is_empty());
    }

    #[test]
    fn a_lock_knows_when_its_path_names_another_directory() {
        let (tmp, store) = scratch();
        let x = store.create("x").unwrap();
        assert!(still_at(&x.lock, &x.path).unwrap());
        std::fs::rename(&x.path, tmp.path().join("elsewhere")).unwrap();
        std::fs::create_dir(&x.path).unwrap();
        assert!(!still_at(&x.lock, &x.path).unwrap());
        std::fs::remove_dir(&x.path).unwrap();
        assert!(still_at(&x.lock, &x.path).is_err());
    }
}
