//! The Docker Engine API on demand (`wharf system service`): a second front door beside
//! the CLI for the docker CLI, docker-compose and the SDKs. Handlers decode the request,
//! call the operations layer and encode docker's JSON; they hold no logic of their own.
//! tokio lives here and nowhere else in wharf; every operation runs on a blocking thread.
//! Containers never depend on the service: each has its own monitor, so ending the
//! service (even with SIGKILL) stops none of them.

mod build;
mod containers;
pub mod create;
mod error;
mod exec;
mod images;
mod networks;
mod stream;
mod system;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

pub use error::ApiError;

/// The newest API version served (docker 20.10's) and the oldest accepted.
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.24";

/// Where the service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Listen {
    /// `unix:///path` or `tcp://ADDRESS:PORT`.
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        if let Some(p) = s.strip_prefix("unix://") {
            return Ok(Self::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            return a
                .parse()
                .map(Self::Tcp)
                .map_err(|_| ServiceError::Address(s.to_string()));
        }
        Err(ServiceError::Address(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}: not an address to serve on: use unix:///PATH or tcp://ADDRESS:PORT")]
    Address(String),
    #[error("{0} is served already by a running service")]
    InUse(PathBuf),
    #[error("listening on {what}: {source}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
    #[error("starting the service: {0}")]
    Runtime(std::io::Error),
}

pub struct ServiceOptions {
    pub root: PathBuf,
    /// The runtime containers get unless a request names one.
    pub runtime: String,
    pub listen: Listen,
    /// Exit after this long without a connection (None: never).
    pub idle: Option<Duration>,
}

/// What the handlers share.
pub struct Shared {
    pub root: PathBuf,
    pub runtime: String,
    /// Exec instances by id: created by one request, started and inspected by others.
    pub execs: Mutex<HashMap<String, exec::Entry>>,
    /// The monitor's end of an attach made before the container started: handed to the
    /// monitor at start, so nothing the container writes first is lost.
    pub pending_attach: Mutex<HashMap<String, OwnedFd>>,
}

pub type AppState = Arc<Shared>;

/// docker's boolean query values ("1", "true", "True"...); absent is false.
pub fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// A request body as a blocking reader for an operation run by `blocking`: read as it
/// arrives, so an upload of any size never sits whole in the service. Call it from the
/// handler, inside the runtime.
pub fn body_reader(body: Body) -> impl std::io::Read + Send + 'static {
    use futures_util::TryStreamExt as _;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream))
}

/// Serves until idle for `idle`, or forever.
pub fn serve(o: ServiceOptions) -> Result<(), ServiceError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServiceError::Runtime)?;
    rt.block_on(run(o))
}

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

fn bind(listen: &Listen) -> Result<Listener, ServiceError> {
    let err = |what: String| move |source| ServiceError::Listen { what, source };
    match listen {
        Listen::Unix(path) => {
            if path.exists() {
                // A socket nobody answers on is a dead service's: take its place.
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(ServiceError::InUse(path.clone()));
                }
                std::fs::remove_file(path).map_err(err(path.display().to_string()))?;
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(err(dir.display().to_string()))?;
            }
            let l =
                tokio::net::UnixListener::bind(path).map_err(err(path.display().to_string()))?;
            restrict(path).map_err(err(path.display().to_string()))?;
            Ok(Listener::Unix(l))
        }
        Listen::Tcp(addr) => {
            let l = std::net::TcpListener::bind(addr).map_err(err(addr.to_string()))?;
            l.set_nonblocking(true).map_err(err(addr.to_string()))?;
            let l = tokio::net::TcpListener::from_std(l).map_err(err(addr.to_string()))?;
            Ok(Listener::Tcp(l))
        }
    }
}

/// Mode 0660, owned by root and the `wharf` group when there is one, as dockerd's socket
/// is by the `docker` group.
fn restrict(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Ok(Some(g)) = nix::unistd::Group::from_name("wharf") {
        nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), Some(g.gid))?;
    }
    Ok(())
}

async fn run(o: ServiceOptions) -> Result<(), ServiceError> {
    let listener = bind(&o.listen)?;
    let state: AppState = Arc::new(Shared {
        root: o.root.clone(),
        runtime: o.runtime.clone(),
        execs: Mutex::new(HashMap::new()),
        pending_attach: Mutex::new(HashMap::new()),
    });
    let router = routes().with_state(state);
    let active = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(Instant::now()));
    let tick = o.idle.map_or(Duration::from_secs(3600), |i| {
        i.min(Duration::from_secs(1))
            .max(Duration::from_millis(100))
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServiceError::Runtime)?;
    loop {
        let accepted = tokio::select! {
            a = accept(&listener) => a,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(tick) => {
                let idle_for = last.lock().map(|l| l.elapsed()).unwrap_or_default();
                if o.idle.is_some_and(|i| active.load(Ordering::SeqCst) == 0 && idle_for >= i) {
                    break;
                }
                continue;
            }
        };
        let Ok(io) = accepted else { continue };
        active.fetch_add(1, Ordering::SeqCst);
        let (router, active, last) = (router.clone(), active.clone(), last.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move { Ok::<_, std::convert::Infallible>(dispatch(router, req).await) }
            });
            // A client that never finishes its headers is dropped, not waited for.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(io, svc)
                .with_upgrades()
                .await;
            if let Ok(mut l) = last.lock() {
                *l = Instant::now();
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    if let Listen::Unix(path) = &o.listen {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

type Io = TokioIo<Box<dyn Stream>>;

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn accept(l: &Listener) -> std::io::Result<Io> {
    let s: Box<dyn Stream> = match l {
        Listener::Unix(l) => Box::new(l.accept().await?.0),
        Listener::Tcp(l) => Box::new(l.accept().await?.0),
    };
    Ok(TokioIo::new(s))
}

/// Strips and checks the `/v1.NN` prefix, routes, and adds docker's headers.
async fn dispatch(router: Router, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let mut req = req.map(Body::new);
    let mut resp = match strip_version(&mut req) {
        Ok(()) => match router.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        Err(e) => axum::response::IntoResponse::into_response(e),
    };
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("wharf/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn strip_version(req: &mut Request<Body>) -> Result<(), ApiError> {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(());
    };
    let (version, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(v) = parse_version(version) else {
        return Ok(());
    };
    let (max, min) = (
        parse_version(API_VERSION).expect("a version"),
        parse_version(MIN_API_VERSION).expect("a version"),
    );
    if v > max {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < min {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    let pq = match req.uri().query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|_| ApiError::bad_request(format!("invalid path {pq:?}")))?,
    );
    *req.uri_mut() = axum::http::Uri::from_parts(parts)
        .map_err(|_| ApiError::bad_request(format!("invalid path {pq:?}")))?;
    Ok(())
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/system/df", get(system::df))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/changes", get(containers::changes))
        .route("/containers/{id}/export", get(containers::export))
        .route("/containers/{id}/stats", get(containers::stats))
        .route(
            "/containers/{id}/archive",
            get(containers::archive_get)
                .head(containers::archive_head)
                .put(containers::archive_put),
        )
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/volumes", get(networks::volumes))
        .route("/volumes/create", post(networks::volume_create))
        .route("/volumes/prune", post(networks::volume_prune))
        .route(
            "/volumes/{name}",
            get(networks::volume_inspect).delete(networks::volume_remove),
        )
        .route("/build", post(build::build))
        .route("/images/json", get(images::list))
        .route("/images/get", get(images::save))
        .route("/images/search", get(images::search))
        .route("/images/load", post(images::load))
        .route("/images/prune", post(images::prune))
        .route("/auth", post(images::auth))
        .route("/images/create", post(images::pull))
        .route(
            "/images/{*name}",
            get(images::get).delete(images::remove).post(images::post),
        )
        .fallback(|| async { ApiError::not_found("page not found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        })
}
