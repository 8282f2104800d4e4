//! `/networks/...` and `/volumes/...`: create, list, inspect, remove, prune, and a
//! network's connect and disconnect.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::containers::filters;
use super::error::{blocking, ApiError};
use super::AppState;
use crate::network::{CreateOptions, JoinOptions};
use crate::operations::network as opnet;
use crate::operations::volume as opvol;

fn body<T: serde::de::DeserializeOwned>(b: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(b).map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

#[derive(Deserialize)]
pub struct FilterQuery {
    filters: Option<String>,
}

pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let f = filters(&q.filters)?;
    let v = blocking(move || {
        let mut out = Vec::new();
        for n in opnet::list(&s.root, &f)? {
            out.push(opnet::inspect(&s.root, &n.id)?);
        }
        Ok(out)
    })
    .await?;
    Ok(Json(v))
}

pub async fn inspect(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        blocking(move || Ok(opnet::inspect(&s.root, &id)?)).await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: Option<String>,
    gateway: Option<String>,
    #[serde(rename = "IPRange")]
    ip_range: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    driver: Option<String>,
    config: Option<Vec<IpamConfig>>,
    options: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkCreate {
    name: String,
    driver: Option<String>,
    internal: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

pub async fn create(State(s): State<AppState>, b: Bytes) -> Result<Response, ApiError> {
    let n: NetworkCreate = body(&b, "network config")?;
    if n.name.is_empty() {
        return Err(ApiError::bad_request("network name is required"));
    }
    if n.enable_ipv6 {
        return Err(ApiError::bad_request(
            "EnableIPv6 is not supported by wharf",
        ));
    }
    let ipam = n.ipam.unwrap_or_default();
    if let Some(d) = ipam
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "default")
    {
        return Err(ApiError::bad_request(format!(
            "IPAM driver {d:?} is not supported by wharf (only \"default\")"
        )));
    }
    if ipam.options.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::bad_request(
            "IPAM.Options are not supported by wharf",
        ));
    }
    let configs = ipam.config.unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::bad_request(
            "IPAM.Config: wharf networks have one IPv4 subnet",
        ));
    }
    let c = configs.into_iter().next().unwrap_or_default();
    let o = CreateOptions {
        name: n.name,
        driver: n
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into()),
        subnet: c.subnet,
        gateway: c.gateway,
        ip_range: c.ip_range,
        internal: n.internal,
        labels: n.labels.unwrap_or_default(),
        options: n.options.unwrap_or_default(),
    };
    let row = blocking(move || Ok(opnet::create(&s.root, o)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(bollard_stubs::models::NetworkCreateResponse {
            id: Some(row.id),
            warning: Some(String::new()),
        }),
    )
        .into_response())
}

pub async fn remove(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    blocking(move || Ok(opnet::remove(&s.root, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn prune(
    State(s): State<AppState>,
    Query(q): Query<super::containers::PruneQuery>,
) -> Result<Json<Value>, ApiError> {
    q.refuse_filters()?;
    let names = blocking(move || Ok(opnet::prune(&s.root)?)).await?;
    Ok(Json(json!({"NetworksDeleted": names})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    ipv4_address: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointConfig {
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
    aliases: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Connect {
    container: String,
    endpoint_config: Option<EndpointConfig>,
    force: bool,
}

pub async fn connect(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let c: Connect = body(&b, "connect request")?;
    let e = c.endpoint_config.unwrap_or_default();
    let o = JoinOptions {
        ip: e
            .ipam_config
            .and_then(|i| i.ipv4_address)
            .filter(|a| !a.is_empty()),
        aliases: e.aliases.unwrap_or_default(),
        mac: None,
    };
    blocking(move || Ok(opnet::connect(&s.root, &id, &c.container, &o)?)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn disconnect(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let c: Connect = body(&b, "disconnect request")?;
    blocking(move || Ok(opnet::disconnect(&s.root, &id, &c.container, c.force)?)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn volumes(
    State(s): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, ApiError> {
    let f = filters(&q.filters)?;
    let list = blocking(move || Ok(opvol::list(&s.root, &f)?)).await?;
    let v: Vec<Value> = list.iter().map(|l| l.volume.inspect()).collect();
    Ok(Json(json!({"Volumes": v, "Warnings": []})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct VolumeCreate {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

pub async fn volume_create(State(s): State<AppState>, b: Bytes) -> Result<Response, ApiError> {
    let v: VolumeCreate = body(&b, "volume config")?;
    let vol = blocking(move || {
        Ok(opvol::create(
            &s.root,
            v.name.as_deref().filter(|n| !n.is_empty()),
            v.driver.as_deref().unwrap_or(""),
            &v.driver_opts.unwrap_or_default(),
            v.labels.unwrap_or_default(),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(vol.inspect())).into_response())
}

pub async fn volume_inspect(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let v = blocking(move || Ok(opvol::inspect(&s.root, &name)?)).await?;
    Ok(Json(v.inspect()))
}

#[derive(Deserialize)]
pub struct ForceQuery {
    force: Option<String>,
}

pub async fn volume_remove(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<ForceQuery>,
) -> Result<Response, ApiError> {
    let force = super::truthy(q.force.as_deref());
    blocking(move || Ok(opvol::remove(&s.root, &name, force)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn volume_prune(
    State(s): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, ApiError> {
    let f = filters(&q.filters)?;
    let p = blocking(move || Ok(opvol::prune(&s.root, false, &f)?)).await?;
    Ok(Json(
        json!({"VolumesDeleted": p.names, "SpaceReclaimed": p.reclaimed}),
    ))
}
