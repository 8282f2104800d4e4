//! The runtimes under test, all driven through the same runc command line: each has its own
//! temporary `--root`, and every container the bench makes is held by a guard that kills and
//! deletes it whatever happens.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::{self, Outcome};
use integration::{unique, TempDir};

/// GNU time, which `peak_rss` runs each measured command under (`.ci/setup` installs it).
pub const TIME: &str = "/usr/bin/time";

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
        self.checked(args, proc::run_timed(self.command(args), &self.log)?)
    }

    /// The peak RSS (KiB) of a command, as GNU time reports it (`%M`). Not from our own
    /// spawn: at exec the kernel keeps the old mm's high-water mark in the new program's
    /// ru_maxrss, and a posix_spawn'd child's old mm is this process's, so every runtime
    /// would weigh at least what the bench does. GNU time forks from about 0.5 MiB.
    pub fn peak_rss(&self, args: &[&str]) -> Result<u64, String> {
        let report = std::env::temp_dir().join(unique("hull-bench-rss"));
        let mut c = Command::new(TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&report);
        c.arg(&self.bin)
            .arg("--root")
            .arg(&self.root.path)
            .args(args);
        let out = proc::run_timed(c, &self.log).and_then(|o| self.checked(args, o));
        let said = std::fs::read_to_string(&report);
        let _ = std::fs::remove_file(&report);
        out?;
        let said = said.map_err(|e| format!("{TIME}'s report: {e}"))?;
        said.trim()
            .parse()
            .map_err(|_| format!("{TIME} reported {said:?}, not a size in KiB"))
    }

    fn checked(&self, args: &[&str], out: Outcome) -> Result<Outcome, String> {
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
        Self::create_by(rt, bundle, |args| rt.timed(args))
    }

    /// `create` run under GNU time; returns the guard and the create's peak RSS (KiB).
    pub fn create_measured(rt: &'a Runtime, bundle: &Path) -> Result<(Container<'a>, u64), String> {
        Self::create_by(rt, bundle, |args| rt.peak_rss(args))
    }

    fn create_by<T>(
        rt: &'a Runtime,
        bundle: &Path,
        run: impl FnOnce(&[&str]) -> Result<T, String>,
    ) -> Result<(Container<'a>, T), String> {
        let id = unique("hb");
        let pid_file = rt.root.path.join(format!("{id}.pid"));
        let bundle_s = bundle.to_string_lossy();
        let pid_s = pid_file.to_string_lossy();
        let created = run(&["create", "--bundle", &bundle_s, "--pid-file", &pid_s, &id]);
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
        let rt = self.rt;
        self.delete_by(|args| rt.timed(args))
    }

    /// `delete` run under GNU time; its peak RSS (KiB).
    pub fn delete_measured(&mut self) -> Result<u64, String> {
        let rt = self.rt;
        self.delete_by(|args| rt.peak_rss(args))
    }

    fn delete_by<T>(
        &mut self,
        run: impl FnOnce(&[&str]) -> Result<T, String>,
    ) -> Result<T, String> {
        let out = run(&["delete", &self.id])?;
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
