//! `POST /build`: the classic builder over a tar body, reporting `{"stream": ...}` lines,
//! `{"aux": {"ID": ...}}` and, on failure, `{"errorDetail": ...}` as dockerd does.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::images::json_lines;
use super::{truthy, AppState};
use crate::build::Options;
use crate::operations::build as opbuild;
use crate::operations::OperationError;

/// The `POST /build` parameters wharf applies.
const HANDLED: [&str; 13] = [
    "t",
    "dockerfile",
    "buildargs",
    "labels",
    "target",
    "nocache",
    "q",
    "rm",
    "forcerm",
    "networkmode",
    "pull",
    "platform",
    "remote",
];

fn json_map(v: Option<&String>, what: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match v.filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(v) => {
            let m: BTreeMap<String, Option<String>> = serde_json::from_str(v)
                .map_err(|e| ApiError::bad_request(format!("invalid {what} {v:?}: {e}")))?;
            Ok(m.into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect())
        }
    }
}

pub async fn build(
    State(s): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response, ApiError> {
    let get = |k: &str| pairs.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v);
    // Parameters wharf's builder does not implement are refused by name when they ask
    // for anything (clients send their zero values for all of them).
    for (k, v) in &pairs {
        let handled = HANDLED.contains(&k.as_str()) || (k == "version" && v == "1");
        if !handled && !matches!(v.as_str(), "" | "0" | "false" | "null" | "[]" | "{}") {
            return Err(ApiError::bad_request(format!(
                "build parameter {k}={v} is not supported by wharf"
            )));
        }
    }
    let tags: Vec<String> = pairs
        .iter()
        .filter(|(n, v)| n == "t" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    if let Some(p) = get("platform").filter(|p| !p.is_empty() && *p != "linux/amd64") {
        return Err(ApiError::bad_request(format!(
            "wharf builds linux/amd64 images only, not {p}"
        )));
    }
    if get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "remote build contexts are not supported: wharf builds offline; send the context",
        ));
    }
    let build_args: Vec<String> = json_map(get("buildargs"), "buildargs")?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let labels = json_map(get("labels"), "labels")?;
    let quiet = truthy(get("q").map(String::as_str));
    let keep = get("rm").is_some_and(|v| v == "0" || v == "false")
        && !truthy(get("forcerm").map(String::as_str));
    let runtime_path =
        crate::runtime::resolve(&s.runtime).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut o = Options {
        tags,
        build_args,
        target: get("target").filter(|t| !t.is_empty()).cloned(),
        no_cache: truthy(get("nocache").map(String::as_str)),
        labels,
        network: get("networkmode")
            .filter(|n| !n.is_empty() && *n != "default")
            .cloned()
            .unwrap_or_default(),
        runtime_path,
        pull: truthy(get("pull").map(String::as_str)),
        keep_intermediates: keep,
        ..Default::default()
    };
    let dockerfile = get("dockerfile")
        .cloned()
        .unwrap_or_else(|| "Dockerfile".into());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let root = s.root.clone();
    let body = super::body_reader(body);
    tokio::task::spawn_blocking(move || {
        let stream_line = |l: &str| json!({"stream": format!("{l}\n")});
        let result = (|| -> Result<_, OperationError> {
            let unpacked = opbuild::unpack(&root, body)?;
            o.context = unpacked.path().to_path_buf();
            match &unpacked.dockerfile_text {
                Some(t) => o.dockerfile_text = Some(t.clone()),
                None => o.dockerfile = Some(opbuild::dockerfile_in(&o.context, &dockerfile)?),
            }
            let mut out = |l: &str| {
                if !quiet {
                    let _ = tx.send(stream_line(l));
                }
            };
            let id = opbuild::run(&root, &o, &mut out)?;
            drop(unpacked);
            Ok(id)
        })();
        match result {
            Ok(id) => {
                let _ = tx.send(json!({"aux": {"ID": id.to_string()}}));
                if quiet {
                    let _ = tx.send(stream_line(&id.to_string()));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let _ = tx.send(json!({"errorDetail": {"message": msg}, "error": msg}));
            }
        }
    });
    Ok(json_lines(rx))
}
