//! Images through a registry: pull (with docker's status lines as events), push, and the
//! pull `run` and `create` make when the image is missing. A failed pull leaves no blob
//! or snapshot that no image uses.

use std::path::Path;

use super::OperationError;
use crate::context::{Access, Context};
use crate::credentials;
use crate::events::{self, Kind};
use crate::image::digest::Digest;
use crate::image::lookup::{self, LookupError};
use crate::image::oci::{default_platform, parse_platform};
use crate::image::reference::ImageRef;
use crate::image::registry::{self, Progress};
use crate::image::undo::Undo;

/// What to pull, as `docker pull` and `POST /images/create` give it.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    pub reference: String,
    /// `os/arch[/variant]`; this machine's when absent.
    pub platform: Option<String>,
    /// Plain HTTP (always used for loopback registries).
    pub insecure: bool,
    /// Credentials given with the request (the API's X-Registry-Auth); the stored ones for
    /// the registry otherwise.
    pub credentials: Option<(String, String)>,
}

/// A pull's outcome, with what docker's closing lines say.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub reference: ImageRef,
    pub id: Digest,
    /// Digest of what the reference named (the index for a multi-arch image).
    pub digest: Digest,
    /// Whether the tag already pointed at this image.
    pub up_to_date: bool,
}

fn registry_options(
    domain: &str,
    insecure: bool,
    given: Option<(String, String)>,
) -> registry::Options {
    registry::Options {
        insecure,
        credentials: given.or_else(|| credentials::get(domain)),
    }
}

/// The text after "Pulling from": the tag or digest the reference names.
pub fn tag_or_digest(r: &ImageRef) -> String {
    r.tag
        .clone()
        .or_else(|| r.digest.clone())
        .unwrap_or_default()
}

pub fn pull(
    root: &Path,
    req: &PullRequest,
    progress: &dyn Progress,
) -> Result<Pulled, OperationError> {
    let r = ImageRef::parse(&req.reference).map_err(LookupError::from)?;
    let platform = match &req.platform {
        Some(p) => parse_platform(p).ok_or_else(|| {
            OperationError::Invalid(format!(
                "invalid platform {p:?}: expected os/arch[/variant]"
            ))
        })?,
        None => default_platform(),
    };
    let ctx = Context::open(root, Access::Shared)?;
    let opts = registry_options(&r.domain, req.insecure, req.credentials.clone());
    let pulled = Undo::guard(ctx, |ctx| {
        let pulled = registry::pull(ctx, &r, &platform, &opts, progress)?;
        // docker's pull event: the reference as given, its repository as the name.
        events::record(
            &ctx.db,
            Kind::Image,
            "pull",
            &r.familiar(),
            &[("name", &r.familiar_repository())],
        );
        Ok::<_, registry::RegistryError>(pulled)
    })?;
    Ok(Pulled {
        id: pulled.image.id.clone(),
        reference: r,
        digest: pulled.digest,
        up_to_date: pulled.up_to_date,
    })
}

/// The image's id; a missing image is pulled first, as `docker run` does. `missing` hears
/// of the pull before it starts, `pulled` once it is done.
pub fn resolve_or_pull(
    root: &Path,
    name: &str,
    missing: &mut dyn FnMut(&ImageRef),
    progress: &dyn Progress,
) -> Result<(Digest, Option<Pulled>), OperationError> {
    {
        let ctx = Context::open(root, Access::Shared)?;
        match lookup::find(&ctx.db, name) {
            Ok((id, _)) => return Ok((id, None)),
            Err(LookupError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let r = ImageRef::parse(name).map_err(LookupError::from)?;
    missing(&r);
    let req = PullRequest {
        reference: name.to_string(),
        ..Default::default()
    };
    let pulled = pull(root, &req, progress)?;
    Ok((pulled.id.clone(), Some(pulled)))
}

/// What to push, as `docker push` and `POST /images/{name}/push` give it.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    pub reference: String,
    pub insecure: bool,
    pub credentials: Option<(String, String)>,
}

pub fn push(
    root: &Path,
    req: &PushRequest,
    progress: &dyn Progress,
) -> Result<(ImageRef, registry::Pushed), OperationError> {
    let r = ImageRef::parse_tagged(&req.reference).map_err(LookupError::from)?;
    let mut ctx = Context::open(root, Access::Shared)?;
    let opts = registry_options(&r.domain, req.insecure, req.credentials.clone());
    let pushed = registry::push(&mut ctx, &r, &opts, progress)?;
    events::record(
        &ctx.db,
        Kind::Image,
        "push",
        &r.to_string(),
        &[("name", &r.familiar())],
    );
    Ok((r, pushed))
}

/// Checks credentials against a registry and, with `store`, keeps them as `docker login`
/// does (the API's `/auth` only checks: its client keeps them).
pub fn login(
    server: &str,
    user: &str,
    password: &str,
    insecure: bool,
    store: bool,
) -> Result<(), OperationError> {
    let opts = registry::Options {
        insecure,
        credentials: Some((user.to_string(), password.to_string())),
    };
    registry::login(server, &opts)?;
    if store {
        credentials::store(server, user, password)?;
    }
    Ok(())
}

/// Tags the image `source` as `target` (`docker tag`, `POST /images/{name}/tag`).
pub fn tag(root: &Path, source: &str, target: &str) -> Result<(), OperationError> {
    let target = ImageRef::parse_tagged(target).map_err(LookupError::from)?;
    let mut ctx = Context::open(root, Access::Shared)?;
    let (id, _) = lookup::find(&ctx.db, source)?;
    let name = target.tagged_name().unwrap_or_default();
    ctx.db.tag(&name, &id)?;
    crate::image::layout::write_index(&ctx)?;
    events::record(
        &ctx.db,
        Kind::Image,
        "tag",
        &id.to_string(),
        &[("name", &target.familiar())],
    );
    Ok(())
}

/// Untags and deletes the image as `docker rmi` does.
pub fn remove(
    root: &Path,
    name: &str,
    force: bool,
) -> Result<crate::image::remove::Report, OperationError> {
    let mut ctx = Context::open(root, Access::Exclusive)?;
    let r = crate::image::remove::rmi(&mut ctx, name, force)?;
    for u in &r.untagged {
        events::record(&ctx.db, Kind::Image, "untag", u, &[("name", u)]);
    }
    for d in &r.deleted {
        events::record(
            &ctx.db,
            Kind::Image,
            "delete",
            &d.to_string(),
            &[("name", name)],
        );
    }
    Ok(r)
}

/// The stored image `name` means, and how it was named.
fn find_row(
    ctx: &Context,
    name: &str,
) -> Result<(crate::store::ImageRow, lookup::Named), OperationError> {
    let (id, named) = lookup::find(&ctx.db, name)?;
    let img = ctx
        .db
        .image(&id)?
        .ok_or_else(|| LookupError::NotFound(name.to_string()))?;
    Ok((img, named))
}

/// docker's image inspect object of `name`.
pub fn inspect(root: &Path, name: &str) -> Result<crate::inspect::ImageInspect, OperationError> {
    let ctx = Context::open(root, Access::Shared)?;
    let (img, _) = find_row(&ctx, name)?;
    Ok(crate::inspect::image(&ctx, &img)?)
}

/// Writes the named images (with the names they were given by tag) as one archive, as
/// `docker save` and `GET /images/get` do.
pub fn save(
    root: &Path,
    names: &[String],
    format: crate::image::archive::Format,
    out: &mut dyn std::io::Write,
) -> Result<(), OperationError> {
    use crate::image::archive::{self, SaveItem};
    use crate::image::lookup::Named;
    let ctx = Context::open(root, Access::Shared)?;
    let mut items: Vec<SaveItem> = Vec::new();
    for name in names {
        let (img, named) = find_row(&ctx, name)?;
        let names = match named {
            Named::Tag(r) => vec![r],
            Named::Digest(_) | Named::Id => vec![],
        };
        match items.iter_mut().find(|i| i.manifest == img.manifest_digest) {
            Some(i) => i.names.extend(names),
            None => items.push(SaveItem {
                manifest: img.manifest_digest,
                names,
            }),
        }
    }
    archive::save(&ctx, &items, format, out)?;
    Ok(())
}

/// Loads a docker or OCI archive; what it held. A failed load leaves nothing behind.
pub fn load(
    root: &Path,
    input: impl std::io::Read + Send,
) -> Result<Vec<crate::image::archive::Loaded>, OperationError> {
    let ctx = Context::open(root, Access::Shared)?;
    Ok(Undo::guard(ctx, |ctx| {
        let loaded = crate::image::archive::load(ctx, input)?;
        for l in &loaded {
            let id = l.image.id.to_string();
            events::record(&ctx.db, Kind::Image, "load", &id, &[("name", &id)]);
        }
        Ok::<_, crate::image::archive::ArchiveError>(loaded)
    })?)
}

/// Removes dangling images (every unused one with `all`), as `image prune` does.
pub fn prune(root: &Path, all: bool) -> Result<crate::image::remove::Report, OperationError> {
    let mut ctx = Context::open(root, Access::Exclusive)?;
    let r = crate::image::remove::prune(&mut ctx, all)?;
    for d in &r.deleted {
        events::record(&ctx.db, Kind::Image, "delete", &d.to_string(), &[]);
    }
    Ok(r)
}

/// What `search` keeps: docker's `--filter stars=N`, `is-official=true|false` and
/// `is-automated=true|false`.
#[derive(Debug, Clone, Default)]
pub struct SearchFilters {
    pub stars: u64,
    pub is_official: Option<bool>,
    pub is_automated: Option<bool>,
}

impl SearchFilters {
    /// docker's filter arguments, with its messages for a bad one.
    pub fn parse(list: &[String]) -> Result<Self, OperationError> {
        let mut f = SearchFilters::default();
        for item in list {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                OperationError::Invalid(format!(
                    "bad format of filter (expected name=value): {item}"
                ))
            })?;
            match k {
                "stars" => {
                    f.stars = v.parse().map_err(|_| {
                        OperationError::Invalid(format!("invalid filter 'stars={v}'"))
                    })?
                }
                "is-official" => {
                    f.is_official = Some(v.parse().map_err(|_| {
                        OperationError::Invalid(format!("invalid filter 'is-official={v}'"))
                    })?)
                }
                "is-automated" => {
                    f.is_automated = Some(v.parse().map_err(|_| {
                        OperationError::Invalid(format!("invalid filter 'is-automated={v}'"))
                    })?)
                }
                other => return Err(OperationError::Invalid(format!("invalid filter '{other}'"))),
            }
        }
        Ok(f)
    }

    fn keeps(&self, r: &registry::SearchResult) -> bool {
        r.star_count >= self.stars
            && self.is_official.is_none_or(|o| o == r.is_official)
            && self.is_automated.is_none_or(|o| o == r.is_automated)
    }
}

/// docker's `search TERM`: the registry the term names (`HOST/text`, else the default
/// registry) searched through its v1 search API where it has one, else its catalog
/// filtered by the text (a catalog has no descriptions or stars: zero, not official).
/// At most `limit` results, after the filters.
pub fn search(
    term: &str,
    limit: usize,
    filters: &SearchFilters,
    insecure: bool,
) -> Result<Vec<registry::SearchResult>, OperationError> {
    if !(1..=100).contains(&limit) {
        return Err(OperationError::Invalid(format!(
            "limit {limit} is outside the range of [1, 100]"
        )));
    }
    let (domain, text) = match term.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => {
            (host.to_string(), rest.to_string())
        }
        _ => (
            crate::image::reference::DEFAULT_DOMAIN.to_string(),
            term.to_string(),
        ),
    };
    let opts = registry_options(&domain, insecure, None);
    let results = match registry::v1_search(&domain, &text, limit, &opts)? {
        Some(results) => results,
        None => {
            let text = text.to_ascii_lowercase();
            registry::catalog(&domain, &opts)?
                .into_iter()
                .filter(|r| r.to_ascii_lowercase().contains(&text))
                .map(|r| registry::SearchResult {
                    name: format!("{domain}/{r}"),
                    ..Default::default()
                })
                .collect()
        }
    };
    Ok(results
        .into_iter()
        .filter(|r| filters.keeps(r))
        .take(limit)
        .collect())
}

/// Every image in the store.
/// The images `docker images` and `GET /images/json` list: docker's filters (`key=value`),
/// the `images REPOSITORY[:TAG]` argument, and with `all` the intermediate ones too.
pub fn list(
    root: &Path,
    filters: &[String],
    name: Option<&str>,
    all: bool,
) -> Result<Vec<crate::store::ImageRow>, OperationError> {
    use crate::image::filter::{FilterError, Filters};
    let invalid = |e: FilterError| match e {
        FilterError::Lookup(e) => OperationError::Lookup(e),
        FilterError::Image(e) => OperationError::Image(e),
        e => OperationError::Invalid(e.to_string()),
    };
    let filters = Filters::parse(filters, name).map_err(invalid)?;
    let ctx = Context::open(root, Access::Shared)?;
    filters.select(&ctx, all).map_err(invalid)
}

/// The image `name` and its history rows, newest first (`docker history`).
pub fn history(
    root: &Path,
    name: &str,
    no_trunc: bool,
    human: bool,
) -> Result<(crate::store::ImageRow, Vec<serde_json::Value>), OperationError> {
    let ctx = Context::open(root, Access::Shared)?;
    let (img, _) = find_row(&ctx, name)?;
    let rows = crate::inspect::history_rows(&ctx, &img, no_trunc, human)?;
    Ok((img, rows))
}
