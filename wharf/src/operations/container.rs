//! The container lifecycle as docker's daemon runs it: create (the image pulled when
//! missing, if the caller wants that), start (through the monitor, optionally with an
//! attach client handed over at start), stop, restart, kill, remove, wait for the exit.

use std::os::fd::OwnedFd;
use std::path::Path;

use super::image::{self, Pulled};
use super::OperationError;
use crate::container::create::{self, Options};
use crate::container::resources::Update;
use crate::container::{self, lookup, ops, Container};
use crate::context::{Access, Context};
use crate::image::reference::ImageRef;
use crate::image::registry::Progress;

/// What to do when the image is missing.
pub enum Missing<'a> {
    /// Refuse with "No such image" (the API: its clients pull first).
    Fail,
    /// Pull it (`docker run` and `docker create`), telling `notice` before the pull.
    Pull {
        notice: &'a mut dyn FnMut(&ImageRef),
        progress: &'a dyn Progress,
    },
}

/// Creates the container; returns it and the pull made for it, if any.
pub fn create(
    root: &Path,
    opts: Options,
    missing: Missing,
) -> Result<(Container, Option<Pulled>), OperationError> {
    // Before the image is looked up or pulled: a bad value is reported at once.
    create::validate(&opts)?;
    let (id, pulled) = match missing {
        Missing::Fail => {
            let ctx = Context::open(root, Access::Shared)?;
            (crate::image::lookup::find(&ctx.db, &opts.image)?.0, None)
        }
        Missing::Pull { notice, progress } => {
            image::resolve_or_pull(root, &opts.image, notice, progress)?
        }
    };
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = create::create(&mut ctx, &id, opts)?;
    Ok((c, pulled))
}

/// A started container whose exit the caller waits for (`docker run` in the foreground,
/// `docker start -a`, the API's attach then wait).
pub struct Started {
    pub container: Container,
    pipe: ops::StatusPipe,
}

/// Starts the container through its monitor. `client` is the monitor's end of an attach
/// socket pair, handed over so that no output is lost before the caller attaches;
/// `stdin` gives the monitor our own stdin for the container. Starting a running
/// container does nothing, as in docker.
pub fn start(
    root: &Path,
    c: &Container,
    stdin: bool,
    client: Option<OwnedFd>,
) -> Result<Option<Started>, OperationError> {
    if c.is_running() {
        return Ok(None);
    }
    // An `rm` that was killed has claimed it: only `rm -f` may finish it now.
    if c.state.status == container::Status::Removing {
        return Err(OperationError::Conflict(
            "container is marked for removal and cannot be started".into(),
        ));
    }
    let mut pipe = match ops::start_monitor(root, c, stdin, client) {
        Ok(pipe) => pipe,
        Err(e) => {
            // No monitor ran, so none will remove a --rm container when its run ends.
            if c.spec.host.auto_remove {
                let _ = remove(root, &c.id, true, true);
            }
            return Err(e.into());
        }
    };
    crate::fault::at(crate::fault::Step::StartMonitorSpawned);
    pipe.wait_started(&c.id)?;
    Ok(Some(Started {
        container: c.clone(),
        pipe,
    }))
}

/// Starts the container with that name or id; returns it.
pub fn start_named(root: &Path, name: &str) -> Result<Container, OperationError> {
    let c = find(root, name)?;
    start(root, &c, false, None)?;
    Ok(c)
}

impl Started {
    /// Waits for the container to exit; its exit code (what the store recorded when the
    /// monitor went without a word).
    pub fn wait(mut self, root: &Path) -> Result<i32, OperationError> {
        loop {
            match self.pipe.line(None)?.as_deref() {
                Some("started") => continue,
                Some(l) if l.starts_with("exit ") => return Ok(l[5..].parse().unwrap_or(125)),
                Some(l) if l.starts_with("error ") => {
                    let (code, msg) = l[6..].split_once(' ').unwrap_or((&l[6..], ""));
                    return Err(OperationError::Runtime {
                        code: code.parse().unwrap_or(125),
                        msg: msg.to_string(),
                    });
                }
                _ => {
                    let ctx = Context::open(root, Access::Shared)?;
                    return Ok(container::load(&ctx.db, &self.container.id)?
                        .map(|c| c.state.exit_code)
                        .unwrap_or(125));
                }
            }
        }
    }
}

/// The container a user means by `name` (id, name or unique id prefix).
pub fn find(root: &Path, name: &str) -> Result<Container, OperationError> {
    let ctx = Context::open(root, Access::Shared)?;
    Ok(lookup::find(&ctx.db, name)?)
}

pub fn stop(root: &Path, name: &str, timeout: Option<i64>) -> Result<Container, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, name)?;
    ops::stop(root, &mut ctx.db, &c, timeout)?;
    Ok(c)
}

pub fn restart(root: &Path, name: &str, timeout: Option<i64>) -> Result<Container, OperationError> {
    let c = stop(root, name, timeout)?;
    let c = find(root, &c.id)?;
    start(root, &c, false, None)?;
    Ok(c)
}

pub fn kill(root: &Path, name: &str, signal: &str) -> Result<Container, OperationError> {
    let signal = container::parse::signal(signal).map_err(create::CreateError::from)?;
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, name)?;
    ops::kill(root, &mut ctx.db, &c, signal).map_err(|e| match e {
        ops::OpsError::NotRunning(_) => OperationError::Conflict(format!(
            "Cannot kill container: {name}: Container {} is not running",
            c.id
        )),
        e => e.into(),
    })?;
    Ok(c)
}

/// Removes the container (`force`: running or not), with its anonymous volumes when
/// `volumes`.
pub fn remove(
    root: &Path,
    name: &str,
    force: bool,
    volumes: bool,
) -> Result<Container, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, name)?;
    ops::remove(root, &mut ctx.db, &c, force)?;
    if volumes {
        crate::volume::remove_anonymous_of(&mut ctx.db, root, &c)?;
    }
    Ok(c)
}

pub fn pause(root: &Path, name: &str) -> Result<Container, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, name)?;
    ops::pause(root, &mut ctx.db, &c)?;
    Ok(c)
}

pub fn unpause(root: &Path, name: &str) -> Result<Container, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, name)?;
    ops::unpause(root, &mut ctx.db, &c)?;
    Ok(c)
}

/// Waits until the container is not running; its exit code. A `--rm` container that is
/// already gone is still found by its full id, whose code its monitor kept.
pub fn wait(root: &Path, name: &str) -> Result<i32, OperationError> {
    let db = Context::watch(root)?;
    match lookup::find(&db, name) {
        Ok(c) => Ok(ops::wait(&db, &c)?),
        Err(e) => Ok(db.removed_exit(name)?.ok_or(e)?),
    }
}

pub fn rename(root: &Path, name: &str, new_name: &str) -> Result<(), OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, name)?;
    let new = container::names::validate(new_name).map_err(create::CreateError::from)?;
    if new == c.name {
        return Err(OperationError::Invalid(
            "Renaming a container with the same name as its current name".into(),
        ));
    }
    ctx.db.rename_container(&c.id, new)?;
    let renamed = crate::container::Container {
        name: new.to_string(),
        ..c.clone()
    };
    crate::events::container(
        &ctx.db,
        &renamed,
        "rename",
        &[("oldName", &format!("/{}", c.name))],
    );
    Ok(())
}

/// `update`: new limits and restart policy for a container. The record changes first
/// and, while the container runs, the runtime applies the limits; when it cannot, the
/// record goes back, as docker restores its config. A restart keeps what was recorded:
/// the bundle is written from the record.
pub fn update(root: &Path, name: &str, req: &Update) -> Result<(), OperationError> {
    req.validate(Path::new("/sys"))
        .map_err(OperationError::Invalid)?;
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, name)?;
    if matches!(
        c.effective_status(),
        container::Status::Removing | container::Status::Dead
    ) {
        return Err(OperationError::Conflict(format!(
            "Cannot update container {}: Container is marked for removal and cannot be \"update\"",
            c.id
        )));
    }
    let mut before = None;
    let spec = container::update_spec(&mut ctx.db, &c.id, |s| {
        before = Some(s.clone());
        Ok(container::Spec {
            host: req.apply(&s.host)?,
            ..s.clone()
        })
    })
    .map_err(|e| match e {
        container::ContainerError::Refused(m) => OperationError::Conflict(m),
        e => e.into(),
    })?
    .ok_or_else(|| container::ContainerError::NotFound(name.to_string()))?;
    // A container between runs has nothing in the runtime; its next start reads the record.
    let live = matches!(
        c.effective_status(),
        container::Status::Running | container::Status::Paused
    );
    if live && !req.limits_unchanged() {
        let limits = req.runtime_resources(&spec.host);
        if let Err(e) = ops::runtime(root, &c).update(&c.id, &limits) {
            // docker restores the HostConfig: here only if nothing changed it since, so a
            // concurrent update is not undone; the runtime's error is reported whatever
            // the restore does.
            if let Some(old) = before {
                let written = serde_json::to_value(&spec.host).ok();
                let _ = container::update_spec(&mut ctx.db, &c.id, |s| {
                    if serde_json::to_value(&s.host).ok() != written {
                        return Err("changed since".into());
                    }
                    Ok(container::Spec {
                        host: old.host.clone(),
                        ..s.clone()
                    })
                });
            }
            return Err(OperationError::Runtime {
                code: 125,
                msg: format!("Cannot update container {}: {e}", c.id),
            });
        }
    }
    crate::events::container(&ctx.db, &c, "update", &[]);
    Ok(())
}

/// Which containers `ps` and `GET /containers/json` list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Stopped ones too.
    pub all: bool,
    /// The N last created (any state); 0 for no limit.
    pub last: usize,
    /// docker's filters as `key=value`.
    pub filters: Vec<String>,
}

/// The containers, newest first.
pub fn list(root: &Path, o: &ListOptions) -> Result<Vec<Container>, OperationError> {
    let ctx = Context::open(root, Access::Shared)?;
    let mut list = container::all(&ctx.db)?;
    let filters = container::filter::Filters::parse(&ctx.db, &o.filters)
        .map_err(|e| OperationError::Invalid(e.to_string()))?;
    if !(o.all || o.last > 0 || filters.want_stopped()) {
        list.retain(|c| c.is_running());
    }
    list.retain(|c| filters.matches(c));
    if o.last > 0 {
        list.truncate(o.last);
    }
    Ok(list)
}

/// Removes every stopped container, and container directories no record names.
pub fn prune(root: &Path) -> Result<container::prune::Pruned, OperationError> {
    // Exclusive: no create is half done, so a directory without a record is a leftover.
    let mut ctx = Context::open(root, Access::Exclusive)?;
    let p = container::prune::prune(root, &mut ctx.db)?;
    container::prune::orphans(&mut ctx)?;
    Ok(p)
}

/// What `POST /containers/{id}/wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// The container is not running (at once for one that is not).
    NotRunning,
    /// The container exits after this call: a created one is waited through its start.
    NextExit,
    /// The container's record is gone (`--rm`).
    Removed,
}

/// Waits for `w`; the container's exit code, or None once `wanted` says nobody waits
/// any more (a client that went away: docker's own client asks for a wait it never reads
/// with `run -d`).
pub fn wait_for(
    root: &Path,
    c: &Container,
    w: WaitFor,
    wanted: &dyn Fn() -> bool,
) -> Result<Option<i32>, OperationError> {
    let db = Context::watch(root)?;
    let gone = |code: i32| -> Result<Option<i32>, OperationError> {
        Ok(Some(db.removed_exit(&c.id)?.unwrap_or(code)))
    };
    let mut last = c.clone();
    loop {
        if !wanted() {
            return Ok(None);
        }
        let now = container::load(&db, &c.id)?;
        let Some(now) = now else {
            return gone(last.state.exit_code);
        };
        let done = match w {
            WaitFor::NotRunning => !now.is_running(),
            WaitFor::NextExit => {
                !now.is_running() && (c.is_running() || now.state.started_at != c.state.started_at)
            }
            WaitFor::Removed => false,
        };
        if done {
            return Ok(Some(now.state.exit_code));
        }
        last = now;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The container's filesystem changes against its image (`docker diff`).
pub fn changes(root: &Path, name: &str) -> Result<Vec<container::diff::Change>, OperationError> {
    let c = find(root, name)?;
    let layout = container::rootfs::Layout::new(&container::dir(root, &c.id));
    let lowers: Vec<std::path::PathBuf> = c
        .spec
        .layers
        .iter()
        .map(|l| root.join("snapshots").join(l))
        .collect();
    Ok(container::diff::changes(&layout.upper, &lowers)?)
}

/// ps(1)'s table (docker's default `-ef`) of the container's processes.
pub fn top(root: &Path, name: &str, ps_options: &[String]) -> Result<String, OperationError> {
    let c = find(root, name)?;
    if !c.is_running() {
        return Err(OperationError::Conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let opts = if ps_options.is_empty() {
        vec!["-ef".to_string()]
    } else {
        ps_options.to_vec()
    };
    let pids = ops::runtime(root, &c)
        .pids(&c.id)
        .map_err(ops::OpsError::from)?;
    container::top::run(&opts, &pids).map_err(|e| OperationError::Invalid(e.to_string()))
}

/// A ps table as docker's API gives it: the titles, and each row cut into as many fields
/// (the last one keeps its spaces: the command).
pub fn split_top(table: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = table.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let n = titles.len().max(1);
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut fields: Vec<String> = Vec::with_capacity(n);
            let mut rest = l.trim_start();
            while fields.len() + 1 < n {
                let Some(end) = rest.find(char::is_whitespace) else {
                    break;
                };
                fields.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            fields.push(rest.to_string());
            fields
        })
        .collect();
    (titles, rows)
}

/// Writes the container's filesystem as a tar (`docker export`).
pub fn export(root: &Path, name: &str, out: &mut dyn std::io::Write) -> Result<(), OperationError> {
    let c = find(root, name)?;
    container::export::export(root, &c, out).map_err(|e| OperationError::Invalid(e.to_string()))
}

/// `HEAD /containers/{id}/archive`: what is at `path`.
pub fn archive_stat(
    root: &Path,
    name: &str,
    path: &str,
) -> Result<container::cp::PathStat, OperationError> {
    let c = find(root, name)?;
    container::cp::stat(root, &c, path).map_err(cp_error)
}

/// `docker cp CONTAINER:PATH -`: `path` as a tar, named after its last component.
pub fn archive_get(
    root: &Path,
    name: &str,
    path: &str,
    out: &mut dyn std::io::Write,
) -> Result<(), OperationError> {
    let c = find(root, name)?;
    let o = container::cp::Options {
        archive: true,
        follow: false,
    };
    container::cp::copy_out(root, &c, path, None, out, &o).map_err(cp_error)
}

/// `docker cp - CONTAINER:DIR`: a tar extracted into the directory `path`.
pub fn archive_put(
    root: &Path,
    name: &str,
    path: &str,
    input: &mut dyn std::io::Read,
) -> Result<(), OperationError> {
    let c = find(root, name)?;
    let o = container::cp::Options {
        archive: true,
        follow: false,
    };
    container::cp::copy_in(root, &c, None, input, path, &o).map_err(cp_error)
}

fn cp_error(e: container::cp::CpError) -> OperationError {
    use container::cp::CpError;
    match e {
        CpError::NotInContainer { .. } => OperationError::NotFound(e.to_string()),
        e => OperationError::Invalid(e.to_string()),
    }
}

/// docker's inspect object of the container `name`.
pub fn inspect(root: &Path, name: &str) -> Result<serde_json::Value, OperationError> {
    let ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, name)?;
    Ok(crate::inspect::container(root, &ctx.db, &c)?)
}

/// One reading of a container's counters and when it was taken (RFC 3339).
pub type Reading = (String, container::stats::Sample);

/// Readings a second apart, as dockerd collects them: `sink` gets the previous and the
/// current one, once (`stream` false) or every second until the container stops or `sink`
/// fails. `one_shot` skips the first second (docker's `one-shot`: no previous reading).
pub fn stats(
    root: &Path,
    c: &Container,
    stream: bool,
    one_shot: bool,
    sink: &mut dyn FnMut(&Reading, &Reading) -> std::io::Result<()>,
) -> Result<(), OperationError> {
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let read = || (now(), container::stats::sample(&c.id, c.state.pid));
    let mut prev = if one_shot {
        ("0001-01-01T00:00:00Z".to_string(), Default::default())
    } else {
        read()
    };
    let db = Context::watch(root)?;
    loop {
        if !one_shot {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let cur = read();
        if sink(&prev, &cur).is_err() || !stream {
            return Ok(());
        }
        if !container::load(&db, &c.id)?.is_some_and(|c| c.is_running()) {
            return Ok(());
        }
        prev = cur;
    }
}
