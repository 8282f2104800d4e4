//! The per-container monitor, like conmon: a detached process (`wharf-monitor`) that
//! creates and starts the container through the runtime, holds its stdio pipes and writes
//! them to docker's json-file log, reaps it as a subreaper, records the exit code and
//! time, applies the restart policy and removes the container for `--rm`. It outlives the
//! command that started it and never holds the data root's lock.
//!
//! With `-t` it passes the runtime a console socket and holds the pty master itself.
//! Clients attach through `attach.sock` (see `attach`): they get the output as it is
//! logged, and their input and window sizes go to the container's stdin or terminal.
//!
//! It reports to its starter over an optional status pipe, one line each:
//! `started`, `error <code> <message>` or `exit <code>`.
//!
//! Monitors of one container start it one at a time, under `start.lock` in its directory:
//! a monitor that finds it running once the lock is its own reports `started` and leaves.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::attach::{self, Hub, Input};
use crate::bundle::Networking;
use crate::container::health::{self, Health};
use crate::container::{self, rootfs::Layout, Container, State, Status};
use crate::format::go_json;
use crate::healthcheck::Checker;
use crate::network;
use crate::runtime::{self, Runtime};
use crate::store::{EventRow, OnDemand};
use crate::tty::console::ConsoleSocket;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Sys(#[from] nix::Error),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error(transparent)]
    Rootfs(#[from] container::rootfs::RootfsError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
}

/// The glibc setting the monitor runs with: no per-thread cache of freed chunks (tcache).
/// Cached chunks never merge with their neighbours, so the many short-lived allocations of
/// a start left most of the heap's pages pinned by a few cached chunks for the container's
/// lifetime: an idle monitor held 224 KiB of heap with the cache and 80 without (then 48
/// once its read buffer goes while idle). glibc reads tunables only as a program starts,
/// so the starter sets it in the monitor's environment (`monitor_environment`) and the
/// monitor puts the user's value back (`restore_environment`) before it runs anything.
const TUNABLE: &str = "glibc.malloc.tcache_count=0";
const TUNABLES: &str = "GLIBC_TUNABLES";
/// The user's own `GLIBC_TUNABLES`, kept here for the monitor to put back.
const USER_TUNABLES: &str = "WHARF_USER_GLIBC_TUNABLES";

/// The variables to set (Some) or remove (None) in the monitor's environment, for a
/// starter whose `GLIBC_TUNABLES` is `user`.
pub fn monitor_environment(
    user: Option<&std::ffi::OsStr>,
) -> [(&'static str, Option<std::ffi::OsString>); 2] {
    let tunables = match user.filter(|u| !u.is_empty()) {
        Some(u) => {
            let mut v = u.to_os_string();
            v.push(":");
            v.push(TUNABLE);
            v
        }
        None => TUNABLE.into(),
    };
    [
        (TUNABLES, Some(tunables)),
        (USER_TUNABLES, user.map(ToOwned::to_owned)),
    ]
}

/// Gives `GLIBC_TUNABLES` back the value (or the absence) the user gave wharf, byte for
/// byte, so that the runtime and the health checks the monitor runs get that environment.
/// Call it first, before any thread starts.
pub fn restore_environment() {
    match std::env::var_os(USER_TUNABLES) {
        Some(user) => {
            std::env::set_var(TUNABLES, user);
            std::env::remove_var(USER_TUNABLES);
        }
        None => std::env::remove_var(TUNABLES),
    }
}

/// docker's exit codes for a process that could not be started, from the runtime's message:
/// 127 when the program is missing, 126 when it cannot be run, 125 otherwise. The texts are
/// errno descriptions and Go's lookup error, compared without case, so runc's and hull's
/// (`no such file or directory`) and crun's (`No such file or directory`) wording give the
/// same code. Besides docker CLI's EACCES and EISDIR, EPERM counts as "cannot be run", as
/// podman counts it: crun reports a directory as `open executable: Operation not permitted`.
pub fn start_failure_code(msg: &str) -> i32 {
    let m = msg.to_ascii_lowercase();
    let missing = [
        "executable file not found",
        "no such file or directory",
        "not found in $path",
    ];
    let not_runnable = [
        "permission denied",
        "is a directory",
        "operation not permitted",
    ];
    if missing.iter().any(|t| m.contains(t)) {
        127
    } else if not_runnable.iter().any(|t| m.contains(t)) {
        126
    } else {
        125
    }
}

/// Splits a stream into docker's json-file lines, one object per line of output.
struct LogStream {
    name: &'static str,
    pending: Vec<u8>,
}

/// How much of a stream the monitor reads at once.
const READ_BUF: usize = 32 * 1024;

/// docker splits lines longer than 16 KiB.
const MAX_LINE: usize = 16 * 1024;

impl LogStream {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            pending: Vec::new(),
        }
    }

    /// Logs each complete line of `data`. A line the log cannot take (a full disk) is
    /// dropped, as docker's json-file driver drops it: the output still reaches attached
    /// clients, and the container goes on being supervised.
    fn push(&mut self, data: &[u8], log: &mut impl Write) {
        self.pending.extend_from_slice(data);
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            let _ = write_entry(log, self.name, &line);
        }
        if self.pending.len() >= MAX_LINE {
            self.finish(log);
        }
    }

    /// Logs the unfinished line held so far (at the stream's end, or once it reaches
    /// docker's 16 KiB), as `push` logs a line.
    fn finish(&mut self, log: &mut impl Write) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            let _ = write_entry(log, self.name, &line);
        }
    }
}

fn write_entry(log: &mut impl Write, stream: &str, line: &[u8]) -> io::Result<()> {
    let entry = serde_json::json!({
        "log": String::from_utf8_lossy(line),
        "stream": stream,
        "time": container::now_go(),
    });
    // One write: a line the disk only partly took is one malformed line, which readers skip.
    log.write_all(format!("{}\n", go_json(&entry)).as_bytes())
}

struct Monitor {
    root: PathBuf,
    id: String,
    db: OnDemand,
    status: Option<File>,
    /// Held from before the container is loaded until it has started or failed to.
    start_lock: Option<Flock<File>>,
}

impl Monitor {
    fn report(&mut self, line: &str) {
        if let Some(f) = &mut self.status {
            // The starter may be gone (a detached run); that is not the monitor's problem.
            if writeln!(f, "{line}").is_err() {
                self.status = None;
            }
        }
    }

    /// Records events of a container whose record is gone or no longer ours, as far as
    /// the store lets us: the cleanup goes on regardless.
    fn add_events(&mut self, events: &[EventRow]) {
        if let Ok(db) = self.db.get() {
            for e in events {
                let _ = db.add_event(e);
            }
        }
    }

    fn update(&mut self, f: impl FnMut(&mut State)) -> Result<Option<State>, MonitorError> {
        self.update_reporting(f, &[])
    }

    /// `update`, with the events the change makes committed in the same transaction.
    fn update_reporting(
        &mut self,
        f: impl FnMut(&mut State),
        events: &[EventRow],
    ) -> Result<Option<State>, MonitorError> {
        Ok(container::update_reporting(
            self.db.get()?,
            &self.id,
            f,
            events,
        )?)
    }
}

/// Entry of `wharf-monitor`: detaches (fork, setsid), becomes a subreaper and
/// supervises the container until it is finally stopped. `stdin` is the starter's stdin
/// for an attached `-i` run; `client` an attach socket of a starter that attaches from
/// the start (`run -t`).
pub fn run(
    root: &Path,
    id: &str,
    status: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    client: Option<OwnedFd>,
) -> ! {
    // The starter cleared FD_CLOEXEC on these to hand them over our exec. Set again, so the
    // runtime and the container do not inherit them: a container a killed monitor left
    // `created` would hold the status pipe open, and its starter would wait for ever.
    for fd in [&status, &stdin, &client].into_iter().flatten() {
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    // SAFETY: wharf-monitor has started no thread here; the child only
    // continues the same single-threaded program.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(_) => std::process::exit(1),
    }
    let _ = nix::unistd::setsid();
    let db = match OnDemand::open(&root.join("wharf.db")) {
        Ok(db) => db,
        Err(_) => std::process::exit(1),
    };
    let mut m = Monitor {
        root: root.to_path_buf(),
        id: id.to_string(),
        db,
        status: status.map(File::from),
        start_lock: None,
    };
    if let Err(e) = supervise(&mut m, stdin, client) {
        let msg = e.to_string();
        let _ = m.update(|s| {
            s.error = msg.clone();
            if s.status != Status::Created {
                s.status = Status::Exited;
            }
            s.pid = 0;
        });
        m.report(&format!("error 125 {msg}"));
    }
    std::process::exit(0)
}

fn supervise(
    m: &mut Monitor,
    mut stdin: Option<OwnedFd>,
    client: Option<OwnedFd>,
) -> Result<(), MonitorError> {
    nix::sys::prctl::set_child_subreaper(true)?;
    // Two starts of one container (a starter killed after spawning its monitor, then
    // `start` again) must not both create it: the second monitor waits here until the first
    // has started the container or given up, and then finds it running and only says so.
    m.start_lock = Some(lock_start(&container::dir(&m.root, &m.id))?);
    if container::load(m.db.get()?, &m.id)?.is_some_and(|c| c.is_running()) {
        m.report("started");
        return Ok(());
    }
    let me = std::process::id() as i32;
    let start = container::process_start(me).unwrap_or(0);
    m.update(|s| {
        s.monitor_pid = me;
        s.monitor_start = start;
        s.stop_requested = false;
    })?;
    let mut c = container::load(m.db.get()?, &m.id)?
        .ok_or_else(|| container::ContainerError::NotFound(m.id.clone()))?;
    let cdir = container::dir(&m.root, &c.id);
    let rt = Runtime::new(&m.root, &c.spec.runtime_path);
    let mut hub = Hub::listen(&cdir)?;
    if let Some(client) = client {
        hub.add(client);
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC)?;
    let mut log = File::options()
        .create(true)
        .append(true)
        .open(container::log_path(&m.root, &c.id))?;
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let io = Io {
            sfd: &sfd,
            log: &mut log,
            hub: &mut hub,
        };
        let Ended { code, oom, events } = match run_once(m, &c, &cdir, &rt, io, stdin.take())? {
            Ok(ended) => ended,
            // Could not start: the error is recorded; report it once cleanup is done.
            Err((code, msg)) => {
                finish(m, &c, &cdir, None, false, &[])?;
                m.report(&format!("error {code} {msg}"));
                return Ok(());
            }
        };
        let mut events = events;
        events.push(crate::events::container_event(
            &c,
            "die",
            &[("exitCode", &code.to_string())],
        ));
        let Some(now) = container::load(m.db.get()?, &m.id)? else {
            // rm -f removed the record meanwhile.
            m.add_events(&events);
            return Ok(());
        };
        // `update` may have changed the policy.
        c = now;
        let state = c.state.clone();
        let policy = &c.spec.host.restart_policy;
        let restart = !state.stop_requested
            && state.status != Status::Removing
            && match policy.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    code != 0
                        && (policy.maximum_retry_count == 0
                            || state.restart_count < policy.maximum_retry_count)
                }
                _ => false,
            };
        if !restart {
            return finish(m, &c, &cdir, Some(code), oom, &events);
        }
        m.update_reporting(
            |s| {
                s.status = Status::Restarting;
                s.exit_code = code;
                s.pid = 0;
                s.finished_at = Some(container::now());
                s.restart_count += 1;
                record_end(s, oom);
            },
            &events,
        )?;
        // docker's backoff: doubling from 100 ms, reset after a run of 10 s or more.
        if started.elapsed() >= Duration::from_secs(10) {
            backoff = Duration::from_millis(100);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(60));
        // After the wait: an `update` made while the container was between runs is in the
        // record, and the next run's bundle is written from it.
        let Some(now) = container::load(m.db.get()?, &m.id)? else {
            return Ok(());
        };
        let stopped = now.state.stop_requested || now.state.status == Status::Removing;
        c = now;
        if stopped {
            return finish(m, &c, &cdir, Some(code), false, &[]);
        }
    }
}

/// What an exit changes in the state besides the code: the OOM kill, and docker's unhealthy
/// for a check that stopped with the container.
fn record_end(s: &mut State, oom: bool) {
    s.oom_killed |= oom;
    if let Some(h) = &mut s.health {
        h.status = health::UNHEALTHY.into();
    }
}

/// Records the final state, unmounts the rootfs and, for `--rm`, removes everything.
fn finish(
    m: &mut Monitor,
    c: &Container,
    cdir: &Path,
    code: Option<i32>,
    oom: bool,
    events: &[EventRow],
) -> Result<(), MonitorError> {
    let removing = container::load(m.db.get()?, &m.id)?
        .map(|c| c.state.status == Status::Removing)
        .unwrap_or(true);
    if removing {
        // rm -f owns the cleanup now.
        m.add_events(events);
        return Ok(());
    }
    let layout = Layout::new(cdir);
    if let Some(code) = code {
        if c.spec.host.auto_remove {
            // The code first: a removal that fails or is cut short leaves the record, and
            // `wait` reads the code from it.
            m.update(|s| s.exit_code = code)?;
            layout.umount()?;
            auto_remove(m, c, cdir, code, events)?;
        } else {
            m.update_reporting(
                |s| {
                    s.status = Status::Exited;
                    s.exit_code = code;
                    s.pid = 0;
                    s.finished_at = Some(container::now());
                    record_end(s, oom);
                },
                events,
            )?;
            crate::fault::at(crate::fault::Step::MonitorExitRecorded);
            layout.umount()?;
        }
        m.report(&format!("exit {code}"));
    } else {
        layout.umount()?;
        if c.spec.host.auto_remove {
            auto_remove(m, c, cdir, c.state.exit_code, events)?;
        }
    }
    Ok(())
}

/// `--rm`: the container goes with its anonymous volumes, as in docker, and its exit code
/// stays for `wait`. Files first: once the record is gone, `ps -a` says it is gone.
fn auto_remove(
    m: &mut Monitor,
    c: &Container,
    cdir: &Path,
    code: i32,
    events: &[EventRow],
) -> Result<(), MonitorError> {
    network::release(&m.root, m.db.get()?, c)?;
    crate::fault::at(crate::fault::Step::MonitorAutoRemoving);
    container::rootfs::remove_dir(cdir)?;
    let mut events = events.to_vec();
    events.push(crate::events::container_event(c, "destroy", &[]));
    m.db.get()?.remove_exited_container(&m.id, code, &events)?;
    crate::volume::remove_anonymous_of(m.db.get()?, &m.root, c)?;
    Ok(())
}

/// The lock on `start.lock` in the container's directory that serializes its starts.
fn lock_start(cdir: &Path) -> Result<Flock<File>, MonitorError> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cdir.join("start.lock"))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| e.into())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), MonitorError> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// Where the container's output goes and its input comes from while it runs.
struct Io<'a> {
    sfd: &'a SignalFd,
    log: &'a mut File,
    hub: &'a mut Hub,
}

/// The container's side of its stdio for one run.
struct Stdio {
    /// Output streams: the pty master (as stdout) or the stdout and stderr pipes.
    outputs: Vec<(OwnedFd, &'static str)>,
    /// Where clients' input goes: the pty master or the write end of a stdin pipe.
    input: Option<OwnedFd>,
    tty: bool,
}

/// Creates and starts the container once and pumps its output until it exits; returns
/// its exit code, or docker's code and the message when it could not start (recorded as
/// the container's error).
fn run_once(
    m: &mut Monitor,
    c: &Container,
    cdir: &Path,
    rt: &Runtime,
    io: Io<'_>,
    attached_stdin: Option<OwnedFd>,
) -> Result<Result<Ended, (i32, String)>, MonitorError> {
    let started = start_run(m, c, cdir, rt, attached_stdin)?;
    let Started {
        pid,
        stdio,
        mut resolver,
        sandbox,
        probe,
        health,
    } = match started {
        Ok(s) => s,
        Err(failed) => return Ok(Err(failed)),
    };
    crate::fault::at(crate::fault::Step::MonitorRunning);
    let mut checker = probe.and_then(|argv| Checker::new(&mut m.db, c, cdir, rt, argv, health));
    let code = pump(
        io,
        Pid::from_raw(pid),
        stdio,
        resolver.as_mut(),
        checker.as_mut(),
    )?;
    drop(checker);
    crate::fault::at(crate::fault::Step::MonitorExited);
    let oom = container::stats::oom_kills(&c.id) > 0;
    let _ = rt.delete_force(&c.id);
    if sandbox.is_some() {
        network_down(m, c)?;
        crate::fault::at(crate::fault::Step::MonitorNetworkDown);
    }
    drop(sandbox);
    // Committed with the exit's own state change, not in a write of their own.
    let mut events = Vec::new();
    if oom {
        events.push(crate::events::container_event(c, "oom", &[]));
    }
    events.extend(volume_events(c, "unmount"));
    Ok(Ok(Ended { code, oom, events }))
}

/// A container the runtime has started: what the monitor keeps while it runs.
struct Started {
    pid: i32,
    stdio: Stdio,
    resolver: Option<network::dns::Resolver>,
    /// Its network namespace, which holds its published ports.
    sandbox: Option<network::Sandbox>,
    /// The health check's command, if it has one, and its health as the start left it.
    probe: Option<Vec<String>>,
    health: Health,
}

/// Mounts the rootfs, sets up the network, writes the bundle and has the runtime create
/// and start the container; or records why it could not start, cleaned up.
fn start_run(
    m: &mut Monitor,
    c: &Container,
    cdir: &Path,
    rt: &Runtime,
    attached_stdin: Option<OwnedFd>,
) -> Result<Result<Started, (i32, String)>, MonitorError> {
    let layout = Layout::new(cdir);
    let lowers: Vec<PathBuf> = c
        .spec
        .layers
        .iter()
        .map(|l| m.root.join("snapshots").join(l))
        .collect();
    layout.mount(&lowers)?;
    crate::fault::at(crate::fault::Step::MonitorRootfsMounted);
    let init = match c.spec.host.init {
        Some(true) => Some(crate::init::install(&m.root)?),
        _ => None,
    };
    let sandbox = match network::start(&m.root, m.db.get()?, c) {
        Ok(s) => s,
        Err(e) => return not_started(m, 125, e.to_string()),
    };
    crate::fault::at(crate::fault::Step::MonitorSandboxBuilt);
    // From here on, a failure takes the sandbox down again before it is reported.
    let prepared = prepare_networking(m, c, sandbox.as_ref()).and_then(|(net, resolver)| {
        let bundle = crate::bundle::write_bundle(cdir, c, init.as_deref(), net.as_ref())?;
        // A peer that started while our text was computed skipped our file, which did not
        // exist yet: computed again now, under the file's lock, it has every live peer.
        if net.is_some() {
            network::rewrite_own_hosts(&m.root, m.db.get()?, c)?;
        }
        Ok((bundle, resolver))
    });
    let (bundle, resolver) = match prepared {
        Ok(p) => p,
        Err(e) => {
            if sandbox.is_some() {
                if let Ok(db) = m.db.get() {
                    let _ = network::stop(&m.root, db, c);
                }
            }
            return not_started(m, 125, e.to_string());
        }
    };
    // A leftover from a killed monitor would make create fail with "already exists".
    if rt.has_state(&c.id) {
        let _ = rt.delete_force(&c.id);
    }
    let tty = c.spec.config.tty;
    let console = if tty {
        Some(ConsoleSocket::bind(cdir, "console.sock")?)
    } else {
        None
    };
    let mut outputs = Vec::new();
    let mut writers = Vec::new();
    if !tty {
        for name in ["stdout", "stderr"] {
            let (r, w) = pipe()?;
            outputs.push((r, name));
            writers.push(w);
        }
    }
    // With `-i` and no stdin handed over at start, clients' input goes into a pipe the
    // monitor keeps open, so a shell waits for input instead of seeing end of file.
    let mut input = None;
    let stdin: std::process::Stdio = match attached_stdin {
        Some(fd) if !tty => fd.into(),
        _ if c.spec.config.open_stdin && !tty => {
            let (r, w) = pipe()?;
            input = Some(w);
            r.into()
        }
        _ => std::process::Stdio::null(),
    };
    let pid_file = cdir.join("pid");
    let _ = std::fs::remove_file(&pid_file);
    let runtime_log = cdir.join("runtime.log");
    let _ = std::fs::remove_file(&runtime_log);
    let mut cmd = rt.command(&[]);
    cmd.arg("--log")
        .arg(&runtime_log)
        .args(["--log-format", "json", "create", "--bundle"])
        .arg(&bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    if let Some(console) = &console {
        cmd.arg("--console-socket").arg(console.path());
    }
    cmd.arg(&c.id).stdin(stdin);
    match (writers.pop(), writers.pop()) {
        (Some(err_w), Some(out_w)) => cmd.stdout(out_w).stderr(err_w),
        _ => cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    };
    let status = cmd.status()?;
    drop(cmd);
    // The runtime's own error goes to its stderr, which is the container's; read it back
    // from the runtime's log instead so it is not mistaken for output.
    let started = if status.success() {
        crate::fault::at(crate::fault::Step::MonitorRuntimeCreated);
        let master = console
            .as_ref()
            .map(|console| console.receive(|| false).map_err(|e| e.to_string()))
            .transpose();
        let pid: i32 = std::fs::read_to_string(&pid_file)?
            .trim()
            .parse()
            .map_err(|_| io::Error::other("runtime wrote an unreadable pid file"))?;
        master.and_then(|master| {
            if let Some(master) = master {
                input = Some(master.try_clone().map_err(|e| e.to_string())?);
                outputs.push((master, "stdout"));
            }
            rt.start(&c.id).map(|_| pid).map_err(|e| e.to_string())
        })
    } else {
        Err(runtime::logged_error(&runtime_log)
            .unwrap_or_else(|| format!("runtime create failed with {status}")))
    };
    drop(console);
    let pid = match started {
        Ok(pid) => pid,
        Err(msg) => {
            let _ = rt.delete_force(&c.id);
            if sandbox.is_some() {
                network_down(m, c)?;
            }
            return not_started(m, start_failure_code(&msg), msg);
        }
    };
    let probe = c.health_command();
    let checked = probe.is_some();
    let state = m.update_reporting(
        |s| {
            // rm -f may have claimed the container meanwhile.
            if s.status != Status::Removing {
                s.status = Status::Running;
            }
            s.pid = pid;
            s.error.clear();
            s.exit_code = 0;
            s.oom_killed = false;
            s.started_at = Some(container::now());
            if checked {
                s.health = Some(Health::starting(s.health.take()));
            }
        },
        &[
            volume_events(c, "mount"),
            vec![crate::events::container_event(c, "start", &[])],
        ]
        .concat(),
    )?;
    m.report("started");
    m.start_lock = None;
    // SQLite's memory goes back while the container runs; the store is opened again on its
    // next use (a health result, the exit).
    m.db.close();
    Ok(Ok(Started {
        pid,
        stdio: Stdio {
            outputs,
            input,
            tty,
        },
        resolver,
        sandbox,
        probe,
        health: state.and_then(|s| s.health).unwrap_or_default(),
    }))
}

/// How a run ended: its exit code, whether the kernel killed it for memory, and the
/// events that come before `die` (oom, the volumes' unmount).
struct Ended {
    code: i32,
    oom: bool,
    events: Vec<EventRow>,
}

/// docker's `mount` and `unmount` events of the container's volumes.
fn volume_events(c: &Container, action: &str) -> Vec<EventRow> {
    c.spec
        .mounts
        .iter()
        .filter(|v| v.kind == "volume")
        .map(|v| {
            let rw = v.rw.to_string();
            let mut attrs = vec![("container", c.id.as_str()), ("driver", "local")];
            if action == "mount" {
                attrs.extend([
                    ("destination", v.destination.as_str()),
                    ("propagation", v.propagation.as_str()),
                    ("read/write", rw.as_str()),
                ]);
            }
            crate::events::event(crate::events::Kind::Volume, action, &v.name, &attrs)
        })
        .collect()
}

/// The name files and link variables of a container with a sandbox, its own resolver
/// on a user-defined network, its published ports recorded and its peers told.
fn prepare_networking(
    m: &mut Monitor,
    c: &Container,
    sandbox: Option<&network::Sandbox>,
) -> Result<(Option<Networking>, Option<network::dns::Resolver>), MonitorError> {
    let Some(sb) = sandbox else {
        return Ok((None, None));
    };
    let net = Networking {
        netns: sb.netns.clone(),
        hosts: network::hosts_of(&m.root, m.db.get()?, c)?,
        resolv: network::resolv_of(m.db.get()?, c)?,
        link_env: network::link_env(m.db.get()?, c)?,
    };
    let resolver = if net.resolv.contains(network::dns::ADDRESS) {
        let servers = c
            .spec
            .host
            .dns
            .clone()
            .unwrap_or_else(network::hosts::host_servers);
        Some(
            network::dns::Resolver::bind(&sb.netns, &m.root, &c.id, &servers)
                .map_err(|e| io::Error::other(format!("starting the container's resolver: {e}")))?,
        )
    } else {
        None
    };
    let published = sb.published();
    m.update(|s| s.ports = published.clone())?;
    network::refresh_peers(&m.root, m.db.get()?, c)?;
    Ok((Some(net), resolver))
}

/// Records why the container could not start; the caller cleans up and reports it.
fn not_started<T>(
    m: &mut Monitor,
    code: i32,
    msg: String,
) -> Result<Result<T, (i32, String)>, MonitorError> {
    m.update(|s| {
        s.error = msg.clone();
        s.exit_code = code;
        s.pid = 0;
        if s.status != Status::Created {
            s.status = Status::Exited;
            s.finished_at = Some(container::now());
        }
    })?;
    Ok(Err((code, msg)))
}

/// Takes the container's sandbox down and its name off its peers' hosts files.
fn network_down(m: &mut Monitor, c: &Container) -> Result<(), MonitorError> {
    network::stop(&m.root, m.db.get()?, c)?;
    network::refresh_peers(&m.root, m.db.get()?, c)?;
    m.update(|s| s.ports.clear())?;
    Ok(())
}

/// Copies the container's output into the log and to attached clients, and clients'
/// input to the container, until the container's init exits and its output is drained;
/// reaps every child that reparents to us meanwhile.
/// How long a monitor waits with nothing to do before it gives back its start-up's pages.
const IDLE: Duration = Duration::from_secs(10);

fn pump(
    io: Io<'_>,
    pid: Pid,
    stdio: Stdio,
    mut resolver: Option<&mut network::dns::Resolver>,
    mut checker: Option<&mut Checker<'_>>,
) -> Result<i32, MonitorError> {
    let Io { sfd, log, hub } = io;
    let mut streams: Vec<(Option<OwnedFd>, LogStream)> = stdio
        .outputs
        .into_iter()
        .map(|(fd, name)| (Some(fd), LogStream::new(name)))
        .collect();
    let mut input = stdio.input;
    let mut code = None;
    // Sized on use and freed while idle, so that an idle monitor does not hold its pages.
    let mut buf = Vec::new();
    // Once nothing has happened for IDLE, the start-up's pages go back (`footprint`); again
    // after each later burst of work.
    let mut active = Instant::now();
    let mut shed = false;
    loop {
        if code.is_some() {
            // Init is gone; read what is left without waiting for processes that may
            // still hold the pipes (with --pid=host they outlive init).
            for (fd, s) in &mut streams {
                if let Some(f) = fd.take() {
                    buf.resize(READ_BUF, 0);
                    nix::fcntl::fcntl(
                        f.as_raw_fd(),
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    )?;
                    while let Ok(n) = nix::unistd::read(f.as_raw_fd(), &mut buf) {
                        if n == 0 {
                            break;
                        }
                        hub.broadcast(stream_id(s.name), &buf[..n]);
                        s.push(&buf[..n], log);
                    }
                }
                s.finish(log);
            }
            return Ok(code.unwrap_or(0));
        }
        let open: Vec<usize> = (0..streams.len())
            .filter(|i| streams[*i].0.is_some())
            .collect();
        let hub_fds = hub.fds();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        for i in &open {
            if let Some(f) = &streams[*i].0 {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
        }
        fds.extend(hub_fds.iter().map(|f| PollFd::new(*f, PollFlags::POLLIN)));
        let dns_at = fds.len();
        if let Some(r) = &resolver {
            fds.extend(r.fds().map(|f| PollFd::new(f, PollFlags::POLLIN)));
        }
        let probe_at = fds.len();
        let probe_fd = checker.as_ref().and_then(|c| c.fd());
        if let Some(f) = probe_fd {
            fds.push(PollFd::new(f, PollFlags::POLLIN));
        }
        let idle_left = (!shed).then(|| IDLE.saturating_sub(active.elapsed()));
        let timeout = match (checker.as_ref().map(|c| c.timeout()), idle_left) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(ready) = crate::attach::poll_ready(&mut fds, timeout)? else {
            continue;
        };
        drop(fds);
        drop(hub_fds);
        if ready.iter().any(|r| *r) {
            active = Instant::now();
            shed = false;
        } else if !shed && active.elapsed() >= IDLE {
            if let Some(ch) = checker.as_deref_mut() {
                ch.idle();
            }
            if let Some(r) = resolver.as_deref_mut() {
                r.idle();
            }
            buf = Vec::new();
            crate::footprint::shed();
            shed = true;
        }
        if let Some(ch) = checker.as_deref_mut() {
            if ready.get(probe_at) == Some(&true) {
                ch.on_output();
            }
        }
        if let Some(r) = resolver.as_deref_mut() {
            if ready[dns_at] {
                r.on_queries();
            }
            if ready[dns_at + 1] {
                r.on_answers();
            }
        }
        for (k, i) in open.iter().enumerate() {
            if !ready[k + 1] {
                continue;
            }
            let (fd, s) = &mut streams[*i];
            buf.resize(READ_BUF, 0);
            let n = fd
                .as_ref()
                .map(|f| nix::unistd::read(f.as_raw_fd(), &mut buf))
                .unwrap_or(Ok(0));
            match n {
                Ok(0) | Err(_) => {
                    s.finish(log);
                    *fd = None;
                }
                Ok(n) => {
                    hub.broadcast(stream_id(s.name), &buf[..n]);
                    s.push(&buf[..n], log);
                }
            }
        }
        for i in hub.handle(&ready[open.len() + 1..dns_at]) {
            match (i, &input) {
                (Input::Data(d), Some(f)) => {
                    // A container that stopped reading must not stall the monitor.
                    let _ = nix::unistd::write(f, &d);
                }
                (Input::Resize(rows, cols), Some(f)) if stdio.tty => {
                    let _ = crate::tty::term::set_window_size(f.as_fd(), rows, cols);
                }
                (Input::Eof, Some(_)) if !stdio.tty => input = None,
                _ => {}
            }
        }
        if ready[0] {
            let _ = sfd.read_signal();
            loop {
                let (p, c) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, c)) => (p, c),
                    Ok(WaitStatus::Signaled(p, sig, _)) => (p, 128 + sig as i32),
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                };
                if p == pid {
                    code = Some(c);
                } else if let Some(ch) = checker.as_deref_mut() {
                    ch.on_exit(p, c);
                }
            }
        }
        // After reaping: a probe that ended is taken as ended, not timed out, and no probe
        // starts in a container whose init is gone.
        if code.is_none() {
            if let Some(ch) = checker.as_deref_mut() {
                ch.on_time();
            }
        }
    }
}

fn stream_id(name: &str) -> u8 {
    if name == "stderr" {
        attach::STDERR
    } else {
        attach::STDOUT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitor_gets_its_tunable_and_keeps_the_users_value() {
        let ours = "glibc.malloc.tcache_count=0";
        let [(k, v), (kept, user)] = monitor_environment(None);
        assert_eq!((k, v.as_deref()), ("GLIBC_TUNABLES", Some(ours.as_ref())));
        assert_eq!((kept, user), ("WHARF_USER_GLIBC_TUNABLES", None));
        let [(_, v), (_, user)] = monitor_environment(Some("".as_ref()));
        assert_eq!(v.as_deref(), Some(ours.as_ref()));
        assert_eq!(user.as_deref(), Some("".as_ref()));
        let mine = "glibc.malloc.arena_max=2:glibc.mem.tagging=0";
        let [(_, v), (_, user)] = monitor_environment(Some(mine.as_ref()));
        assert_eq!(
            v.as_deref(),
            Some(format!("{mine}:{ours}").as_ref() as &std::ffi::OsStr)
        );
        assert_eq!(user.as_deref(), Some(mine.as_ref()));
    }

    #[test]
    fn log_lines_are_docker_json() {
        let mut out = Vec::new();
        let mut s = LogStream::new("stdout");
        s.push(b"hello\nwor", &mut out);
        s.push(b"ld <x>\n", &mut out);
        s.push(b"tail", &mut out);
        s.finish(&mut out);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["log"], "hello\n");
        assert_eq!(lines[1]["log"], "world <x>\n");
        assert_eq!(lines[2]["log"], "tail");
        assert_eq!(lines[0]["stream"], "stdout");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            start_failure_code("exec: \"x\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_failure_code("exec /etc: permission denied"), 126);
        // hull and runc
        assert_eq!(
            start_failure_code(
                "container init: process.args[0]: exec: \"/no/such\": stat /no/such: no such file or directory"
            ),
            127
        );
        // crun
        assert_eq!(
            start_failure_code("executable file `/no/such` not found: No such file or directory"),
            127
        );
        assert_eq!(
            start_failure_code("open executable: Permission denied"),
            126
        );
        assert_eq!(
            start_failure_code("open executable: Operation not permitted"),
            126
        );
        assert_eq!(
            start_failure_code("mounting /x: Device or resource busy"),
            125
        );
    }
}
