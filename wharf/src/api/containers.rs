//! `/containers/...`: create, list, inspect, the lifecycle, wait, logs, attach, resize,
//! prune. Each handler decodes, calls `operations::container` and encodes.

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bollard_stubs::models as m;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

use super::error::{blocking, ApiError};
use super::{create, stream, truthy, AppState};
use crate::container::{self, Container};
use crate::operations::container as op;
use crate::operations::logs as oplogs;
use crate::operations::OperationError;

/// docker's `filters` query: `{"key": ["v1", "v2"]}` (or `{"key": {"v1": true}}`) as
/// `key=value` entries.
pub fn filters(raw: &Option<String>) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filters {raw:?}: {e}")))?;
    let mut out = Vec::new();
    for (k, vals) in v.as_object().into_iter().flatten() {
        match vals {
            Value::Array(a) => out.extend(
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|v| format!("{k}={v}")),
            ),
            Value::Object(m) => out.extend(m.keys().map(|v| format!("{k}={v}"))),
            _ => return Err(ApiError::bad_request(format!("invalid filter {k:?}"))),
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
pub struct CreateQuery {
    name: Option<String>,
    platform: Option<String>,
}

pub async fn create(
    State(s): State<AppState>,
    Query(q): Query<CreateQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(p) = q
        .platform
        .as_deref()
        .filter(|p| !p.is_empty() && *p != "linux/amd64")
    {
        return Err(ApiError::bad_request(format!(
            "platform {p:?} is not supported: wharf runs linux/amd64 images"
        )));
    }
    let opts = create::options(&body, q.name.filter(|n| !n.is_empty()), &s.runtime)?;
    let c = blocking(move || Ok(op::create(&s.root, opts, op::Missing::Fail)?.0)).await?;
    Ok((
        StatusCode::CREATED,
        Json(m::ContainerCreateResponse {
            id: c.id,
            warnings: Vec::new(),
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct ListQuery {
    all: Option<String>,
    limit: Option<i64>,
    filters: Option<String>,
}

/// docker's ContainerSummary. (JSON rather than bollard's ContainerSummaryInner, which
/// types Mounts as create-time mounts where dockerd sends mount points.)
pub fn summary(c: &Container) -> Value {
    let labels: HashMap<&String, &String> = c.spec.config.labels.iter().collect();
    let ports: Vec<Value> = c
        .state
        .ports
        .iter()
        .flat_map(|(key, bindings)| {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let private: u16 = port.parse().unwrap_or(0);
            bindings.iter().map(move |b| {
                json!({"IP": if b.host_ip.is_empty() { "0.0.0.0" } else { &b.host_ip },
                       "PrivatePort": private, "PublicPort": b.host_port.parse::<u16>().unwrap_or(0),
                       "Type": proto})
            })
        })
        .collect();
    let mounts: Vec<Value> = c
        .spec
        .mounts
        .iter()
        .map(|m| {
            json!({"Type": m.kind, "Name": m.name, "Source": m.source, "Destination": m.destination,
                   "Mode": m.mode, "RW": m.rw, "Propagation": m.propagation})
        })
        .collect();
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.spec.config.image,
        "ImageID": c.image_id,
        "Command": c.command_text(),
        "Created": chrono::DateTime::parse_from_rfc3339(&c.created).map(|t| t.timestamp()).unwrap_or(0),
        "Ports": ports,
        "Labels": labels,
        "State": c.effective_status().as_str(),
        "Status": c.status_text(),
        "HostConfig": {"NetworkMode": c.spec.host.network_mode},
        "NetworkSettings": {"Networks": {}},
        "Mounts": mounts,
    })
}

pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let o = op::ListOptions {
        all: truthy(q.all.as_deref()),
        last: q.limit.filter(|l| *l > 0).unwrap_or(0) as usize,
        filters: filters(&q.filters)?,
    };
    let list = blocking(move || Ok(op::list(&s.root, &o)?)).await?;
    Ok(Json(list.iter().map(summary).collect()))
}

pub async fn inspect(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        blocking(move || Ok(op::inspect(&s.root, &id)?)).await?,
    ))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn not_modified() -> Response {
    StatusCode::NOT_MODIFIED.into_response()
}

pub async fn start(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let c = op::find(&s.root, &id)?;
        if c.is_running() {
            return Ok(not_modified());
        }
        let client = s
            .pending_attach
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&c.id));
        op::start(&s.root, &c, false, client)?;
        Ok(no_content())
    })
    .await
}

#[derive(Deserialize)]
pub struct StopQuery {
    t: Option<i64>,
}

pub async fn stop(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        if !op::find(&s.root, &id)?.is_running() {
            return Ok(not_modified());
        }
        op::stop(&s.root, &id, q.t)?;
        Ok(no_content())
    })
    .await
}

pub async fn restart(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        op::restart(&s.root, &id, q.t)?;
        Ok(no_content())
    })
    .await
}

#[derive(Deserialize)]
pub struct KillQuery {
    signal: Option<String>,
}

pub async fn kill(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<KillQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let signal = q
            .signal
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "KILL".into());
        op::kill(&s.root, &id, &signal)?;
        Ok(no_content())
    })
    .await
}

pub async fn pause(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        op::pause(&s.root, &id)?;
        Ok(no_content())
    })
    .await
}

pub async fn unpause(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        op::unpause(&s.root, &id)?;
        Ok(no_content())
    })
    .await
}

#[derive(Deserialize)]
pub struct RenameQuery {
    name: String,
}

pub async fn rename(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<RenameQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        op::rename(&s.root, &id, &q.name)?;
        Ok(no_content())
    })
    .await
}

/// `POST /containers/{id}/update`'s body: docker's Resources and RestartPolicy, zero
/// meaning "unchanged".
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateBody {
    cpu_shares: i64,
    cpu_period: i64,
    cpu_quota: i64,
    nano_cpus: i64,
    cpuset_cpus: String,
    cpuset_mems: String,
    memory: i64,
    memory_reservation: i64,
    memory_swap: i64,
    pids_limit: Option<i64>,
    blkio_weight: u16,
    restart_policy: Option<container::RestartPolicy>,
}

/// The body fields applied; any other must be unset.
const UPDATE_FIELDS: &[&str] = &[
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "NanoCpus",
    "CpusetCpus",
    "CpusetMems",
    "Memory",
    "MemoryReservation",
    "MemorySwap",
    "PidsLimit",
    "BlkioWeight",
    "RestartPolicy",
];

fn update_request(body: &[u8]) -> Result<container::resources::Update, ApiError> {
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    create::refuse_unknown("", &raw, UPDATE_FIELDS)?;
    let b: UpdateBody = serde_json::from_value(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid update body: {e}")))?;
    let restart_policy = match b.restart_policy.filter(|p| !p.name.is_empty()) {
        Some(p) => Some(
            container::parse::restart_policy_parts(&p.name, i64::from(p.maximum_retry_count))
                .map_err(|e| ApiError::bad_request(format!("RestartPolicy: {e}")))?,
        ),
        None => None,
    };
    let asked = container::HostConfig {
        cpu_shares: b.cpu_shares,
        cpu_period: b.cpu_period,
        cpu_quota: b.cpu_quota,
        nano_cpus: b.nano_cpus,
        cpuset_cpus: b.cpuset_cpus,
        cpuset_mems: b.cpuset_mems,
        memory: b.memory,
        memory_reservation: b.memory_reservation,
        memory_swap: b.memory_swap,
        // null leaves it; 0 and -1 lift it.
        pids_limit: b.pids_limit,
        blkio_weight: b.blkio_weight,
        ..Default::default()
    };
    Ok(container::resources::Update {
        restart_policy,
        ..container::resources::Update::of(&asked)
    })
}

pub async fn update(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req = update_request(&body)?;
    blocking(move || {
        op::update(&s.root, &id, &req)?;
        Ok(Json(json!({"Warnings": []})))
    })
    .await
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    v: Option<String>,
    force: Option<String>,
}

pub async fn remove(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let c = op::remove(
            &s.root,
            &id,
            truthy(q.force.as_deref()),
            truthy(q.v.as_deref()),
        )?;
        if let Ok(mut p) = s.pending_attach.lock() {
            p.remove(&c.id);
        }
        Ok(no_content())
    })
    .await
}

/// A prune's query: its filters, which wharf does not take yet.
#[derive(Deserialize)]
pub struct PruneQuery {
    filters: Option<String>,
}

impl PruneQuery {
    /// Refuses filters rather than prune more than the client asked for.
    pub fn refuse_filters(&self) -> Result<(), ApiError> {
        let asked = filters(&self.filters)?;
        if asked.is_empty() {
            return Ok(());
        }
        Err(ApiError::bad_request(format!(
            "prune filters are not supported by wharf: {}",
            asked.join(", ")
        )))
    }
}

pub async fn prune(
    State(s): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> Result<Json<m::ContainerPruneResponse>, ApiError> {
    q.refuse_filters()?;
    let p = blocking(move || Ok(op::prune(&s.root)?)).await?;
    Ok(Json(m::ContainerPruneResponse {
        containers_deleted: Some(p.ids),
        space_reclaimed: Some(p.reclaimed as i64),
    }))
}

#[derive(Deserialize)]
pub struct WaitQuery {
    condition: Option<String>,
}

/// Sends the headers at once and the status when the condition is met, as dockerd does:
/// clients ask before they start the container.
pub async fn wait(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Response, ApiError> {
    let condition = q.condition.unwrap_or_else(|| "not-running".into());
    let wanted = match condition.as_str() {
        "" | "not-running" => op::WaitFor::NotRunning,
        "next-exit" => op::WaitFor::NextExit,
        "removed" => op::WaitFor::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: \"{other}\""
            )))
        }
    };
    let root = s.root.clone();
    let c = blocking(move || Ok(op::find(&root, &id)?)).await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<Bytes>();
    let root = s.root.clone();
    tokio::task::spawn_blocking(move || {
        let body = match op::wait_for(&root, &c, wanted, &|| !tx.is_closed()) {
            Ok(Some(code)) => m::ContainerWaitResponse {
                status_code: code.into(),
                error: None,
            },
            Ok(None) => return,
            Err(e) => m::ContainerWaitResponse {
                status_code: -1,
                error: Some(m::ContainerWaitResponseError {
                    message: Some(e.to_string()),
                }),
            },
        };
        let body = serde_json::to_string(&body).unwrap_or_default();
        let _ = tx.send(Bytes::from(format!("{body}\n")));
    });
    let body = futures_util::stream::once(async move {
        rx.await
            .map_err(|_| std::io::Error::other("the wait was abandoned"))
    });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

#[derive(Deserialize)]
pub struct LogsQuery {
    follow: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    since: Option<String>,
    until: Option<String>,
    timestamps: Option<String>,
    tail: Option<String>,
}

/// A Unix-seconds bound ("1700000000" or "1700000000.123") as nanoseconds; 0 is no bound.
fn unix_bound(v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v.as_deref().filter(|v| !v.is_empty() && *v != "0") {
        None => Ok(None),
        Some(v) => Ok(Some(oplogs::parse_bound(v)?)),
    }
}

pub async fn logs(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let (want_out, want_err) = (truthy(q.stdout.as_deref()), truthy(q.stderr.as_deref()));
    if !want_out && !want_err {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let o = oplogs::LogOptions {
        follow: truthy(q.follow.as_deref()),
        tail: oplogs::parse_tail(q.tail.as_deref().unwrap_or("all"))?,
        since: unix_bound(&q.since)?,
        until: unix_bound(&q.until)?,
    };
    let timestamps = truthy(q.timestamps.as_deref());
    let root = s.root.clone();
    let c = blocking(move || Ok(op::find(&root, &id)?)).await?;
    let tty = c.spec.config.tty;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let root = s.root.clone();
    tokio::task::spawn_blocking(move || {
        let _ = oplogs::read(&root, &c.id, &o, &mut |entries| {
            if tx.is_closed() {
                return Err(std::io::Error::other("the client went away"));
            }
            for e in entries {
                let err = e.stream == "stderr";
                if (err && !want_err) || (!err && !want_out) {
                    continue;
                }
                let mut line = Vec::new();
                if timestamps {
                    line.extend_from_slice(e.time.as_bytes());
                    line.push(b' ');
                }
                line.extend_from_slice(e.log.as_bytes());
                let chunk = if tty {
                    line
                } else {
                    stream::frame(if err { 2 } else { 1 }, &line)
                };
                tx.blocking_send(Bytes::from(chunk))
                    .map_err(|_| std::io::Error::other("the client went away"))?;
            }
            Ok(())
        });
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Ok(Response::new(Body::from_stream(body)))
}

#[derive(Deserialize)]
pub struct AttachQuery {
    stream: Option<String>,
    stdin: Option<String>,
    logs: Option<String>,
    #[serde(rename = "detachKeys")]
    detach_keys: Option<String>,
}

/// Hijacks the connection and relays the container's stdio. Before the container starts
/// the monitor's end waits in `pending_attach` for the start to hand it over.
pub async fn attach(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<AttachQuery>,
    mut req: Request,
) -> Result<Response, ApiError> {
    if truthy(q.logs.as_deref()) && !truthy(q.stream.as_deref()) {
        return Err(ApiError::bad_request(
            "attach with logs and without stream is not supported by wharf: use /logs",
        ));
    }
    let keys = crate::tty::detach::parse(
        q.detach_keys
            .as_deref()
            .filter(|k| !k.is_empty())
            .unwrap_or(crate::tty::detach::DEFAULT),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let root = s.root.clone();
    let c = blocking(move || Ok(op::find(&root, &id)?)).await?;
    let sock = if c.is_running() {
        crate::attach::connect_to(&container::dir(&s.root, &c.id)).map_err(OperationError::from)?
    } else {
        let (mine, theirs) = crate::attach::pair().map_err(OperationError::from)?;
        if let Ok(mut p) = s.pending_attach.lock() {
            p.insert(c.id.clone(), theirs);
        }
        mine
    };
    let tty = c.spec.config.tty;
    let stdin = truthy(q.stdin.as_deref());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(up) = on_upgrade.await {
            stream::monitor(hyper_util::rt::TokioIo::new(up), sock, tty, stdin, keys).await;
        }
    });
    Ok(stream::upgraded(tty))
}

/// A window size, as resize requests give it.
#[derive(Deserialize)]
pub struct ResizeQuery {
    pub h: Option<u16>,
    pub w: Option<u16>,
}

pub async fn resize(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<ResizeQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let c = op::find(&s.root, &id)?;
        if !c.is_running() {
            return Err(
                OperationError::Conflict(format!("Container {} is not running", c.id)).into(),
            );
        }
        let sock = crate::attach::connect_to(&container::dir(&s.root, &c.id))
            .map_err(OperationError::from)?;
        crate::attach::Remote::Monitor(sock)
            .resize(q.h.unwrap_or(0), q.w.unwrap_or(0))
            .map_err(OperationError::from)?;
        Ok(StatusCode::OK.into_response())
    })
    .await
}

#[derive(Deserialize)]
pub struct TopQuery {
    ps_args: Option<String>,
}

pub async fn top(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<TopQuery>,
) -> Result<Json<m::ContainerTopResponse>, ApiError> {
    let opts: Vec<String> = q
        .ps_args
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let table = blocking(move || Ok(op::top(&s.root, &id, &opts)?)).await?;
    let (titles, processes) = op::split_top(&table);
    Ok(Json(m::ContainerTopResponse {
        titles: Some(titles),
        processes: Some(processes),
    }))
}

pub async fn changes(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let list = blocking(move || Ok(op::changes(&s.root, &id)?)).await?;
    let kind = |k: char| match k {
        'C' => 0,
        'A' => 1,
        _ => 2,
    };
    let v: Vec<m::ContainerChangeResponseItem> = list
        .iter()
        .map(|c| m::ContainerChangeResponseItem {
            path: c.path.clone(),
            kind: kind(c.kind),
        })
        .collect();
    // docker's nil slice when nothing changed.
    Ok(Json(if v.is_empty() { Value::Null } else { json!(v) }))
}

/// A `Write` into a streamed response body, for operations that write tars.
pub struct BodyWriter(tokio::sync::mpsc::Sender<Bytes>);

impl std::io::Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::other("the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams what `write` writes as an `application/x-tar` body; an error before the first
/// byte is the response's status.
pub async fn tar_body(
    write: impl FnOnce(&mut BodyWriter) -> Result<(), OperationError> + Send + 'static,
) -> Result<Response, ApiError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let (err_tx, err_rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let mut w = BodyWriter(tx);
        let _ = err_tx.send(write(&mut w));
    });
    let first = tokio::select! {
        b = rx.recv() => b,
        r = err_rx => {
            r.map_err(|_| ApiError::internal("the archive was abandoned"))??;
            rx.recv().await
        }
    };
    let head = futures_util::stream::iter(first.map(Ok::<_, std::io::Error>));
    let rest =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) },
        );
    let mut r = Response::new(Body::from_stream(futures_util::StreamExt::chain(
        head, rest,
    )));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

pub async fn export(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    tar_body(move |w| op::export(&s.root, &id, w)).await
}

#[derive(Deserialize)]
pub struct ArchiveQuery {
    path: String,
}

fn stat_header(st: &crate::container::cp::PathStat) -> axum::http::HeaderValue {
    use base64::Engine as _;
    let json = serde_json::to_string(st).unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    axum::http::HeaderValue::from_str(&b64).unwrap_or(axum::http::HeaderValue::from_static(""))
}

pub async fn archive_head(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<ArchiveQuery>,
) -> Result<Response, ApiError> {
    let st = blocking(move || Ok(op::archive_stat(&s.root, &id, &q.path)?)).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&st));
    Ok(r)
}

pub async fn archive_get(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<ArchiveQuery>,
) -> Result<Response, ApiError> {
    let (root, id2, path) = (s.root.clone(), id.clone(), q.path.clone());
    let st = blocking(move || Ok(op::archive_stat(&root, &id2, &path)?)).await?;
    let mut r = tar_body(move |w| op::archive_get(&s.root, &id, &q.path, w)).await?;
    r.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&st));
    Ok(r)
}

pub async fn archive_put(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<ArchiveQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let mut input = super::body_reader(body);
    blocking(move || Ok(op::archive_put(&s.root, &id, &q.path, &mut input)?)).await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
pub struct StatsQuery {
    stream: Option<String>,
    #[serde(rename = "one-shot")]
    one_shot: Option<String>,
}

/// docker's stats object from two readings.
fn stats_json(c: &Container, prev: &op::Reading, cur: &op::Reading) -> Value {
    let cpu = |s: &crate::container::stats::Sample| {
        json!({
            "cpu_usage": {"total_usage": s.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": s.system_ns,
            "online_cpus": s.online_cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        })
    };
    let s = &cur.1;
    json!({
        "read": cur.0,
        "preread": prev.0,
        "id": c.id,
        "name": format!("/{}", c.name),
        "pids_stats": {"current": s.pids},
        "cpu_stats": cpu(s),
        "precpu_stats": cpu(&prev.1),
        "memory_stats": {"usage": s.mem_usage, "limit": s.mem_limit, "stats": {}},
        "networks": {"eth0": {"rx_bytes": s.net_rx, "tx_bytes": s.net_tx, "rx_packets": 0, "tx_packets": 0,
                               "rx_errors": 0, "tx_errors": 0, "rx_dropped": 0, "tx_dropped": 0}},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "Read", "value": s.blk_read},
            {"major": 0, "minor": 0, "op": "Write", "value": s.blk_write},
        ]},
        "num_procs": 0,
        "storage_stats": {},
    })
}

/// Readings a second apart, as dockerd collects them: one object (`stream=false`), or one
/// a second until the container stops or the client goes.
pub async fn stats(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    let stream = q.stream.is_none() || truthy(q.stream.as_deref());
    let one_shot = !stream && truthy(q.one_shot.as_deref());
    let root = s.root.clone();
    let c = blocking(move || Ok(op::find(&root, &id)?)).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::task::spawn_blocking(move || {
        let _ = op::stats(&s.root, &c, stream, one_shot, &mut |prev, cur| {
            tx.send(stats_json(&c, prev, cur))
                .map_err(|_| std::io::Error::other("the client went away"))
        });
    });
    Ok(super::images::json_lines(rx))
}
