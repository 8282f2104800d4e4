//! `/containers/{id}/exec` and `/exec/{id}/...`: exec instances created by one request,
//! started (hijacked, or detached) and inspected by others. Without a terminal the
//! process's pipes are relayed framed; with one, the runtime proxies the container's
//! terminal over a pty of ours, whose master is relayed raw and resized on request.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bollard_stubs::models::ExecConfig;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::{blocking, ApiError};
use super::{stream, AppState};
use crate::operations::container as op;
use crate::operations::exec::{self, ExecRequest};
use crate::operations::OperationError;

/// One exec instance.
pub struct Entry {
    container: String,
    req: ExecRequest,
    stdin: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
    /// The pty master of a running exec with a terminal, for resizes.
    master: Option<Arc<OwnedFd>>,
}

pub async fn create(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let cfg: ExecConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid exec config: {e}")))?;
    let cmd = cfg.cmd.clone().unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    if cfg.privileged == Some(true) {
        return Err(ApiError::bad_request(
            "Privileged is not supported by wharf's exec",
        ));
    }
    let root = s.root.clone();
    let c = blocking(move || Ok(op::find(&root, &id)?)).await?;
    if !c.is_running() {
        return Err(OperationError::Conflict(format!("Container {} is not running", c.id)).into());
    }
    let exec_id = crate::container::random_id().map_err(OperationError::from)?;
    let entry = Entry {
        container: c.id.clone(),
        req: ExecRequest {
            container: c.id.clone(),
            command: cmd,
            tty: cfg.tty.unwrap_or(false),
            env: cfg.env.clone().unwrap_or_default(),
            user: cfg.user.clone().filter(|u| !u.is_empty()),
            workdir: cfg.working_dir.clone().filter(|w| !w.is_empty()),
            detach: false,
            runtime_proxies_tty: true,
        },
        stdin: cfg.attach_stdin.unwrap_or(false),
        running: false,
        exit_code: None,
        pid: 0,
        master: None,
    };
    s.execs
        .lock()
        .map_err(|_| ApiError::internal("exec table poisoned"))?
        .insert(exec_id.clone(), entry);
    let created = bollard_stubs::models::IdResponse { id: exec_id };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct StartBody {
    #[serde(default)]
    detach: bool,
}

/// Runs `f` on the exec instance `id`.
fn with_entry<T>(s: &AppState, id: &str, f: impl FnOnce(&mut Entry) -> T) -> Result<T, ApiError> {
    let mut execs = s
        .execs
        .lock()
        .map_err(|_| ApiError::internal("exec table poisoned"))?;
    let e = execs
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))?;
    Ok(f(e))
}

/// Marks the instance running; what to run, and whether the client's input goes to it.
fn take_request(s: &AppState, id: &str) -> Result<(ExecRequest, bool), ApiError> {
    with_entry(s, id, |e| {
        if e.running || e.exit_code.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("Error: Exec command {id} has already run"),
            ));
        }
        e.running = true;
        Ok((e.req.clone(), e.stdin))
    })?
}

/// Records the exec's end: its exit code, for inspect.
fn finish(s: &AppState, id: &str, code: i32) {
    let _ = with_entry(s, id, |e| {
        e.running = false;
        e.exit_code = Some(code);
        e.master = None;
    });
}

fn set_process(s: &AppState, id: &str, pid: u32, master: Option<Arc<OwnedFd>>) {
    let _ = with_entry(s, id, |e| {
        e.pid = pid as i32;
        e.master = master;
    });
}

/// The exit code for a finished runtime, docker's 126/127 when it could not start.
fn code_of(prepared: &exec::Prepared, status: std::io::Result<std::process::ExitStatus>) -> i32 {
    match status
        .map_err(OperationError::from)
        .and_then(|st| prepared.outcome(st))
    {
        Ok(code) => code,
        Err(OperationError::Runtime { code, .. }) => code,
        Err(_) => 126,
    }
}

pub async fn start(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 64 * 1024)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
    let start: StartBody = if body.is_empty() {
        StartBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid exec start config: {e}")))?
    };
    let (mut ereq, stdin) = take_request(&s, &id)?;
    let tty = ereq.tty;
    if start.detach {
        ereq.detach = true;
        let root = s.root.clone();
        let prepared = blocking(move || Ok(exec::prepare(&root, &ereq)?))
            .await
            .inspect_err(|_| finish(&s, &id, 126))?;
        let (s2, id2) = (s.clone(), id.clone());
        std::thread::spawn(move || run_detached(s2, id2, prepared));
        return Ok(StatusCode::OK.into_response());
    }
    let root = s.root.clone();
    let prepared = blocking(move || Ok(exec::prepare(&root, &ereq)?))
        .await
        .inspect_err(|_| finish(&s, &id, 126))?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else {
            finish(&s, &id, 126);
            return;
        };
        let conn = hyper_util::rt::TokioIo::new(up);
        if tty {
            with_terminal(&s, &id, conn, prepared).await
        } else {
            with_pipes(&s, &id, conn, prepared, stdin).await
        }
    });
    Ok(stream::upgraded(tty))
}

/// A detached exec: nobody reads its output; its exit code is kept for inspect.
fn run_detached(s: AppState, id: String, mut prepared: exec::Prepared) {
    let cmd = prepared.command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = cmd.status();
    let code = code_of(&prepared, status);
    finish(&s, &id, code);
}

/// Relays the process's pipes; its exit code is recorded before the stream closes, so
/// that a client inspecting the exec at end of stream finds it.
async fn with_pipes(
    s: &AppState,
    id: &str,
    conn: stream::Conn,
    mut prepared: exec::Prepared,
    stdin: bool,
) {
    let cmd = prepared.command();
    cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(_) => return finish(s, id, 126),
    };
    set_process(s, id, child.id(), None);
    let pipe = |fd: Option<OwnedFd>| {
        fd.and_then(|fd| tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok())
    };
    let out = pipe(child.stdout.take().map(OwnedFd::from));
    let err = pipe(child.stderr.take().map(OwnedFd::from));
    let input = child
        .stdin
        .take()
        .and_then(|fd| tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(fd)).ok());
    let (mut rd, wr) = tokio::io::split(conn);
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let copy_out = |r: Option<tokio::net::unix::pipe::Receiver>, kind: u8| {
        let wr = wr.clone();
        async move {
            let Some(mut r) = r else { return };
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut w = wr.lock().await;
                if w.write_all(&stream::frame(kind, &buf[..n])).await.is_err() {
                    break;
                }
                let _ = w.flush().await;
            }
        }
    };
    let feed = async move {
        let Some(mut input) = input else { return };
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 || input.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let feeder = tokio::spawn(feed);
    tokio::join!(copy_out(out, 1), copy_out(err, 2));
    feeder.abort();
    let status = tokio::task::spawn_blocking(move || {
        let st = child.wait();
        (st, prepared)
    })
    .await;
    let code = match status {
        Ok((st, prepared)) => code_of(&prepared, st),
        Err(_) => 126,
    };
    finish(s, id, code);
    let _ = wr.lock().await.shutdown().await;
}

/// Relays our pty's master, raw, until the terminal closes (the runtime exited) or the
/// client goes; the exit code is recorded before the stream closes.
async fn with_terminal(s: &AppState, id: &str, conn: stream::Conn, mut prepared: exec::Prepared) {
    let Ok(pty) = nix::pty::openpty(None, None) else {
        return finish(s, id, 126);
    };
    let master = Arc::new(pty.master);
    let slave = pty.slave;
    let dup = || slave.as_fd().try_clone_to_owned().map(Stdio::from);
    let (Ok(i), Ok(o), Ok(e)) = (dup(), dup(), dup()) else {
        return finish(s, id, 126);
    };
    let cmd = prepared.command();
    cmd.stdin(i).stdout(o).stderr(e);
    // The runtime's own session with our pty as its terminal, so that a resize of the
    // pty reaches it as SIGWINCH.
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(_) => return finish(s, id, 126),
    };
    drop(slave);
    set_process(s, id, child.id(), Some(master.clone()));
    let waiter = tokio::task::spawn_blocking(move || {
        let st = child.wait();
        code_of(&prepared, st)
    });
    let wr = relay_master(conn, master).await;
    let code = waiter.await.unwrap_or(126);
    finish(s, id, code);
    if let Some(mut wr) = wr {
        let _ = wr.shutdown().await;
    }
}

/// Relays a pty master and the client, raw, until the terminal closes; the client's
/// write half, still open.
async fn relay_master(
    conn: stream::Conn,
    master: Arc<OwnedFd>,
) -> Option<tokio::io::WriteHalf<stream::Conn>> {
    let fd = master.as_fd().try_clone_to_owned().ok()?;
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap_or(0);
    let nonblock = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nonblock)).ok()?;
    // SAFETY: the OwnedFd is a valid descriptor the AsyncFd owns and nothing replaces.
    let afd = unsafe { tokio::io::unix::AsyncFd::register(fd) }.ok()?;
    let (mut rd, mut wr) = tokio::io::split(conn);
    let output = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let Ok(mut guard) = afd.readable().await else {
                return;
            };
            match guard.try_io(|f| {
                nix::unistd::read(f.as_raw_fd(), &mut buf).map_err(std::io::Error::from)
            }) {
                Ok(Ok(n)) if n > 0 => {
                    if wr.write_all(&buf[..n]).await.is_err() || wr.flush().await.is_err() {
                        return;
                    }
                }
                Ok(_) => return,
                Err(_would_block) => continue,
            }
        }
    };
    let input = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = rd.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                std::future::pending::<()>().await;
            }
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let Ok(mut guard) = afd.writable().await else {
                    return;
                };
                match guard
                    .try_io(|f| nix::unistd::write(f.get_ref(), rest).map_err(std::io::Error::from))
                {
                    Ok(Ok(w)) => rest = &rest[w..],
                    Ok(Err(_)) => return,
                    Err(_would_block) => continue,
                }
            }
        }
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
    Some(wr)
}

pub async fn resize(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<super::containers::ResizeQuery>,
) -> Result<Response, ApiError> {
    if let Some(m) = with_entry(&s, &id, |e| e.master.clone())? {
        crate::tty::term::set_window_size(m.as_fd(), q.h.unwrap_or(0), q.w.unwrap_or(0))
            .map_err(OperationError::from)?;
    }
    Ok(StatusCode::OK.into_response())
}

pub async fn inspect(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    with_entry(&s, &id, |e| inspected(&id, e)).map(Json)
}

/// docker's ExecInspectResponse.
fn inspected(id: &str, e: &Entry) -> Value {
    let (entrypoint, args) = e
        .req
        .command
        .split_first()
        .map_or((String::new(), Vec::new()), |(a, b)| {
            (a.clone(), b.to_vec())
        });
    json!({
        "ID": id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": e.req.tty,
            "entrypoint": entrypoint,
            "arguments": args,
            "privileged": false,
            "user": e.req.user.clone().unwrap_or_default(),
        },
        "OpenStdin": e.stdin,
        "OpenStderr": true,
        "OpenStdout": true,
        "CanRemove": false,
        "ContainerID": e.container,
        "DetachKeys": "",
        "Pid": e.pid,
    })
}
