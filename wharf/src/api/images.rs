//! `/images/...`: list, pull (`/images/create`, docker's JSON progress lines), inspect,
//! history, tag, push, delete.

use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use bollard_stubs::models as m;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{blocking, ApiError};
use super::AppState;
use crate::image::registry::{Event, Progress};
use crate::operations::image as op;
use crate::operations::OperationError;

#[derive(Deserialize)]
pub struct ListQuery {
    all: Option<String>,
    filters: Option<String>,
}

pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<m::ImageSummary>>, ApiError> {
    let filters = super::containers::filters(&q.filters)?;
    let all = super::truthy(q.all.as_deref());
    let images = blocking(move || Ok(op::list(&s.root, &filters, None, all)?)).await?;
    Ok(Json(summaries(&images)))
}

/// docker's ImageSummary of each image.
pub fn summaries(images: &[crate::store::ImageRow]) -> Vec<m::ImageSummary> {
    images
        .iter()
        .map(|i| {
            let created = i
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map_or(0, |t| t.timestamp());
            let tags: Vec<String> = i.tags.iter().map(|t| familiar(t)).collect();
            let digests: Vec<String> = i.repo_digests.iter().map(|t| familiar(t)).collect();
            m::ImageSummary {
                id: i.id.to_string(),
                parent_id: String::new(),
                repo_tags: tags,
                repo_digests: digests,
                created,
                size: i.size as i64,
                virtual_size: i.size as i64,
                // docker's "not computed".
                shared_size: -1,
                labels: Default::default(),
                containers: -1,
            }
        })
        .collect()
}

fn familiar(name: &str) -> String {
    crate::image::reference::ImageRef::parse(name)
        .map(|r| {
            let f = r.familiar();
            match &r.digest {
                Some(d) if !f.contains('@') => format!("{}@{d}", f.trim_end_matches(":latest")),
                _ => f,
            }
        })
        .unwrap_or_else(|_| name.to_string())
}

/// Credentials from `X-Registry-Auth` (base64url JSON with username and password).
fn registry_auth(h: &HeaderMap) -> Option<(String, String)> {
    let raw = h.get("X-Registry-Auth")?.to_str().ok()?;
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw.trim()))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let user = v["username"].as_str().filter(|u| !u.is_empty())?;
    Some((
        user.to_string(),
        v["password"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Registry events as docker's JSON progress lines.
struct Lines {
    tx: tokio::sync::mpsc::UnboundedSender<Value>,
    sizes: Mutex<std::collections::HashMap<String, u64>>,
    verbs: [&'static str; 3],
}

impl Progress for Lines {
    fn event(&self, e: Event) {
        let short = |d: &crate::image::digest::Digest| d.short().to_string();
        let [doing, done, exists] = self.verbs;
        let line = match e {
            Event::Exists(d) => json!({"status": exists, "progressDetail": {}, "id": short(&d)}),
            Event::Start { digest, size } => {
                if let Ok(mut s) = self.sizes.lock() {
                    s.insert(short(&digest), size);
                }
                json!({"status": "Waiting", "progressDetail": {}, "id": short(&digest)})
            }
            Event::Progress { digest, done } => {
                let total = self
                    .sizes
                    .lock()
                    .ok()
                    .and_then(|s| s.get(&short(&digest)).copied())
                    .unwrap_or(0);
                json!({"status": doing, "progressDetail": {"current": done, "total": total}, "id": short(&digest)})
            }
            Event::Done(d) => json!({"status": done, "progressDetail": {}, "id": short(&d)}),
        };
        let _ = self.tx.send(line);
    }
}

/// A body of JSON lines, one per value sent, as docker streams progress.
pub fn json_lines(rx: tokio::sync::mpsc::UnboundedReceiver<Value>) -> Response {
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|v| (Ok::<_, std::io::Error>(Bytes::from(format!("{v}\r\n"))), rx))
    });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    r
}

fn error_line(e: &OperationError) -> Value {
    json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()})
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullQuery {
    from_image: Option<String>,
    from_src: Option<String>,
    tag: Option<String>,
    platform: Option<String>,
}

pub async fn pull(
    State(s): State<AppState>,
    Query(q): Query<PullQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if q.from_src.is_some() {
        return Err(ApiError::bad_request(
            "importing through /images/create (fromSrc) is not supported by wharf: use `wharf import`",
        ));
    }
    let image = q
        .from_image
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::bad_request("fromImage is required"))?;
    let reference = match q.tag.as_deref().filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) => format!("{image}:{t}"),
        None => image,
    };
    let r = crate::image::reference::ImageRef::parse(&reference)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let req = op::PullRequest {
        reference,
        platform: q.platform.filter(|p| !p.is_empty()),
        insecure: false,
        credentials: registry_auth(&headers),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ =
        tx.send(json!({"status": format!("Pulling from {}", r.path), "id": op::tag_or_digest(&r)}));
    let root = s.root.clone();
    tokio::task::spawn_blocking(move || {
        let lines = Lines {
            tx: tx.clone(),
            sizes: Mutex::new(Default::default()),
            verbs: ["Downloading", "Pull complete", "Already exists"],
        };
        match op::pull(&root, &req, &lines) {
            Ok(p) => {
                let _ = tx.send(json!({"status": format!("Digest: {}", p.digest)}));
                let status = if p.up_to_date {
                    format!("Status: Image is up to date for {}", p.reference.familiar())
                } else {
                    format!(
                        "Status: Downloaded newer image for {}",
                        p.reference.familiar()
                    )
                };
                let _ = tx.send(json!({"status": status}));
            }
            Err(e) => {
                let _ = tx.send(error_line(&e));
            }
        }
    });
    Ok(json_lines(rx))
}

/// GET `/images/{name}/json` and `/images/{name}/history` (names contain slashes).
pub async fn get(
    State(s): State<AppState>,
    UrlPath(path): UrlPath<String>,
) -> Result<Response, ApiError> {
    if let Some(name) = path.strip_suffix("/json") {
        let name = name.to_string();
        let v = blocking(move || Ok(op::inspect(&s.root, &name)?)).await?;
        let v = serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok(Json(v).into_response());
    }
    if let Some(name) = path.strip_suffix("/get") {
        return save_names(s, vec![name.to_string()]).await;
    }
    if let Some(name) = path.strip_suffix("/history") {
        let name = name.to_string();
        let rows = blocking(move || {
            let (img, rows) = op::history(&s.root, &name, true, false)?;
            // JSON rather than bollard's HistoryResponseItem, whose Tags cannot be docker's
            // null for the entries below the image's own.
            let tags: Vec<String> = img.tags.iter().map(|t| familiar(t)).collect();
            Ok(rows
                .iter()
                .enumerate()
                .map(|(n, r)| {
                    let created = r["CreatedAt"]
                        .as_str()
                        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                        .map_or(0, |t| t.timestamp());
                    json!({
                        "Id": r["ID"],
                        "Created": created,
                        "CreatedBy": r["CreatedBy"],
                        "Tags": if n == 0 { json!(tags) } else { Value::Null },
                        "Size": r["Size"].as_str().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
                        "Comment": r["Comment"],
                    })
                })
                .collect::<Vec<_>>())
        })
        .await?;
        return Ok(Json(Value::Array(rows)).into_response());
    }
    Err(ApiError::not_found("page not found"))
}

#[derive(Deserialize)]
pub struct PostQuery {
    repo: Option<String>,
    tag: Option<String>,
}

/// POST `/images/{name}/tag` and `/images/{name}/push`.
pub async fn post(
    State(s): State<AppState>,
    UrlPath(path): UrlPath<String>,
    Query(q): Query<PostQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(name) = path.strip_suffix("/tag") {
        let repo = q
            .repo
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ApiError::bad_request("repo is required"))?;
        let target = match q.tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo,
        };
        let name = name.to_string();
        blocking(move || Ok(op::tag(&s.root, &name, &target)?)).await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = path.strip_suffix("/push") {
        let reference = match q.tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{name}:{t}"),
            None => name.to_string(),
        };
        let r = crate::image::reference::ImageRef::parse_tagged(&reference)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let req = op::PushRequest {
            reference,
            insecure: false,
            credentials: registry_auth(&headers),
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let _ = tx
            .send(json!({"status": format!("The push refers to repository [{}]", r.repository())}));
        let root = s.root.clone();
        tokio::task::spawn_blocking(move || {
            let lines = Lines {
                tx: tx.clone(),
                sizes: Mutex::new(Default::default()),
                verbs: ["Pushing", "Pushed", "Layer already exists"],
            };
            match op::push(&root, &req, &lines) {
                Ok((r, p)) => {
                    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
                    let _ = tx.send(
                        json!({"status": format!("{tag}: digest: {} size: {}", p.digest, p.size)}),
                    );
                    let _ = tx.send(json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": p.digest.to_string(), "Size": p.size}}));
                }
                Err(e) => {
                    let _ = tx.send(error_line(&e));
                }
            }
        });
        return Ok(json_lines(rx));
    }
    Err(ApiError::not_found("page not found"))
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    force: Option<String>,
}

pub async fn remove(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Json<Vec<m::ImageDeleteResponseItem>>, ApiError> {
    let force = super::truthy(q.force.as_deref());
    let r = blocking(move || Ok(op::remove(&s.root, &name, force)?)).await?;
    Ok(Json(deleted_items(&r)))
}

/// `GET /images/get?names=...` and `GET /images/{name}/get`: a docker archive.
pub async fn save(
    State(s): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let names: Vec<String> = pairs
        .into_iter()
        .filter(|(k, v)| k == "names" && !v.is_empty())
        .map(|(_, v)| v)
        .collect();
    save_names(s, names).await
}

async fn save_names(s: AppState, names: Vec<String>) -> Result<Response, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("names is required"));
    }
    super::containers::tar_body(move |w| {
        op::save(
            &s.root,
            &names,
            crate::image::archive::Format::DockerArchive,
            w,
        )
    })
    .await
}

/// `POST /images/load`: a docker or OCI archive in the body, read as it arrives, so an
/// image of any size never sits whole in the service's memory. (`quiet` only silences
/// progress, which wharf's load does not report; the loaded names are always said.)
pub async fn load(State(s): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let input = super::body_reader(body);
    let loaded = blocking(move || Ok(op::load(&s.root, input)?)).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for l in loaded {
        if l.names.is_empty() {
            let _ = tx.send(json!({"stream": format!("Loaded image ID: {}\n", l.image.id)}));
        }
        for n in l.names {
            let _ = tx.send(json!({"stream": format!("Loaded image: {}\n", n.familiar())}));
        }
    }
    drop(tx);
    Ok(json_lines(rx))
}

#[derive(Deserialize)]
pub struct PruneQuery {
    filters: Option<String>,
}

/// docker's list of what an image removal untagged and deleted.
fn deleted_items(r: &crate::image::remove::Report) -> Vec<m::ImageDeleteResponseItem> {
    let untagged = r.untagged.iter().map(|u| m::ImageDeleteResponseItem {
        untagged: Some(u.clone()),
        deleted: None,
    });
    let deleted = r.deleted.iter().map(|d| m::ImageDeleteResponseItem {
        untagged: None,
        deleted: Some(d.to_string()),
    });
    untagged.chain(deleted).collect()
}

/// `POST /images/prune`: dangling images, or every unused one with `dangling=false`.
pub async fn prune(
    State(s): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> Result<Json<m::ImagePruneResponse>, ApiError> {
    let filters = super::containers::filters(&q.filters)?;
    let mut all = false;
    for f in &filters {
        match f.as_str() {
            "dangling=false" | "dangling=0" => all = true,
            "dangling=true" | "dangling=1" => {}
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    let r = blocking(move || Ok(op::prune(&s.root, all)?)).await?;
    Ok(Json(m::ImagePruneResponse {
        images_deleted: Some(deleted_items(&r)),
        space_reclaimed: Some(r.reclaimed as i64),
    }))
}

#[derive(Deserialize)]
pub struct AuthBody {
    username: Option<String>,
    password: Option<String>,
    serveraddress: Option<String>,
}

/// `POST /auth`: checks the credentials against the registry (the client keeps them).
pub async fn auth(body: Bytes) -> Result<Json<Value>, ApiError> {
    let a: AuthBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth config: {e}")))?;
    let server = a
        .serveraddress
        .as_deref()
        .unwrap_or(crate::image::reference::DEFAULT_DOMAIN)
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let user = a.username.unwrap_or_default();
    let password = a.password.unwrap_or_default();
    blocking(move || {
        op::login(&server, &user, &password, false, false)
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))
    })
    .await?;
    Ok(Json(
        json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    term: String,
    limit: Option<usize>,
    filters: Option<String>,
}

/// `GET /images/search`: the registry's v1 search, or its catalog filtered by the term.
pub async fn search(Query(q): Query<SearchQuery>) -> Result<Json<Vec<Value>>, ApiError> {
    let limit = q.limit.filter(|l| *l > 0).unwrap_or(25);
    let filters = op::SearchFilters::parse(&super::containers::filters(&q.filters)?)?;
    let found = blocking(move || Ok(op::search(&q.term, limit, &filters, false)?)).await?;
    Ok(Json(
        found
            .iter()
            .map(|f| {
                json!({"name": f.name, "description": f.description, "star_count": f.star_count,
                       "is_official": f.is_official, "is_automated": f.is_automated})
            })
            .collect(),
    ))
}
