//! Pull and push over the OCI distribution protocol with oci-client. tokio lives only
//! here: each operation builds a current-thread runtime for its transfers and drops it
//! before anything is unpacked or recorded, so no async runtime outlives a registry call.
//! Blobs stream into the content store, digest-checked; layers transfer concurrently.

use std::io::Write;
use std::time::Duration;

use futures_util::{stream, StreamExt, TryStreamExt};
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::digest::Digest;
use super::install::{self, Installed};
use super::oci::{
    is_index, select_platform, Index, Manifest, Platform, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX,
    OCI_MANIFEST,
};
use super::reference::ImageRef;
use super::store::{BlobError, BlobStore, BlobWriter};
use super::ImageError;
use crate::context::Context;

/// Layers transferred at once, as docker's default `max-concurrent-downloads` is 3.
const CONCURRENCY: usize = 3;
/// Attempts per blob transfer: docker makes five.
const ATTEMPTS: u32 = 5;
/// The pause after a blob's first failed attempt, doubled after each further one (docker
/// waits 5 s more each time; a registry that recovers does so in well under that).
const BACKOFF: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{reference}: {source}")]
    Registry {
        reference: String,
        source: OciDistributionError,
    },
    #[error("unauthorized: authentication required for {0}")]
    Unauthorized(String),
    #[error("unauthorized: incorrect username or password for {0}")]
    BadCredentials(String),
    #[error("manifest for {0} not found: manifest unknown")]
    NotFound(String),
    #[error("no matching manifest for {platform} in the manifest list entries of {reference}")]
    NoPlatform { reference: String, platform: String },
    #[error("{reference}: manifest digest mismatch: expected {expected}, got {actual}")]
    ManifestDigest {
        reference: String,
        expected: String,
        actual: Digest,
    },
    #[error("searching {domain}: {source}")]
    Search {
        domain: String,
        source: reqwest::Error,
    },
    /// A blob transfer that failed for good, naming the blob.
    #[error("blob {digest}: {source}{}", gave_up(*attempts))]
    Blob {
        digest: Digest,
        attempts: u32,
        source: Box<RegistryError>,
    },
    #[error("starting the network runtime: {0}")]
    Runtime(std::io::Error),
    #[error("An image does not exist locally with the tag: {0}")]
    NoTag(String),
    #[error(transparent)]
    Image(#[from] ImageError),
}

fn gave_up(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (gave up after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl From<BlobError> for RegistryError {
    fn from(e: BlobError) -> Self {
        Self::Image(e.into())
    }
}

/// Progress of a transfer, reported per blob as docker shows it.
#[derive(Debug, Clone)]
pub enum Event {
    /// A layer that needs no transfer.
    Exists(Digest),
    Start {
        digest: Digest,
        size: u64,
    },
    Progress {
        digest: Digest,
        done: u64,
    },
    Done(Digest),
}

pub trait Progress {
    fn event(&self, e: Event);
}

/// Progress nobody watches (`-q`, the pull `run` makes, a build's base image).
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: Event) {}
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Plain HTTP for this registry (docker also allows it for localhost registries).
    pub insecure: bool,
    pub credentials: Option<(String, String)>,
}

/// Registries reached over plain HTTP: asked for, or on the loopback interface.
fn plain_http(domain: &str, insecure: bool) -> bool {
    let host = match domain.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => domain,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    insecure
        || host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn client(domain: &str, opts: &Options) -> Client {
    let protocol = if plain_http(domain, opts.insecure) {
        ClientProtocol::HttpsExcept(vec![domain.to_string()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        platform_resolver: None,
        use_monolithic_push: true,
        connect_timeout: Some(std::time::Duration::from_secs(15)),
        ..Default::default()
    })
}

fn auth(opts: &Options) -> RegistryAuth {
    match &opts.credentials {
        Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
        None => RegistryAuth::Anonymous,
    }
}

/// What every registry call sets up: the client for the reference's registry, the
/// credentials, the reference in oci-client's terms and a runtime to drive them.
fn session(
    r: &ImageRef,
    opts: &Options,
) -> Result<(Client, RegistryAuth, Reference, tokio::runtime::Runtime), RegistryError> {
    Ok((client(&r.domain, opts), auth(opts), oci_ref(r), runtime()?))
}

fn runtime() -> Result<tokio::runtime::Runtime, RegistryError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RegistryError::Runtime)
}

fn oci_ref(r: &ImageRef) -> Reference {
    match (&r.tag, &r.digest) {
        (Some(t), Some(d)) => {
            Reference::with_tag_and_digest(r.domain.clone(), r.path.clone(), t.clone(), d.clone())
        }
        (None, Some(d)) => Reference::with_digest(r.domain.clone(), r.path.clone(), d.clone()),
        (t, None) => Reference::with_tag(
            r.domain.clone(),
            r.path.clone(),
            t.clone().unwrap_or_else(|| "latest".into()),
        ),
    }
}

fn wrap(r: &ImageRef) -> impl Fn(OciDistributionError) -> RegistryError + '_ {
    move |e| match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => {
            RegistryError::Unauthorized(r.familiar())
        }
        OciDistributionError::RequestError(ref e)
            if e.status().map(|s| s.as_u16()) == Some(401) =>
        {
            RegistryError::Unauthorized(r.familiar())
        }
        OciDistributionError::ImageManifestNotFoundError(_) => {
            RegistryError::NotFound(r.familiar())
        }
        OciDistributionError::RegistryError { ref envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown
                        | oci_client::errors::OciErrorCode::NameUnknown
                )
            }) =>
        {
            RegistryError::NotFound(r.familiar())
        }
        OciDistributionError::RegistryError { ref envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, oci_client::errors::OciErrorCode::Unauthorized)) =>
        {
            RegistryError::Unauthorized(r.familiar())
        }
        source => RegistryError::Registry {
            reference: r.familiar(),
            source,
        },
    }
}

const ACCEPT: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

/// What a pull did, for docker's closing lines.
pub struct Pulled {
    pub image: Installed,
    /// Digest of what the reference named (the index for a multi-arch image).
    pub digest: Digest,
    /// Whether the tag already pointed at this image before the pull.
    pub up_to_date: bool,
}

pub fn pull(
    ctx: &mut Context,
    r: &ImageRef,
    platform: &Platform,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pulled, RegistryError> {
    let (client, auth, oref, rt) = session(r, opts)?;
    let err = wrap(r);
    let (manifest_body, top_digest) = rt.block_on(async {
        client
            .auth(&oref, &auth, RegistryOperation::Pull)
            .await
            .map_err(&err)?;
        let (body, _) = client
            .pull_manifest_raw(&oref, &auth, ACCEPT)
            .await
            .map_err(&err)?;
        let top = Digest::of(&body);
        if let Some(want) = &r.digest {
            if want != top.as_str() {
                return Err(RegistryError::ManifestDigest {
                    reference: r.familiar(),
                    expected: want.clone(),
                    actual: top,
                });
            }
        }
        if !is_index("", &body) {
            return Ok((body.to_vec(), top));
        }
        let index: Index =
            serde_json::from_slice(&body).map_err(|source| ImageError::Manifest {
                digest: top.clone(),
                source,
            })?;
        let platform_name = format!(
            "{}/{}{}",
            platform.os,
            platform.architecture,
            platform
                .variant
                .as_ref()
                .map(|v| format!("/{v}"))
                .unwrap_or_default()
        );
        let d = select_platform(&index, platform).ok_or_else(|| RegistryError::NoPlatform {
            reference: r.familiar(),
            platform: platform_name,
        })?;
        let child = oref.clone_with_digest(d.digest.clone());
        let (body, _) = client
            .pull_manifest_raw(&child, &auth, ACCEPT)
            .await
            .map_err(&err)?;
        if Digest::of(&body).as_str() != d.digest {
            return Err(RegistryError::ManifestDigest {
                reference: r.familiar(),
                expected: d.digest.clone(),
                actual: Digest::of(&body),
            });
        }
        Ok((body.to_vec(), top))
    })?;
    crate::fault::at(crate::fault::Step::PullManifestFetched);
    let m: Manifest =
        serde_json::from_slice(&manifest_body).map_err(|source| ImageError::Manifest {
            digest: Digest::of(&manifest_body),
            source,
        })?;
    // Fetches descriptors (layer index or None for the config, digest, size, media type)
    // several at once; `stored` hears of each layer once its blob is in the store.
    let blobs = ctx.blobs.clone();
    let fetch_all = |wanted: Vec<(Option<usize>, Digest, u64, String)>,
                     stored: &dyn Fn(usize)|
     -> Result<(), RegistryError> {
        rt.block_on(async {
            stream::iter(wanted.into_iter().map(|(layer, digest, size, media_type)| {
                let client = &client;
                let oref = &oref;
                let blobs = &blobs;
                let err = &err;
                async move {
                    if layer.is_some() {
                        progress.event(Event::Start {
                            digest: digest.clone(),
                            size,
                        });
                    }
                    let desc = OciDescriptor {
                        media_type,
                        digest: digest.to_string(),
                        size: size as i64,
                        ..Default::default()
                    };
                    let fetch = Fetch {
                        client,
                        oref,
                        desc: &desc,
                        digest: &digest,
                        size,
                        progress: layer.is_some().then_some(progress),
                        err,
                    };
                    fetch.run(blobs).await?;
                    crate::fault::at(crate::fault::Step::PullBlobStored);
                    if let Some(i) = layer {
                        progress.event(Event::Done(digest));
                        stored(i);
                    }
                    Ok::<(), RegistryError>(())
                }
            }))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
        })
        .map(drop)
    };
    // The config first: the layers' unpack jobs come from it, and then each layer is
    // unpacked as soon as its blob is stored while the others download, on both cores.
    let config = Digest::parse(&m.config.digest).map_err(ImageError::from)?;
    if !ctx.blobs.has(&config) {
        let wanted = vec![(None, config, m.config.size, m.config.media_type.clone())];
        fetch_all(wanted, &|_| {})?;
    }
    let plan = install::plan(ctx, &manifest_body)?;
    let (ready, queue) = std::sync::mpsc::channel();
    let mut missing = Vec::new();
    for (i, d) in m.layers.iter().enumerate() {
        let digest = Digest::parse(&d.digest).map_err(ImageError::from)?;
        if ctx.blobs.has(&digest) {
            progress.event(Event::Exists(digest));
            let _ = ready.send(plan.jobs[i].clone());
        } else {
            missing.push((Some(i), digest, d.size, d.media_type.clone()));
        }
    }
    let snapshots = &ctx.snapshots;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (fetched, unpacked) = std::thread::scope(|s| {
        let unpacking = s.spawn(|| snapshots.unpack_as_ready(queue, &stop));
        let stored = |i: usize| {
            let _ = ready.send(plan.jobs[i].clone());
        };
        let fetched = fetch_all(missing, &stored);
        if fetched.is_err() {
            // The pull fails: what is queued would only be unpacked to be removed again.
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        drop(ready);
        let unpacked = match unpacking.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (fetched, unpacked)
    });
    fetched?;
    drop(rt);
    crate::fault::at(crate::fault::Step::PullBlobsDone);
    let unpacked = unpacked.into_result().map_err(ImageError::from)?;
    crate::fault::at(crate::fault::Step::ImageUnpacked);
    let before = match r.tagged_name() {
        Some(n) => ctx.db.tag_target(&n).map_err(ImageError::from)?,
        None => None,
    };
    let names: Vec<ImageRef> = r.tag.is_some().then(|| r.clone()).into_iter().collect();
    let repo_digest = format!("{}@{}", r.repository(), top_digest);
    let image = install::finish(ctx, plan, &unpacked, &names, &[repo_digest])?;
    Ok(Pulled {
        up_to_date: !image.new && (r.tag.is_none() || before.as_ref() == Some(&image.id)),
        image,
        digest: top_digest,
    })
}

/// Whether a failed transfer is worth another attempt, as docker decides: a dropped
/// connection, a server error (5xx) or a blob that arrived damaged is; an answer the
/// registry meant (401, 404, 429 "too many requests") is not.
fn transient(e: &RegistryError) -> bool {
    match e {
        RegistryError::Registry { source, .. } => match source {
            OciDistributionError::ServerError { code, .. } => *code >= 500,
            OciDistributionError::RequestError(e) => e.status().is_none_or(|s| s.is_server_error()),
            OciDistributionError::IoError(_) => true,
            _ => false,
        },
        RegistryError::Image(ImageError::Blob(
            BlobError::Mismatch { .. } | BlobError::Size { .. },
        )) => true,
        _ => false,
    }
}

fn backoff(attempt: u32) -> Duration {
    BACKOFF * 2u32.pow(attempt - 1)
}

/// One blob to download into the content store.
struct Fetch<'a> {
    client: &'a Client,
    oref: &'a Reference,
    desc: &'a OciDescriptor,
    digest: &'a Digest,
    size: u64,
    /// Where a layer's progress goes (none for the config).
    progress: Option<&'a dyn Progress>,
    err: &'a dyn Fn(OciDistributionError) -> RegistryError,
}

impl Fetch<'_> {
    /// Downloads the blob: a dropped transfer resumes where it stopped, one whose bytes do
    /// not match the digest starts over, and nothing is stored unless it matches.
    async fn run(&self, blobs: &BlobStore) -> Result<(), RegistryError> {
        let fresh = || blobs.writer(Some(self.digest.clone()));
        let mut w = fresh()?;
        let mut attempt = 1;
        loop {
            let failed: RegistryError = match self.receive(&mut w, blobs).await {
                Ok(()) if w.written() == self.size => match w.commit() {
                    Ok(_) => return Ok(()),
                    Err(e) => {
                        w = fresh()?;
                        e.into()
                    }
                },
                Ok(()) => {
                    let e = BlobError::Size {
                        digest: self.digest.clone(),
                        expected: self.size,
                        actual: w.written(),
                    };
                    w = fresh()?;
                    e.into()
                }
                Err(e) => {
                    // All of it arrived and still failed (the client's own digest check):
                    // resuming cannot mend it.
                    if w.written() >= self.size {
                        w = fresh()?;
                    }
                    e
                }
            };
            if attempt == ATTEMPTS || !transient(&failed) {
                return Err(RegistryError::Blob {
                    digest: self.digest.clone(),
                    attempts: attempt,
                    source: Box::new(failed),
                });
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Streams the rest of the blob, from what `w` already holds, into `w`.
    async fn receive(&self, w: &mut BlobWriter, blobs: &BlobStore) -> Result<(), RegistryError> {
        let offset = w.written();
        let mut s = if offset == 0 {
            self.client
                .pull_blob_stream(self.oref, self.desc)
                .await
                .map_err(self.err)?
        } else {
            match self
                .client
                .pull_blob_stream_partial(self.oref, self.desc, offset, None)
                .await
                .map_err(self.err)?
            {
                BlobResponse::Partial(s) => s,
                // The registry ignored the range and sends all of it.
                BlobResponse::Full(s) => {
                    *w = blobs.writer(Some(self.digest.clone()))?;
                    s
                }
            }
        };
        while let Some(chunk) = s
            .stream
            .try_next()
            .await
            .map_err(|e| (self.err)(e.into()))?
        {
            w.write_all(&chunk).map_err(|e| w.write_error(e))?;
            if let Some(p) = self.progress {
                p.event(Event::Progress {
                    digest: self.digest.clone(),
                    done: w.written(),
                });
            }
        }
        Ok(())
    }
}

/// What a push did: the pushed manifest's digest and size.
pub struct Pushed {
    pub digest: Digest,
    pub size: usize,
}

pub fn push(
    ctx: &mut Context,
    r: &ImageRef,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pushed, RegistryError> {
    let name = r
        .tagged_name()
        .ok_or_else(|| RegistryError::NoTag(r.familiar()))?;
    let id = ctx
        .db
        .tag_target(&name)
        .map_err(ImageError::from)?
        .ok_or_else(|| RegistryError::NoTag(r.familiar()))?;
    let img = ctx
        .db
        .image(&id)
        .map_err(ImageError::from)?
        .ok_or_else(|| RegistryError::NoTag(r.familiar()))?;
    let body = ctx.blobs.read(&img.manifest_digest)?;
    let m: Manifest = serde_json::from_slice(&body).map_err(|source| ImageError::Manifest {
        digest: img.manifest_digest.clone(),
        source,
    })?;
    let (client, auth, oref, rt) = session(r, opts)?;
    let err = wrap(r);
    let blobs = ctx.blobs.clone();
    let layers: Vec<(Digest, u64)> = m
        .layers
        .iter()
        .map(|l| Ok((Digest::parse(&l.digest)?, l.size)))
        .collect::<Result<_, super::digest::DigestError>>()
        .map_err(ImageError::from)?;
    let config = Digest::parse(&m.config.digest).map_err(ImageError::from)?;
    rt.block_on(async {
        client
            .auth(&oref, &auth, RegistryOperation::Push)
            .await
            .map_err(&err)?;
        let upload = |digest: Digest, size: u64, is_layer: bool| {
            let client = &client;
            let oref = &oref;
            let blobs = &blobs;
            let err = &err;
            async move {
                if client
                    .blob_exists(oref, digest.as_str())
                    .await
                    .map_err(err)?
                {
                    if is_layer {
                        progress.event(Event::Exists(digest));
                    }
                    return Ok(());
                }
                if is_layer {
                    progress.event(Event::Start {
                        digest: digest.clone(),
                        size,
                    });
                }
                let data = bytes::Bytes::from(blobs.read(&digest)?);
                let mut attempt = 1;
                while let Err(e) = client
                    .push_blob(oref, data.clone(), digest.as_str())
                    .await
                    .map_err(err)
                {
                    if attempt == ATTEMPTS || !transient(&e) {
                        return Err(RegistryError::Blob {
                            digest,
                            attempts: attempt,
                            source: Box::new(e),
                        });
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                crate::fault::at(crate::fault::Step::PushBlobUploaded);
                if is_layer {
                    progress.event(Event::Done(digest));
                }
                Ok::<(), RegistryError>(())
            }
        };
        stream::iter(layers.iter().map(|(d, s)| upload(d.clone(), *s, true)))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        upload(config.clone(), m.config.size, false).await?;
        let media_type = m.media_type.clone().unwrap_or_else(|| OCI_MANIFEST.into());
        let header = media_type
            .parse()
            .map_err(|_| RegistryError::Image(ImageError::Corrupt(img.manifest_digest.clone())))?;
        client
            .push_manifest_raw(&oref, body.clone(), header)
            .await
            .map_err(&err)?;
        Ok::<(), RegistryError>(())
    })?;
    drop(rt);
    crate::fault::at(crate::fault::Step::PushManifestPushed);
    let digest = Digest::of(&body);
    ctx.db
        .add_repo_digest(&format!("{}@{}", r.repository(), digest), &id)
        .map_err(ImageError::from)?;
    Ok(Pushed {
        digest,
        size: body.len(),
    })
}

/// A reference in `domain` for calls about the registry itself, not one repository.
fn in_registry(domain: &str, path: &str) -> ImageRef {
    ImageRef {
        domain: domain.to_string(),
        path: path.into(),
        tag: Some("latest".into()),
        digest: None,
    }
}

/// The repositories a registry lists in its catalog (`/v2/_catalog`), every page.
pub fn catalog(domain: &str, opts: &Options) -> Result<Vec<String>, RegistryError> {
    let r = in_registry(domain, "catalog");
    let (client, auth, oref, rt) = session(&r, opts)?;
    let err = wrap(&r);
    rt.block_on(async {
        let mut all: Vec<String> = Vec::new();
        loop {
            const PAGE: usize = 100;
            let page = client
                .catalog(&oref, &auth, Some(PAGE), all.last().map(String::as_str))
                .await
                .map_err(&err)?;
            let n = page.repositories.len();
            all.extend(page.repositories);
            if n < PAGE {
                return Ok(all);
            }
        }
    })
}

/// One result of a registry's v1 search API, with its field names.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SearchResult {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(serde::Deserialize)]
struct SearchPage {
    results: Vec<SearchResult>,
}

/// The registry's v1 search (`/v1/search?q=TEXT&n=LIMIT`), or None when it has none: a
/// registry that is only a v2 registry answers 404 (or anything that is not a page of
/// results), and its catalog is searched instead.
pub fn v1_search(
    domain: &str,
    text: &str,
    limit: usize,
    opts: &Options,
) -> Result<Option<Vec<SearchResult>>, RegistryError> {
    let scheme = if plain_http(domain, opts.insecure) {
        "http"
    } else {
        "https"
    };
    let err = |source| RegistryError::Search {
        domain: domain.to_string(),
        source,
    };
    runtime()?.block_on(async {
        let mut req = reqwest::Client::new()
            .get(format!("{scheme}://{domain}/v1/search"))
            .query(&[("q", text), ("n", &limit.to_string())]);
        if let Some((user, password)) = &opts.credentials {
            req = req.basic_auth(user, Some(password));
        }
        let resp = req.send().await.map_err(err)?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Unauthorized(domain.to_string()));
        }
        if !resp.status().is_success() {
            return Ok(None);
        }
        Ok(resp.json::<SearchPage>().await.ok().map(|p| p.results))
    })
}

/// Checks credentials against a registry, as `login` does.
pub fn login(domain: &str, opts: &Options) -> Result<(), RegistryError> {
    let r = in_registry(domain, "library/wharf-login-check");
    let (client, auth, oref, rt) = session(&r, opts)?;
    let err = wrap(&r);
    let checked = rt.block_on(async {
        // A token registry checks the credentials when it issues the token.
        client
            .auth(&oref, &auth, RegistryOperation::Pull)
            .await
            .map_err(&err)?;
        // Basic auth is only checked when a request carries it; a missing repository
        // answers 404 to good credentials and 401 to bad ones.
        client
            .pull_manifest_raw(&oref, &auth, ACCEPT)
            .await
            .map_err(&err)
    });
    match checked {
        Ok(_) | Err(RegistryError::NotFound(_)) => Ok(()),
        Err(RegistryError::Unauthorized(_)) => {
            Err(RegistryError::BadCredentials(domain.to_string()))
        }
        Err(e) => Err(e),
    }
}
