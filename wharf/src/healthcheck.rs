//! The monitor's healthcheck runner: probes a running container on docker's schedule
//! through the runtime's `exec`, without blocking the monitor's loop. A probe is the
//! runtime as a child of the monitor, its output in a pipe the loop reads; its exit comes
//! with the monitor's other children, and a probe past its timeout is killed. Each result
//! goes to the store with the `health_status` event when the status changes.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::container::health::{self, Health, HealthConfig, HealthResult};
use crate::container::{self, Container, Status};
use crate::runtime::{self, Runtime};
use crate::store::{EventRow, OnDemand};

/// How often a long probe looks whether the container was paused under it.
const PAUSE_CHECK: Duration = Duration::from_secs(1);

/// A probe under way.
struct Probe {
    /// The runtime's `exec`, whose exit status is the probe's.
    runtime: Pid,
    output: File,
    /// The pipe reached end of file: nothing more to poll for.
    eof: bool,
    buf: Vec<u8>,
    /// More output came than docker keeps.
    truncated: bool,
    start: String,
    /// When it started: the start period is judged by this, as docker judges it.
    started: Instant,
    deadline: Instant,
    /// When to look again whether the container was paused under the probe.
    pause_check: Instant,
}

impl Probe {
    /// Keeps docker's 4 KiB of output and notes that more came.
    fn keep(&mut self, data: &[u8]) {
        let room = health::MAX_OUTPUT.saturating_sub(self.buf.len());
        self.truncated |= data.len() > room;
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// The output as docker reports it: `...` after what was cut.
    fn output(&self) -> String {
        let out = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            out + "..."
        } else {
            out
        }
    }

    /// Whether the runtime has exited (not yet reaped): the process it ran is gone too.
    fn runtime_exited(&self) -> bool {
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        !matches!(
            waitid(Id::Pid(self.runtime), flags),
            Ok(WaitStatus::StillAlive)
        )
    }
}

pub struct Checker<'a> {
    db: &'a mut OnDemand,
    container: &'a Container,
    cfg: HealthConfig,
    health: Health,
    command: Command,
    pid_file: PathBuf,
    log: PathBuf,
    process_file: PathBuf,
    /// When the container started: the start period counts from here.
    started: Instant,
    next: Instant,
    probe: Option<Probe>,
    setup_error: Option<String>,
}

impl<'a> Checker<'a> {
    /// A checker running `argv` (the container's check command) for a container that has
    /// just started with `health` (starting); None when it has no check configured. The probe's process is written once, beside the
    /// bundle; when it cannot be, every probe fails with the reason, as a result the
    /// user sees in `inspect`.
    pub fn new(
        db: &'a mut OnDemand,
        container: &'a Container,
        cdir: &Path,
        rt: &Runtime,
        argv: Vec<String>,
        health: Health,
    ) -> Option<Self> {
        let cfg = container.spec.config.healthcheck.clone()?;
        let process_file = cdir.join("health.json");
        let setup_error = crate::bundle::process_with_args(&cdir.join("bundle"), &argv)
            .map_err(|e| e.to_string())
            .and_then(|p| {
                std::fs::write(&process_file, serde_json::to_vec(&p).unwrap_or_default())
                    .map_err(|e| format!("writing {}: {e}", process_file.display()))
            })
            .err();
        let pid_file = cdir.join("health.pid");
        let log = cdir.join("health.log");
        let mut command = rt.command(&[]);
        command
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "exec", "--process"])
            .arg(&process_file)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&container.id)
            .stdin(Stdio::null());
        let started = Instant::now();
        Some(Self {
            db,
            container,
            next: started + cfg.next_wait(Duration::ZERO, &health.status),
            cfg,
            health,
            command,
            pid_file,
            log,
            process_file,
            started,
            probe: None,
            setup_error,
        })
    }

    /// Lets go of the store until the next probe (`store::OnDemand`).
    pub fn idle(&mut self) {
        self.db.close();
    }

    /// How long the monitor may wait before `on_time` has work.
    pub fn timeout(&self) -> Duration {
        let at = self
            .probe
            .as_ref()
            .map_or(self.next, |p| p.deadline.min(p.pause_check));
        at.saturating_duration_since(Instant::now())
    }

    /// The running probe's output, for the monitor's poll.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.probe
            .as_ref()
            .filter(|p| !p.eof)
            .map(|p| p.output.as_fd())
    }

    /// Reads what the probe wrote; keeps docker's 4 KiB and drops the rest.
    pub fn on_output(&mut self) {
        if let Some(p) = &mut self.probe {
            let mut chunk = [0u8; 4096];
            match p.output.read(&mut chunk) {
                Ok(0) | Err(_) => p.eof = true,
                Ok(n) => p.keep(&chunk[..n]),
            }
        }
    }

    /// Starts a probe when one is due, or ends one past its timeout. The monitor calls it
    /// after reaping, so a probe that has finished is taken as finished, not timed out.
    pub fn on_time(&mut self) {
        let now = Instant::now();
        if let Some(p) = &mut self.probe {
            // A probe in a container paused meanwhile would hang until its timeout (30 s
            // by default): a long probe looks at the record once a second.
            let look = now >= p.pause_check;
            if look {
                p.pause_check = now + PAUSE_CHECK;
            }
            let late = now >= p.deadline;
            if (look || late) && self.paused() {
                self.discard();
            } else if late {
                self.time_out();
            }
            return;
        }
        if now < self.next {
            return;
        }
        if self.paused() {
            self.discard();
            return;
        }
        if let Err(e) = self.spawn() {
            let now = container::now_go();
            self.record(
                HealthResult {
                    start: now.clone(),
                    end: now,
                    exit_code: -1,
                    output: e,
                },
                Instant::now(),
            );
        }
    }

    /// Takes the exit of a child the monitor reaped, when it is the probe's.
    pub fn on_exit(&mut self, pid: Pid, code: i32) {
        let Some(mut p) = self.probe.take_if(|p| p.runtime == pid) else {
            return;
        };
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&p.output),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let mut rest = Vec::new();
        let _ = (&p.output)
            .take(health::MAX_OUTPUT as u64)
            .read_to_end(&mut rest);
        p.keep(&rest);
        // The runtime's own failure (it could not start the command) is docker's -1 with
        // the runtime's message, as docker reports an OCI runtime exec failure.
        let (exit_code, output) = match runtime::logged_error(&self.log) {
            Some(msg) => (-1, format!("OCI runtime exec failed: {msg}")),
            None => (i64::from(code), p.output()),
        };
        self.record(
            HealthResult {
                start: p.start.clone(),
                end: container::now_go(),
                exit_code,
                output,
            },
            p.started,
        );
    }

    /// Starts the runtime's exec of the check; the reason, naming the runtime, when it
    /// cannot.
    fn spawn(&mut self) -> Result<(), String> {
        if let Some(e) = &self.setup_error {
            return Err(e.clone());
        }
        let _ = std::fs::remove_file(&self.pid_file);
        let _ = std::fs::remove_file(&self.log);
        let runtime_name = self.command.get_program().to_string_lossy().into_owned();
        let failed = |e: std::io::Error| format!("running {runtime_name}: {e}");
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| failed(e.into()))?;
        let w2 = w.try_clone().map_err(failed)?;
        let start = container::now_go();
        self.command.stdout(Stdio::from(w)).stderr(Stdio::from(w2));
        let spawned = self.command.spawn();
        // Our copies of the write end go with the Command's stdio: replace them so that
        // end of file comes when the probe's processes close theirs.
        self.command.stdout(Stdio::null()).stderr(Stdio::null());
        let child = spawned.map_err(failed)?;
        // The monitor's loop reaps it (it reaps every child as a subreaper); the Child
        // handle must not wait for it.
        let runtime = Pid::from_raw(child.id() as i32);
        drop(child);
        self.probe = Some(Probe {
            runtime,
            output: File::from(r),
            eof: false,
            buf: Vec::new(),
            truncated: false,
            start,
            started: Instant::now(),
            deadline: Instant::now() + self.cfg.timeout(),
            pause_check: Instant::now() + PAUSE_CHECK,
        });
        Ok(())
    }

    fn paused(&mut self) -> bool {
        let id = &self.container.id;
        self.db
            .get()
            .ok()
            .and_then(|db| container::load(db, id).ok().flatten())
            .is_some_and(|c| c.state.status == Status::Paused)
    }

    /// docker stops checking a paused container: a probe under way is killed and not
    /// counted, the status reads unhealthy (without an event) and the schedule starts
    /// again once it runs.
    fn discard(&mut self) {
        if let Some(p) = self.probe.take() {
            self.kill(&p);
        }
        if self.health.status != health::UNHEALTHY {
            self.health.status = health::UNHEALTHY.into();
            self.store(&[]);
        }
        self.schedule();
    }

    /// Writes the health into the container's record, with `events`. A store that cannot be
    /// written must not stop the monitor; the next result writes the whole health again.
    fn store(&mut self, events: &[EventRow]) {
        let health = self.health.clone();
        if let Ok(db) = self.db.get() {
            let _ = container::update_reporting(
                db,
                &self.container.id,
                |s| s.health = Some(health.clone()),
                events,
            );
        }
    }

    /// Kills a probe: the process in the container (by its pid file, and only while the
    /// runtime that reaps it has not exited, so the pid is still that process), then the
    /// runtime. Its exit, reaped later, is no longer the probe's.
    fn kill(&self, p: &Probe) {
        if !p.runtime_exited() {
            let pid = std::fs::read_to_string(&self.pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok());
            if let Some(pid) = pid.filter(|p| *p > 0) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = kill(p.runtime, Signal::SIGKILL);
    }

    /// Ends a probe that ran past its timeout, recorded as docker records it.
    fn time_out(&mut self) {
        let Some(p) = self.probe.take() else {
            return;
        };
        self.kill(&p);
        let took = crate::format::go_duration_text(self.cfg.timeout().as_nanos() as i64);
        let out = p.output();
        let output = if out.is_empty() {
            format!("Health check exceeded timeout ({took})")
        } else {
            format!("Health check exceeded timeout ({took}): {out}")
        };
        self.record(
            HealthResult {
                start: p.start.clone(),
                end: container::now_go(),
                exit_code: -1,
                output,
            },
            p.started,
        );
    }

    /// Applies docker's rules to a result of a probe started at `probe_started`, stores
    /// the health (with the event when the status changed) and schedules the next probe.
    fn record(&mut self, result: HealthResult, probe_started: Instant) {
        let since_start = probe_started.saturating_duration_since(self.started);
        let changed = self.health.record(result, &self.cfg, since_start);
        let events: Vec<_> = changed
            .iter()
            .map(|s| {
                crate::events::container_event(self.container, &format!("health_status: {s}"), &[])
            })
            .collect();
        self.store(&events);
        self.schedule();
    }

    fn schedule(&mut self) {
        let wait = self
            .cfg
            .next_wait(self.started.elapsed(), &self.health.status);
        self.next = Instant::now() + wait;
    }
}

impl Drop for Checker<'_> {
    /// A probe still running when the container stops is killed with it; the files go.
    fn drop(&mut self) {
        if let Some(p) = self.probe.take() {
            self.kill(&p);
        }
        for f in [&self.process_file, &self.pid_file, &self.log] {
            let _ = std::fs::remove_file(f);
        }
    }
}
