//! A client for any runtime with runc's command line (hull, runc, crun): each call runs
//! the binary with wharf's own `--root` under the data root, so wharf's containers never
//! mix with the host's, and turns a failure into the runtime's own error line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("runtime {0} not found (looked next to wharf and in $PATH)")]
    NotFound(String),
    #[error("running {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{msg}")]
    Failed { msg: String },
}

/// Finds the runtime binary: a path is taken as is; a bare name is looked up next to the
/// wharf binary, then in $PATH.
pub fn resolve(name: &str) -> Result<PathBuf, RuntimeError> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if p.is_file() {
            Ok(std::path::absolute(&p).unwrap_or(p))
        } else {
            Err(RuntimeError::NotFound(name.to_string()))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)));
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(path_dirs.into_iter().map(|d| d.join(name)))
        .find(|p| p.is_file())
        .ok_or_else(|| RuntimeError::NotFound(name.to_string()))
}

pub struct Runtime {
    pub path: PathBuf,
    /// The runtime's state directory: `<data-root>/runtime/<binary name>`.
    pub root: PathBuf,
}

/// State as `runtime state ID` prints it.
#[derive(Debug, serde::Deserialize)]
pub struct RuntimeState {
    pub status: String,
    #[serde(default)]
    pub pid: i32,
}

impl Runtime {
    pub fn new(data_root: &Path, path: &Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runtime".into());
        Self {
            path: path.to_path_buf(),
            root: data_root.join("runtime").join(name),
        }
    }

    /// A command for `args` with the global flags set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.path);
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Runs a command that prints nothing wanted on success; on failure returns the
    /// runtime's last stderr line, which is its error message.
    fn run(&self, args: &[&str]) -> Result<String, RuntimeError> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RuntimeError::Spawn {
                path: self.path.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(RuntimeError::Failed {
            msg: error_line(&String::from_utf8_lossy(&out.stderr)),
        })
    }

    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&["start", id]).map(drop)
    }

    pub fn state(&self, id: &str) -> Result<RuntimeState, RuntimeError> {
        let out = self.run(&["state", id])?;
        serde_json::from_str(&out).map_err(|e| RuntimeError::Failed {
            msg: format!("unreadable state from {}: {e}", self.path.display()),
        })
    }

    pub fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        self.run(&["kill", id, signal]).map(drop)
    }

    pub fn delete_force(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&["delete", "--force", id]).map(drop)
    }

    /// Whether the runtime keeps state for `id`: runc, crun, youki and hull keep a container's
    /// in `<root>/<id>`. Cheaper than asking the runtime, one process per question.
    pub fn has_state(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&["pause", id]).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&["resume", id]).map(drop)
    }

    /// `update --resources -`: new cgroup limits for a running container, as the OCI
    /// LinuxResources JSON every runc-compatible runtime reads.
    pub fn update(&self, id: &str, resources: &serde_json::Value) -> Result<(), RuntimeError> {
        use std::io::Write;
        let spawn = |source| RuntimeError::Spawn {
            path: self.path.clone(),
            source,
        };
        let mut child = self
            .command(&["update", "--resources", "-", id])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(resources.to_string().as_bytes())
                .map_err(spawn)?;
        }
        let out = child.wait_with_output().map_err(spawn)?;
        if out.status.success() {
            return Ok(());
        }
        Err(RuntimeError::Failed {
            msg: error_line(&String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// `ps --format json ID`: the host pids of the container's processes (a format every
    /// runc-compatible runtime has; crun's `ps` takes no ps(1) options).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        let out = self.run(&["ps", "--format", "json", id])?;
        serde_json::from_str(out.trim()).map_err(|e| RuntimeError::Failed {
            msg: format!(
                "{}: ps --format json printed {:?}: {e}",
                self.path.display(),
                out.trim()
            ),
        })
    }
}

/// The runtime's error in the JSON log it wrote (`--log FILE --log-format json`): the
/// message of the last error line, None when it logged none.
pub fn logged_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find(|l| l.contains("\"error\""))
        .map(error_line)
}

/// The message in a runtime's stderr: the last non-empty line, with runc's
/// `time=... level=error msg="..."` wrapper and JSON log lines unwrapped.
pub fn error_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
            return m.to_string();
        }
    }
    if let Some(i) = line.find("msg=\"") {
        let rest = &line[i + 5..];
        let end = rest.rfind('"').unwrap_or(rest.len());
        return rest[..end].replace("\\\"", "\"");
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_are_unwrapped() {
        assert_eq!(
            error_line("time=\"x\" level=error msg=\"container \\\"a\\\" does not exist\"\n"),
            "container \"a\" does not exist"
        );
        assert_eq!(
            error_line("{\"level\":\"error\",\"msg\":\"boom\"}\n\n"),
            "boom"
        );
        assert_eq!(error_line("plain\n"), "plain");
    }
}
