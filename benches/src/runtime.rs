//! The runtimes under test, all driven through the same runc command line: each has its own
//! temporary `--root`, and every container the bench makes is held by a guard that kills and
//! deletes it whatever happens.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::{self, Outcome};
use integration::{unique, TempDir};

/// One runc-compatible runtime binary with a private state root.
pub struct Runtime {
    pub name: &'static str,
    pub bin: PathBuf,
    pub version: String,
    root: TempDir,
    /// Stderr of every command this runtime runs, shown when one fails.
    log_path: PathBuf,
    log: File,
}

impl Runtime {
    pub fn new(name: &'static str, bin: PathBuf) -> Result<Runtime, String> {
        let root = TempDir::new(&format!("hull-bench-root-{name}"));
        let out = Command::new(&bin)
            .arg("--version")
            .output()
            .map_err(|e| format!("{} --version: {e}", bin.display()))?;
        let version = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("unknown")
            .to_string();
        let log_path = root.path.with_extension("log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        Ok(Runtime {
            name,
            bin,
            version,
            root,
            log_path,
            log,
        })
    }

    /// Whether the runtime keeps state for `id` (runc, crun and hull all keep `ROOT/ID`).
    pub fn has_state(&self, id: &str) -> bool {
        self.root.path.join(id).exists()
    }

    /// `RUNTIME --root ROOT args...`, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root.path).args(args);
        c
    }

    /// Runs a command and times it; a non-zero exit is an error carrying the runtime's stderr.
    pub fn timed(&self, args: &[&str]) -> Result<Outcome, String> {
        let out = proc::run_timed(self.command(args), &self.log)?;
        if out.exit_code != 0 {
            return Err(format!(
                "{} {} exited {}: {}",
                self.name,
                args.join(" "),
                out.exit_code,
                self.last_log_line()
            ));
        }
        Ok(out)
    }

    /// Whether a subcommand exists, judged by `SUBCOMMAND --help` as a caller would.
    pub fn supports(&self, subcommand: &str) -> bool {
        Command::new(&self.bin)
            .args([subcommand, "--help"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn last_log_line(&self) -> String {
        std::fs::read_to_string(&self.log_path)
            .ok()
            .and_then(|s| s.lines().last().map(str::to_string))
            .unwrap_or_default()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// A container made with `create --pid-file`: killed, reaped and deleted on drop unless
/// `delete` already ran.
pub struct Container<'a> {
    pub rt: &'a Runtime,
    pub id: String,
    pub pid: libc::pid_t,
    deleted: bool,
}

impl<'a> Container<'a> {
    /// `create --bundle B --pid-file F ID`; returns the guard and the create's outcome.
    pub fn create(rt: &'a Runtime, bundle: &Path) -> Result<(Container<'a>, Outcome), String> {
        let id = unique("hb");
        let pid_file = rt.root.path.join(format!("{id}.pid"));
        let bundle_s = bundle.to_string_lossy();
        let pid_s = pid_file.to_string_lossy();
        let created = rt.timed(&["create", "--bundle", &bundle_s, "--pid-file", &pid_s, &id]);
        // From here on the guard owns whatever was made, even if create half-failed.
        let mut c = Container {
            rt,
            id,
            pid: 0,
            deleted: false,
        };
        let out = created?;
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("{}: {e}", pid_file.display()))?;
        let _ = std::fs::remove_file(&pid_file);
        c.pid = pid
            .trim()
            .parse()
            .map_err(|_| format!("bad pid file content {pid:?}"))?;
        Ok((c, out))
    }

    pub fn start(&self) -> Result<Outcome, String> {
        self.rt.timed(&["start", &self.id])
    }

    /// Waits for the container process to exit and reaps it.
    pub fn wait(&self) -> Result<(), String> {
        proc::wait_exit(self.pid, Duration::from_secs(10))
    }

    pub fn delete(&mut self) -> Result<Outcome, String> {
        let out = self.rt.timed(&["delete", &self.id])?;
        self.deleted = true;
        Ok(out)
    }

    /// Kills, reaps and deletes a container that may still be running.
    pub fn remove(&mut self) -> Result<(), String> {
        if self.deleted {
            return Ok(());
        }
        // The kill fails harmlessly when the process is already gone.
        let _ = self.rt.timed(&["kill", &self.id, "KILL"]);
        if self.pid > 0 {
            proc::wait_exit(self.pid, Duration::from_secs(10))?;
        }
        self.rt.timed(&["delete", "--force", &self.id])?;
        self.deleted = true;
        Ok(())
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("cleanup of {} container {}: {e}", self.rt.name, self.id);
        }
    }
}
