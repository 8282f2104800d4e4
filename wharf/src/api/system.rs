//! `/_ping`, `/version` and `/info`.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::{blocking, ApiError};
use super::{AppState, API_VERSION, MIN_API_VERSION};
use crate::operations::system;

/// The client negotiates its version from these headers (GET and HEAD).
pub async fn ping() -> Response {
    let mut r = "OK".into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    r
}

pub async fn version(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(system::version(&s.runtime, API_VERSION, MIN_API_VERSION))
}

pub async fn info(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let v = blocking(move || Ok(system::info(&s.root, &s.runtime)?)).await?;
    Ok(Json(v))
}

#[derive(serde::Deserialize)]
pub struct EventsQuery {
    since: Option<String>,
    until: Option<String>,
    filters: Option<String>,
}

/// Streams events as JSON lines until `until` or the client goes.
pub async fn events(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let bound = |v: &Option<String>| -> Result<Option<i64>, ApiError> {
        match v.as_deref().filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => Ok(Some(crate::operations::logs::parse_bound(v)?)),
        }
    };
    let req = crate::operations::events::EventsRequest {
        since: bound(&q.since)?,
        until: bound(&q.until)?,
        filters: super::containers::filters(&q.filters)?,
    };
    crate::events::Filters::parse(&req.filters).map_err(ApiError::bad_request)?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_blocking(move || {
        let _ = crate::operations::events::stream(
            &s.root,
            &req,
            &mut |v| {
                tx.send(v.clone())
                    .map_err(|_| std::io::Error::other("the client went away"))
            },
            &|| !tx.is_closed(),
        );
    });
    Ok(super::images::json_lines(rx))
}

/// `GET /system/df`: images, containers (with their writable layer's size), volumes (with
/// their users), and no build cache records (wharf's cache points at images, counted there).
pub async fn df(State(s): State<AppState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let du = blocking(move || Ok(system::disk_usage(&s.root)?)).await?;
    let containers: Vec<serde_json::Value> = du
        .containers
        .iter()
        .map(|(c, size)| {
            let mut v = super::containers::summary(c);
            v["SizeRw"] = serde_json::json!(size);
            v
        })
        .collect();
    let volumes: Vec<serde_json::Value> = du
        .volumes
        .iter()
        .map(|(vol, size, users)| {
            let mut v = vol.inspect();
            v["UsageData"] = serde_json::json!({"Size": size, "RefCount": users});
            v
        })
        .collect();
    let rows: Vec<_> = du.images.iter().map(|i| i.row.clone()).collect();
    let mut images = super::images::summaries(&rows);
    for (summary, usage) in images.iter_mut().zip(&du.images) {
        summary.shared_size = usage.shared_size as i64;
        summary.containers = usage.containers as i64;
    }
    let cache: Vec<serde_json::Value> = du
        .build_cache
        .iter()
        .map(|b| {
            serde_json::json!({
                "ID": b.id.to_string(), "Parent": "", "Type": "regular",
                "Description": "an image the builder's cache keeps", "InUse": b.in_use,
                "Shared": false, "Size": b.size, "CreatedAt": b.created,
                "LastUsedAt": b.last_used, "UsageCount": b.usage_count,
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({
        // The docker client shows this as the images' size; the cache's bytes are its own.
        "LayersSize": du.images_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": cache,
    })))
}
