//! Which images `images` lists, as docker's daemon decides it: the `--filter` keys
//! `dangling`, `reference`, `before`, `since` and `label` (one key's values widen the
//! match for `reference`, narrow it for `label`; different keys all apply), and
//! intermediate images hidden unless `-a`.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use super::lookup::{self, LookupError};
use super::oci::ImageConfig;
use super::pattern::{self, BadPattern};
use super::reference::ImageRef;
use super::ImageError;
use crate::context::Context;
use crate::store::ImageRow;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("bad format of filter (expected name=value)")]
    Format,
    #[error("invalid filter '{0}'")]
    Invalid(String),
    #[error(transparent)]
    Pattern(#[from] BadPattern),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl From<crate::store::StoreError> for FilterError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Image(e.into())
    }
}

/// Parsed `--filter` arguments.
#[derive(Debug, Default)]
pub struct Filters {
    dangling: Option<bool>,
    references: Vec<String>,
    before: Vec<String>,
    since: Vec<String>,
    labels: Vec<String>,
}

impl Filters {
    /// Parses `key=value` arguments; keys are case-insensitive and values trimmed, as
    /// docker's client sends them. `name` is the `images [REPOSITORY[:TAG]]` argument,
    /// which docker adds as one more `reference` value.
    pub fn parse(args: &[String], name: Option<&str>) -> Result<Self, FilterError> {
        let mut f = Self::default();
        let mut dangling = BTreeSet::new();
        for raw in args {
            let (k, v) = raw.split_once('=').ok_or(FilterError::Format)?;
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            match k.as_str() {
                "dangling" => {
                    dangling.insert(v);
                }
                "reference" => f.references.push(v),
                "before" => f.before.push(v),
                "since" => f.since.push(v),
                "label" => f.labels.push(v),
                _ => return Err(FilterError::Invalid(k)),
            }
        }
        if !dangling.is_empty() {
            let no = dangling.contains("false") || dangling.contains("0");
            let yes = dangling.contains("true") || dangling.contains("1");
            if no == yes {
                let values: Vec<&str> = dangling.iter().map(String::as_str).collect();
                return Err(FilterError::Invalid(format!(
                    "dangling={}",
                    values.join(",")
                )));
            }
            f.dangling = Some(yes);
        }
        f.references.extend(name.map(str::to_string));
        Ok(f)
    }

    /// The images to list, newest first, each with only the names that matched a
    /// `reference` filter.
    pub fn select(&self, ctx: &Context, all: bool) -> Result<Vec<ImageRow>, FilterError> {
        // Several values resolve to the strictest: the oldest `before`, the newest `since`.
        let created_of = |input: &String| -> Result<Option<DateTime<FixedOffset>>, FilterError> {
            let (id, _) = lookup::find(&ctx.db, input)?;
            let img = ctx
                .db
                .image(&id)?
                .ok_or_else(|| LookupError::NotFound(input.clone()))?;
            Ok(created(&img))
        };
        let mut before = None;
        for b in &self.before {
            before = before.into_iter().chain(created_of(b)?).min();
        }
        let mut since = None;
        for s in &self.since {
            since = since.into_iter().chain(created_of(s)?).max();
        }
        let images = ctx.db.images()?;
        let parents = with_children(ctx, &images)?;
        let intermediate = intermediates(ctx, &images)?;
        let mut out = Vec::new();
        for mut img in images {
            let has_children = parents.contains(img.id.as_str());
            // dangling=true lists only heads, images no other image builds on.
            if self.dangling == Some(true) && has_children {
                continue;
            }
            let made = created(&img);
            if !self.before.is_empty() && before.is_some_and(|b| made.is_none_or(|c| c >= b)) {
                continue;
            }
            if !self.since.is_empty() && since.is_some_and(|s| made.is_none_or(|c| c <= s)) {
                continue;
            }
            if !self.labels.is_empty() && !self.labels_match(ctx, &img)? {
                continue;
            }
            if !self.references.is_empty() {
                img.tags = self.matching(&img.tags)?;
                img.repo_digests = self.matching(&img.repo_digests)?;
            }
            if img.tags.is_empty() && img.repo_digests.is_empty() {
                if (!all && (has_children || intermediate.contains(img.id.as_str())))
                    || self.dangling == Some(false)
                    || !self.references.is_empty()
                {
                    continue;
                }
            } else if self.dangling == Some(true) && !img.tags.is_empty() {
                continue;
            }
            out.push(img);
        }
        Ok(out)
    }

    /// Names matching any `reference` pattern: docker's FamiliarMatch tries the familiar
    /// string (`alpine:3`, `me/app@sha256:...`), then the familiar repository (`alpine`).
    fn matching(&self, names: &[String]) -> Result<Vec<String>, FilterError> {
        let mut out = Vec::new();
        for n in names {
            let Ok(r) = ImageRef::parse(n) else { continue };
            for p in &self.references {
                if pattern::matches(p, &r.familiar())?
                    || pattern::matches(p, &r.familiar_repository()).unwrap_or(false)
                {
                    out.push(n.clone());
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Every `label=KEY` or `label=KEY=VALUE` holds for the image config's labels.
    fn labels_match(&self, ctx: &Context, img: &ImageRow) -> Result<bool, FilterError> {
        let bytes = ctx.blobs.read(&img.id).map_err(ImageError::from)?;
        let cfg: ImageConfig =
            serde_json::from_slice(&bytes).map_err(|source| ImageError::Config {
                digest: img.id.clone(),
                source,
            })?;
        let labels = cfg
            .config
            .as_ref()
            .and_then(|c| c.get("Labels"))
            .and_then(Value::as_object);
        Ok(self.labels.iter().all(|want| {
            let (k, v) = match want.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (want.as_str(), None),
            };
            labels
                .and_then(|l| l.get(k))
                .is_some_and(|have| v.is_none_or(|v| have.as_str() == Some(v)))
        }))
    }
}

fn created(img: &ImageRow) -> Option<DateTime<FixedOffset>> {
    img.created
        .as_deref()
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
}

/// docker's intermediate images: build-cache images another image was built on (its
/// history extends theirs). A metadata step adds no layer, so layers cannot tell.
fn intermediates(ctx: &Context, images: &[ImageRow]) -> Result<HashSet<String>, FilterError> {
    let cache = ctx.db.build_cache_images()?;
    if cache.is_empty() {
        return Ok(HashSet::new());
    }
    let history = |id: &crate::image::digest::Digest| -> Vec<serde_json::Value> {
        ctx.blobs
            .read(id)
            .ok()
            .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
            .and_then(|c| c["history"].as_array().cloned())
            .unwrap_or_default()
    };
    let all: Vec<(String, Vec<serde_json::Value>)> = images
        .iter()
        .map(|i| (i.id.to_string(), history(&i.id)))
        .collect();
    Ok(all
        .iter()
        .filter(|(id, h)| {
            cache.contains(id)
                && all
                    .iter()
                    .any(|(_, other)| other.len() > h.len() && other.starts_with(h))
        })
        .map(|(id, _)| id.clone())
        .collect())
}

fn with_children(ctx: &Context, images: &[ImageRow]) -> Result<HashSet<String>, FilterError> {
    let mut stacks = Vec::with_capacity(images.len());
    for i in images {
        let chain: Vec<String> = ctx
            .db
            .layers(&i.id)?
            .into_iter()
            .map(|l| l.chain_id.to_string())
            .collect();
        stacks.push(chain);
    }
    let mut out = HashSet::new();
    for (i, img) in images.iter().enumerate() {
        let mine = &stacks[i];
        if stacks
            .iter()
            .any(|s| s.len() > mine.len() && s.starts_with(mine))
        {
            out.insert(img.id.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Filters, FilterError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Filters::parse(&args, None)
    }

    #[test]
    fn parses_docker_keys_and_rejects_the_rest() {
        let f = parse(&[
            "Dangling = true",
            "reference=a*",
            "label=x=1",
            "since=a",
            "before=b",
        ])
        .unwrap();
        assert_eq!(f.dangling, Some(true));
        assert_eq!(f.references, ["a*"]);
        assert_eq!(f.labels, ["x=1"]);
        let err = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(err(&["color=red"]), "invalid filter 'color'");
        assert_eq!(
            err(&["dangling"]),
            "bad format of filter (expected name=value)"
        );
        assert_eq!(err(&["dangling=maybe"]), "invalid filter 'dangling=maybe'");
        assert_eq!(
            err(&["dangling=true", "dangling=false"]),
            "invalid filter 'dangling=false,true'"
        );
        assert_eq!(parse(&["dangling=0"]).unwrap().dangling, Some(false));
    }

    #[test]
    fn references_match_familiar_names_like_docker() {
        let f = |p: &str| Filters {
            references: vec![p.to_string()],
            ..Default::default()
        };
        let names = vec![
            "docker.io/library/alpine:3".to_string(),
            "docker.io/me/app:1".to_string(),
            "localhost:5000/x:1".to_string(),
        ];
        let m = |p: &str| f(p).matching(&names).unwrap();
        assert_eq!(m("alpine"), ["docker.io/library/alpine:3"]);
        assert_eq!(m("alp*:3"), ["docker.io/library/alpine:3"]);
        assert_eq!(m("*"), ["docker.io/library/alpine:3"]);
        assert_eq!(m("*/*"), ["docker.io/me/app:1", "localhost:5000/x:1"]);
        assert_eq!(m("localhost:5000/*"), ["localhost:5000/x:1"]);
        assert!(m("docker.io/library/alpine").is_empty());
        assert!(m("alpine:edge").is_empty());
        assert!(matches!(
            f("[").matching(&names),
            Err(FilterError::Pattern(_))
        ));
    }
}
