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
