//! Docker-shaped views of stored images: `image inspect` objects, `images` rows and
//! `history` rows, as JSON values that tables and Go templates render.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::context::Context;
use crate::format::{go_time, human_size, since};
use crate::image::digest::Digest;
use crate::image::oci::ImageConfig;
use crate::image::reference::ImageRef;
use crate::image::ImageError;
use crate::store::ImageRow;

fn familiar(name: &str) -> String {
    ImageRef::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_string())
}

fn raw_config(ctx: &Context, id: &Digest) -> Result<(Map<String, Value>, ImageConfig), ImageError> {
    let bytes = ctx.blobs.read(id)?;
    let parse = |source| ImageError::Config {
        digest: id.clone(),
        source,
    };
    let raw: Map<String, Value> = serde_json::from_slice(&bytes).map_err(parse)?;
    let typed: ImageConfig = serde_json::from_slice(&bytes).map_err(parse)?;
    Ok((raw, typed))
}

/// The object `docker image inspect` prints for one image, fields in docker's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub container: String,
    pub container_config: Value,
    pub docker_version: String,
    pub author: String,
    pub config: Value,
    pub architecture: String,
    pub os: String,
    pub size: u64,
    /// docker 20.10's field (its API 1.41 requires it): the size again, layers included.
    pub virtual_size: u64,
    pub graph_driver: Value,
    #[serde(rename = "RootFS")]
    pub root_fs: Value,
    pub metadata: Value,
}

pub fn image(ctx: &Context, img: &ImageRow) -> Result<ImageInspect, ImageError> {
    let (raw, cfg) = raw_config(ctx, &img.id)?;
    let layers = ctx.db.layers(&img.id)?;
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| ctx.snapshots.path(&l.chain_id).display().to_string())
        .collect();
    let s = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(ImageInspect {
        id: img.id.to_string(),
        repo_tags: img.tags.iter().map(|t| familiar(t)).collect(),
        repo_digests: img.repo_digests.iter().map(|t| familiar(t)).collect(),
        parent: String::new(),
        comment: s("comment"),
        created: cfg.created.clone().unwrap_or_default(),
        container: s("container"),
        container_config: raw.get("container_config").cloned().unwrap_or(Value::Null),
        docker_version: s("docker_version"),
        author: cfg.author.clone().unwrap_or_default(),
        config: cfg.config.clone().map(Value::Object).unwrap_or(Value::Null),
        architecture: cfg.architecture,
        os: cfg.os,
        size: img.size,
        virtual_size: img.size,
        graph_driver: json!({
            "Data": { "LowerDir": lower.join(":") },
            "Name": "overlay",
        }),
        root_fs: json!({ "Type": "layers", "Layers": cfg.rootfs.diff_ids }),
        metadata: json!({
            "LastTagTime": img.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        }),
    })
}

/// `images` rows as docker's client makes them: one per tag (one per tag and digest of
/// its repository when digests are needed: `--digests` given or `{{.Digest}}` in the
/// format), one for each repository known only by digest (one per digest with
/// `--digests`), or a single `<none>` row.
pub fn image_rows(
    img: &ImageRow,
    no_trunc: bool,
    show_digests: bool,
    need_digests: bool,
) -> Vec<Value> {
    let id = if no_trunc {
        img.id.to_string()
    } else {
        img.id.short().to_string()
    };
    let row = |repo: &str, tag: &str, digest: &str| {
        json!({
            "Containers": "N/A",
            "CreatedAt": go_time(img.created.as_deref()),
            "CreatedSince": since(img.created.as_deref()),
            "Digest": digest,
            "ID": id,
            "Repository": repo,
            "SharedSize": "N/A",
            "Size": human_size(img.size),
            "Tag": tag,
            "UniqueSize": "N/A",
            "VirtualSize": human_size(img.size),
        })
    };
    let tags: Vec<ImageRef> = img
        .tags
        .iter()
        .filter_map(|t| ImageRef::parse(t).ok())
        .collect();
    let by_digest: Vec<ImageRef> = img
        .repo_digests
        .iter()
        .filter_map(|d| ImageRef::parse(d).ok())
        .filter(|d| d.digest.is_some())
        .collect();
    if tags.is_empty() && by_digest.is_empty() {
        return vec![row("<none>", "<none>", "<none>")];
    }
    let digests_of = |repo: &str| -> Vec<&str> {
        by_digest
            .iter()
            .filter(|d| d.familiar_repository() == repo)
            .filter_map(|d| d.digest.as_deref())
            .collect()
    };
    let mut rows = Vec::new();
    let mut tagged = Vec::new();
    for t in &tags {
        let repo = t.familiar_repository();
        let tag = t.tag.as_deref().unwrap_or("<none>");
        let ds = if need_digests || show_digests {
            digests_of(&repo)
        } else {
            vec![]
        };
        if ds.is_empty() {
            rows.push(row(&repo, tag, "<none>"));
        }
        for d in ds {
            rows.push(row(&repo, tag, d));
        }
        tagged.push(repo);
    }
    for d in &by_digest {
        let repo = d.familiar_repository();
        if tagged.contains(&repo) {
            continue;
        }
        if show_digests {
            rows.push(row(
                &repo,
                "<none>",
                d.digest.as_deref().unwrap_or_default(),
            ));
        } else {
            rows.push(row(&repo, "<none>", ""));
            tagged.push(repo);
        }
    }
    rows
}

/// `history` rows, newest first, each non-empty history entry matched to its layer size.
pub fn history_rows(
    ctx: &Context,
    img: &ImageRow,
    no_trunc: bool,
    human: bool,
) -> Result<Vec<Value>, ImageError> {
    let (_, cfg) = raw_config(ctx, &img.id)?;
    let layers = ctx.db.layers(&img.id)?;
    let mut history = cfg.history.clone();
    if history.is_empty() {
        history = layers.iter().map(|_| Default::default()).collect();
    }
    let mut sizes = layers.iter().map(|l| l.size);
    let mut rows: Vec<Value> = history
        .iter()
        .map(|h| {
            let size = if h.empty_layer {
                0
            } else {
                sizes.next().unwrap_or(0)
            };
            let by = h.created_by.clone().unwrap_or_default();
            let by = if no_trunc || by.chars().count() <= 45 {
                by
            } else {
                let mut s: String = by.chars().take(44).collect();
                s.push('…');
                s
            };
            json!({
                "ID": "<missing>",
                "CreatedSince": since(h.created.as_deref()),
                "CreatedAt": h.created.clone().unwrap_or_default(),
                "CreatedBy": by,
                "Size": if human { human_size(size) } else { size.to_string() },
                "Comment": h.comment.clone().unwrap_or_default(),
            })
        })
        .collect();
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first["ID"] = Value::String(if no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        });
    }
    Ok(rows)
}

/// docker's HostConfig: what the container was created with, and the log driver every
/// wharf container has (its monitor writes docker's json-file log; compose reads this to
/// decide whether a container has logs at all).
fn host_config(h: &crate::container::HostConfig) -> Value {
    let mut v = serde_json::to_value(h).unwrap_or_else(|_| json!({}));
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "LogConfig".into(),
            json!({"Type": "json-file", "Config": {}}),
        );
    }
    v
}

/// The object `docker container inspect` prints, fields in docker's order.
pub fn container(
    root: &std::path::Path,
    db: &crate::store::Db,
    c: &crate::container::Container,
) -> Result<Value, crate::network::NetworkError> {
    use crate::container::{dir, log_path, rootfs::Layout, Status};
    let cdir = dir(root, &c.id);
    let layout = Layout::new(&cdir);
    let status = c.effective_status();
    let s = &c.state;
    let zero = "0001-01-01T00:00:00Z".to_string();
    let mut lower: Vec<String> = vec![layout.init.display().to_string()];
    lower.extend(
        c.spec
            .layers
            .iter()
            .rev()
            .map(|l| root.join("snapshots").join(l).display().to_string()),
    );
    let mounts: Vec<Value> = c
        .spec
        .mounts
        .iter()
        .map(|m| {
            if m.kind == "volume" {
                json!({"Type": "volume", "Name": m.name, "Source": m.source,
                       "Destination": m.destination, "Driver": "local", "Mode": m.mode,
                       "RW": m.rw, "Propagation": ""})
            } else {
                json!({"Type": m.kind, "Source": m.source, "Destination": m.destination,
                       "Mode": m.mode, "RW": m.rw, "Propagation": m.propagation})
            }
        })
        .collect();
    let mut state = json!({
            "Status": status.as_str(),
            "Running": matches!(status, Status::Running | Status::Paused | Status::Restarting),
            "Paused": status == Status::Paused,
            "Restarting": status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": status == Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at.clone().unwrap_or_else(|| zero.clone()),
            "FinishedAt": s.finished_at.clone().unwrap_or(zero),
    });
    if let Some(h) = &s.health {
        state["Health"] = json!(h);
    }
    Ok(json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.spec.path,
        "Args": c.spec.args,
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": cdir.join("resolv.conf"),
        "HostnamePath": cdir.join("hostname"),
        "HostsPath": cdir.join("hosts"),
        "LogPath": log_path(root, &c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config(&c.spec.host),
        "GraphDriver": {
            "Data": {
                "LowerDir": lower.join(":"),
                "MergedDir": layout.merged,
                "UpperDir": layout.upper,
                "WorkDir": layout.work,
            },
            "Name": "overlay2",
        },
        "Mounts": mounts,
        "Config": c.spec.config,
        "NetworkSettings": crate::network::settings_json(root, db, c)?,
    }))
}
