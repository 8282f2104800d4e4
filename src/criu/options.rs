//! What `checkpoint` and `restore` share: the image and work directories, runc's flags that
//! both take, and the CRIU options every request of hull's carries.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::rpc::{CgMode, Opts};

/// The annotation naming a CRIU configuration file for this container (runc's); an empty
/// value means none.
const CONFIG_ANNOTATION: &str = "org.criu.config";
/// The configuration file CRIU reads for hull's requests when the annotation is absent.
const DEFAULT_CONFIG: &str = "/etc/criu/hull.conf";

#[derive(Debug, Clone, Default)]
pub struct CriuOptions {
    /// Where the images go (default `./checkpoint`).
    pub image_path: Option<PathBuf>,
    /// Where CRIU's log and work files go (default: the image directory).
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    /// soft, full, strict or ignore; CRIU's default when None.
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces created empty on restore; only `network`, which is always among them: the
    /// network belongs to whoever set it up (CNI, wharf), not to the runtime.
    pub empty_ns: Vec<String>,
}

/// An open directory CRIU reads or writes through hull's fd.
pub struct Dir {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

impl Dir {
    fn open(path: &Path) -> anyhow::Result<Dir> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| anyhow::anyhow!("creating {path:?}: {e}"))?;
        let fd = std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("opening {path:?}: {e}"))?
            .into();
        Ok(Dir {
            path: path.to_path_buf(),
            fd,
        })
    }
}

impl CriuOptions {
    /// The image directory, relative paths taken from where hull was started.
    pub fn image_path(&self) -> anyhow::Result<PathBuf> {
        let p = self
            .image_path
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("checkpoint"));
        Ok(std::path::absolute(&p)?)
    }

    /// Checks the flags before anything is touched; the cgroup mode they ask for.
    pub fn validate(&self) -> anyhow::Result<CgMode> {
        let mode = match self.manage_cgroups_mode.as_deref() {
            None | Some("") => CgMode::Default,
            Some("soft") => CgMode::Soft,
            Some("full") => CgMode::Full,
            Some("strict") => CgMode::Strict,
            Some("ignore") => CgMode::Ignore,
            Some(other) => anyhow::bail!("invalid manage-cgroups-mode value {other:?}"),
        };
        for ns in &self.empty_ns {
            if ns != "network" {
                anyhow::bail!("namespace {ns:?} is not supported");
            }
        }
        Ok(mode)
    }

    /// Creates and opens the image directory and the work directory.
    pub fn dirs(&self) -> anyhow::Result<(Dir, Option<Dir>)> {
        let images = Dir::open(&self.image_path()?)?;
        let work = match self
            .work_path
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            Some(p) => Some(Dir::open(&std::path::absolute(p)?)?),
            None => None,
        };
        Ok((images, work))
    }

    /// The options of every request: directories, log, cgroup handling, notifications, the
    /// flags, and the container's CRIU configuration file.
    pub fn base(
        &self,
        mode: CgMode,
        images: &Dir,
        work: Option<&Dir>,
        log_file: &str,
        annotations: &BTreeMap<String, String>,
    ) -> Opts {
        Opts {
            images_dir_fd: images.fd.as_raw_fd(),
            work_dir_fd: work.map(|w| w.fd.as_raw_fd()),
            log_level: Some(4),
            log_file: Some(log_file.to_string()),
            manage_cgroups: Some(true),
            manage_cgroups_mode: Some(mode as i32),
            notify_scripts: Some(true),
            shell_job: Some(self.shell_job),
            ext_unix_sk: Some(self.ext_unix_sk),
            tcp_established: Some(self.tcp_established),
            file_locks: Some(self.file_locks),
            auto_dedup: Some(self.auto_dedup),
            lazy_pages: Some(self.lazy_pages),
            // The network always: it belongs to whoever set it up (CNI, wharf).
            empty_ns: Some(libc::CLONE_NEWNET as u32),
            orphan_pts_master: Some(true),
            config_file: match annotations.get(CONFIG_ANNOTATION) {
                Some(path) if path.is_empty() => None,
                Some(path) => Some(path.clone()),
                None => Some(DEFAULT_CONFIG.to_string()),
            },
            ..Default::default()
        }
    }

    /// Where CRIU writes `log_file`.
    pub fn log_path(images: &Dir, work: Option<&Dir>, log_file: &str) -> PathBuf {
        work.unwrap_or(images).path.join(log_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked() {
        let o = CriuOptions {
            manage_cgroups_mode: Some("ignore".into()),
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap(), CgMode::Ignore);
        let o = CriuOptions {
            manage_cgroups_mode: Some("loose".into()),
            ..Default::default()
        };
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("manage-cgroups-mode"));
        let o = CriuOptions {
            empty_ns: vec!["ipc".into()],
            ..Default::default()
        };
        assert!(o.validate().unwrap_err().to_string().contains("\"ipc\""));
    }
}
