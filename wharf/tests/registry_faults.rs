//! The registry client against a registry that misbehaves on purpose: it drops the
//! connection in the middle of a blob, answers 500 or 429, or sends bytes that do not match
//! the digest; on push it answers an upload with 500, 503 or 429. wharf retries with back-off where docker retries (drops, 5xx, damaged
//! bytes; a dropped transfer resumes with a Range request), gives up at once where docker
//! does (429), never stores a wrong blob and names the blob that failed.

mod common;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::Env;
use wharf::image::digest::Digest;

/// What the registry does to one request for a blob.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Sends the headers and half the bytes, then closes the connection.
    Drop,
    Status(u16),
    /// Sends every byte with the last one changed.
    Corrupt,
}

#[derive(Default)]
struct Plan {
    /// Faults for the next requests of each blob, by digest, in order.
    faults: HashMap<String, VecDeque<Fault>>,
    /// Each blob request as received: its digest and Range header, if any.
    seen: Vec<(String, Option<String>)>,
    /// Blobs pushed, by the digest the client named.
    pushed: HashMap<String, Vec<u8>>,
}

/// A registry serving one image (`fault/bb:1`) from memory on 127.0.0.1.
struct FaultyRegistry {
    port: u16,
    plan: Arc<Mutex<Plan>>,
    layer: String,
    config: String,
}

impl FaultyRegistry {
    fn start(env: &Env) -> Self {
        let gz = std::fs::read(env.busybox_tarball("faulty")).expect("layer");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .expect("gunzip");
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": wharf::operations::system::go_arch(),
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(&tar).to_string()]},
        }))
        .unwrap();
        let layer = Digest::of(&gz).to_string();
        let config_digest = Digest::of(&config).to_string();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer, "size": gz.len()}],
        }))
        .unwrap();
        let blobs: HashMap<String, Vec<u8>> =
            [(layer.clone(), gz), (config_digest.clone(), config)].into();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let shared = plan.clone();
        // Serves until the test process ends; each test has its own port.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                serve(conn, &manifest, &blobs, &shared);
            }
        });
        Self {
            port,
            plan,
            layer,
            config: config_digest,
        }
    }

    fn image(&self) -> String {
        format!("127.0.0.1:{}/fault/bb:1", self.port)
    }

    fn fail(&self, digest: &str, faults: &[Fault]) {
        self.plan
            .lock()
            .unwrap()
            .faults
            .insert(digest.to_string(), faults.iter().copied().collect());
    }

    fn seen(&self, digest: &str) -> Vec<Option<String>> {
        self.plan
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|(d, _)| d == digest)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

fn respond(conn: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

fn serve(
    mut conn: TcpStream,
    manifest: &[u8],
    blobs: &HashMap<String, Vec<u8>>,
    plan: &Mutex<Plan>,
) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut range = None;
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let head_only = method == "HEAD";
    if path == "/v2/" {
        return respond(&mut conn, "200 OK", &[], b"{}");
    }
    if path.starts_with("/v2/fault/pushed/") {
        return receive(&mut conn, method, path, body, plan);
    }
    if path.starts_with("/v2/fault/bb/manifests/") {
        let headers = [
            (
                "Content-Type",
                "application/vnd.oci.image.manifest.v1+json".to_string(),
            ),
            ("Docker-Content-Digest", Digest::of(manifest).to_string()),
        ];
        let body = if head_only { &[][..] } else { manifest };
        return respond(&mut conn, "200 OK", &headers, body);
    }
    let Some(digest) = path.strip_prefix("/v2/fault/bb/blobs/") else {
        return respond(&mut conn, "404 Not Found", &[], b"");
    };
    let Some(blob) = blobs.get(digest) else {
        return respond(&mut conn, "404 Not Found", &[], b"");
    };
    let fault = {
        let mut p = plan.lock().unwrap();
        p.seen.push((digest.to_string(), range.clone()));
        p.faults.get_mut(digest).and_then(VecDeque::pop_front)
    };
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    let (status, body) = if start > 0 {
        ("206 Partial Content", &blob[start..])
    } else {
        ("200 OK", &blob[..])
    };
    match fault {
        None => respond(&mut conn, status, &[], body),
        Some(Fault::Status(429)) => respond(
            &mut conn,
            "429 Too Many Requests",
            &[],
            b"too many requests, slow down",
        ),
        Some(Fault::Status(code)) => respond(
            &mut conn,
            &format!("{code} Internal Server Error"),
            &[],
            b"the registry broke",
        ),
        Some(Fault::Corrupt) => {
            let mut bad = body.to_vec();
            if let Some(last) = bad.last_mut() {
                *last ^= 0xff;
            }
            respond(&mut conn, status, &[], &bad);
        }
        Some(Fault::Drop) => {
            let head = format!(
                "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body[..body.len() / 2]);
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The push side of `fault/pushed`: nothing is there yet, an upload is one POST and one
/// PUT (oci-client's monolithic push), and a PUT may meet the blob's planned fault.
fn receive(conn: &mut TcpStream, method: &str, path: &str, body: Vec<u8>, plan: &Mutex<Plan>) {
    let created = |conn: &mut TcpStream, location: &str, digest: &str| {
        let headers = [
            ("Location", location.to_string()),
            ("Docker-Content-Digest", digest.to_string()),
        ];
        respond(conn, "201 Created", &headers, b"");
    };
    match method {
        "HEAD" | "GET" => respond(conn, "404 Not Found", &[], b""),
        "POST" => {
            let location = [("Location", "/v2/fault/pushed/blobs/uploads/u".to_string())];
            respond(conn, "202 Accepted", &location, b"");
        }
        "PUT" if path.contains("/manifests/") => {
            created(conn, path, Digest::of(&body).as_str());
        }
        "PUT" => {
            let digest = path
                .rsplit("digest=")
                .next()
                .unwrap_or("")
                .replace("%3A", ":");
            let fault = {
                let mut p = plan.lock().unwrap();
                p.seen.push((digest.clone(), None));
                p.faults.get_mut(&digest).and_then(VecDeque::pop_front)
            };
            match fault {
                Some(Fault::Status(429)) => {
                    respond(conn, "429 Too Many Requests", &[], b"slow down")
                }
                Some(Fault::Status(code)) => {
                    respond(conn, &format!("{code} Server Error"), &[], b"broke")
                }
                _ => {
                    plan.lock().unwrap().pushed.insert(digest.clone(), body);
                    let location = format!("/v2/fault/pushed/blobs/{digest}");
                    created(conn, &location, &digest);
                }
            }
        }
        _ => respond(conn, "405 Method Not Allowed", &[], b""),
    }
}

/// Files in the content store's blob directory and its temporary directory.
fn stored(env: &Env) -> (Vec<String>, Vec<String>) {
    let names = |rel: &str| -> Vec<String> {
        std::fs::read_dir(env.root().join(rel))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    (names("images/blobs/sha256"), names("images/blobs/tmp"))
}

#[test]
fn a_dropped_transfer_resumes_and_a_server_error_is_retried() {
    if !common::have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let reg = FaultyRegistry::start(&env);
    reg.fail(&reg.layer, &[Fault::Drop, Fault::Status(500), Fault::Drop]);
    reg.fail(&reg.config, &[Fault::Status(503)]);
    let out = env.ok(&["pull", &reg.image()]);
    assert!(out.contains("Pull complete"), "{out}");
    let seen = reg.seen(&reg.layer);
    assert_eq!(seen.len(), 4, "{seen:?}");
    // After each drop the next request asks for the rest only.
    assert_eq!(seen[0], None);
    assert!(
        seen[1].as_deref().is_some_and(|r| r.starts_with("bytes=")),
        "{seen:?}"
    );
    assert!(seen[3].is_some(), "{seen:?}");
    let (blobs, tmp) = stored(&env);
    assert!(blobs.contains(&reg.layer.trim_start_matches("sha256:").to_string()));
    assert!(tmp.is_empty(), "{tmp:?}");
    env.ok(&["image", "inspect", &reg.image()]);
}

#[test]
fn too_many_requests_fails_at_once_naming_the_blob() {
    if !common::have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let reg = FaultyRegistry::start(&env);
    reg.fail(&reg.layer, &[Fault::Status(429)]);
    let err = env.fails(&["pull", &reg.image()]);
    println!("{err}");
    assert!(err.contains(&reg.layer), "{err}");
    assert!(err.contains("429"), "{err}");
    assert!(!err.contains("attempts"), "{err}");
    assert_eq!(reg.seen(&reg.layer).len(), 1);
    let (blobs, tmp) = stored(&env);
    assert!(!blobs.contains(&reg.layer.trim_start_matches("sha256:").to_string()));
    assert!(tmp.is_empty(), "{tmp:?}");
    assert_eq!(env.ok(&["images", "-q"]), "");
}

#[test]
fn a_blob_with_the_wrong_digest_is_never_stored() {
    if !common::have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let reg = FaultyRegistry::start(&env);
    reg.fail(&reg.layer, &[Fault::Corrupt; 5]);
    let err = env.fails(&["pull", &reg.image()]);
    println!("{err}");
    assert!(err.contains(&reg.layer), "{err}");
    assert!(err.contains("gave up after 5 attempts"), "{err}");
    assert_eq!(reg.seen(&reg.layer).len(), 5);
    let (blobs, tmp) = stored(&env);
    assert!(!blobs.contains(&reg.layer.trim_start_matches("sha256:").to_string()));
    assert!(tmp.is_empty(), "{tmp:?}");
    assert_eq!(env.ok(&["images", "-q"]), "");
    // Damaged once, the next attempt gets it whole.
    reg.fail(&reg.layer, &[Fault::Corrupt]);
    env.ok(&["pull", &reg.image()]);
    env.ok(&["image", "inspect", &reg.image()]);
}

#[test]
fn a_push_retries_a_server_error_and_stops_at_too_many_requests() {
    if !common::have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let reg = FaultyRegistry::start(&env);
    env.import("push", "local:1");
    let name = format!("127.0.0.1:{}/fault/pushed:1", reg.port);
    env.ok(&["tag", "local:1", &name]);
    // Every blob of the image (layer and config) meets two server errors first.
    let blobs: Vec<String> = std::fs::read_dir(env.root().join("images/blobs/sha256"))
        .unwrap()
        .flatten()
        .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
        .collect();
    for b in &blobs {
        reg.fail(b, &[Fault::Status(500), Fault::Status(503)]);
    }
    let out = env.ok(&["push", &name]);
    assert!(out.contains("digest: sha256:"), "{out}");
    let pushed = reg.plan.lock().unwrap().pushed.clone();
    assert!(!pushed.is_empty());
    for (digest, data) in &pushed {
        assert_eq!(&Digest::of(data).to_string(), digest, "a pushed blob");
        assert_eq!(
            reg.seen(digest).len(),
            3,
            "{digest}: two failures, then the upload"
        );
    }
    // Refused with 429: the push stops at once and names the blob.
    let other = format!("127.0.0.1:{}/fault/pushed:2", reg.port);
    env.ok(&["tag", "local:1", &other]);
    reg.plan.lock().unwrap().seen.clear();
    for b in &blobs {
        reg.fail(b, &[Fault::Status(429)]);
    }
    let err = env.fails(&["push", &other]);
    println!("{err}");
    assert!(err.contains("429"), "{err}");
    assert!(blobs.iter().any(|b| err.contains(b.as_str())), "{err}");
    for b in &blobs {
        assert!(reg.seen(b).len() <= 1, "{b}: retried after a 429");
    }
}
