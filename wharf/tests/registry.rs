//! pull, push, login and logout against Debian's docker-registry on 127.0.0.1, and
//! interoperability with skopeo through the same registry.

mod common;

use std::io::Write;

use common::{have, tool, Env, Registry};

fn skopeo(args: &[&str]) -> String {
    tool(std::process::Command::new("skopeo").args(args))
}

#[test]
fn push_then_pull_into_a_fresh_store() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let id = env.import("reg", "reg:1");
    let name = format!("{}/team/bb:1", reg.host());
    env.ok(&["tag", "reg:1", &name]);
    let out = env.ok(&["push", &name]);
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/team/bb]\n",
            reg.host()
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed\n"), "{out}");
    let digest_line = out.lines().last().unwrap().to_string();
    assert!(digest_line.starts_with("1: digest: sha256:"), "{out}");
    let again = env.ok(&["push", &name]);
    assert!(again.contains(": Layer already exists\n"), "{again}");

    let other = Env::new();
    let out = other.ok(&["pull", &name]);
    let digest = digest_line.split(' ').nth(2).unwrap();
    assert!(out.starts_with("1: Pulling from team/bb\n"), "{out}");
    assert!(out.contains(": Pull complete\n"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    assert!(
        out.ends_with(&format!(
            "Status: Downloaded newer image for {name}\n{name}\n"
        )),
        "{out}"
    );
    assert_eq!(
        other
            .ok(&["image", "inspect", "-f", "{{.Id}}", &name])
            .trim(),
        id
    );
    let out = other.ok(&["pull", &name]);
    assert!(out.contains(": Already exists\n"), "{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}\n")),
        "{out}"
    );
    let digests = other.ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert_eq!(digests.trim(), digest);
    // Each pull is an image event, the push one in the pusher's store.
    let events = |e: &Env| {
        e.ok(&[
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--filter",
            "type=image",
            "--filter",
            "event=pull",
            "--filter",
            "event=push",
            "--format",
            "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
        ])
    };
    let repo = format!("{}/team/bb", reg.host());
    assert_eq!(
        events(&other),
        format!("pull {name} {repo}\npull {name} {repo}\n")
    );
    assert_eq!(
        events(&env)
            .lines()
            .filter(|l| l.starts_with("push "))
            .count(),
        2
    );
    // By digest too.
    let by_digest = format!("{}/team/bb@{digest}", reg.host());
    let third = Env::new();
    third.ok(&["pull", &by_digest]);
    assert_eq!(third.ok(&["images", "-q", "--no-trunc"]).trim(), id);
}

#[test]
fn skopeo_and_wharf_exchange_images_through_the_registry() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") || !have("/usr/bin/skopeo", "skopeo") {
        return;
    }
    let env = Env::new();
    let id = env.import("sk", "sk:1");
    let pushed = format!("{}/from-wharf:1", reg.host());
    env.ok(&["tag", "sk:1", &pushed]);
    env.ok(&["push", &pushed]);
    let copied = env.path("copied.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{pushed}"),
        &format!("oci-archive:{}:x", copied.display()),
    ]);
    let info = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{pushed}"),
    ]);
    assert!(info.contains("\"Architecture\": \"amd64\""), "{info}");

    for (transport, name) in [("docker-archive", "sk-docker"), ("oci-archive", "sk-oci")] {
        let saved = env.path(&format!("{name}.tar"));
        let fmt = if transport == "docker-archive" {
            "docker-archive"
        } else {
            "oci-archive"
        };
        env.ok(&[
            "save",
            "--format",
            fmt,
            "-o",
            saved.to_str().unwrap(),
            "sk:1",
        ]);
        let src = if transport == "docker-archive" {
            format!("docker-archive:{}", saved.display())
        } else {
            format!("oci-archive:{}:1", saved.display())
        };
        let dest = format!("{}/{name}:2", reg.host());
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &src,
            &format!("docker://{dest}"),
        ]);
        let other = Env::new();
        other.ok(&["pull", &dest]);
        assert_eq!(
            other
                .ok(&["image", "inspect", "-f", "{{.Id}}", &dest])
                .trim(),
            id,
            "{transport}"
        );
    }
}

#[test]
fn login_logout_and_wrong_passwords() {
    let Some(reg) = Registry::start(Some(("alice", "s3cret"))) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    env.import("auth", "auth:1");
    let name = format!("{}/auth:1", reg.host());
    env.ok(&["tag", "auth:1", &name]);
    let err = env.fails(&["push", &name]);
    assert!(err.contains("unauthorized"), "{err}");

    let err = env.fails(&["login", "-u", "alice", "-p", "wrong", &reg.host()]);
    assert!(err.contains("login failed: unauthorized"), "{err}");
    let config = env.path("docker-config/config.json");
    assert!(!config.exists());

    let mut login = env.wharf();
    login.args(["login", "-u", "alice", "--password-stdin", &reg.host()]);
    let out = login.write_stdin("s3cret\n").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(cfg["auths"][reg.host()]["auth"].is_string(), "{cfg}");

    env.ok(&["push", &name]);
    let other = Env::new();
    // Same docker config directory: the credentials are shared, the image store is not.
    let mut pull = other.wharf();
    pull.env("DOCKER_CONFIG", env.path("docker-config"));
    let out = pull.args(["pull", &name]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        env.ok(&["logout", &reg.host()]),
        format!("Removing login credentials for {}\n", reg.host())
    );
    assert_eq!(
        env.ok(&["logout", &reg.host()]),
        format!("Not logged in to {}\n", reg.host())
    );
    assert!(env.fails(&["push", &name]).contains("unauthorized"));
}

#[test]
fn unreachable_registry_and_missing_image_change_nothing() {
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    env.import("u", "u:1");
    let before = env.snapshot();
    // Port 1 (tcpmux) is not served here; a port we found free could be taken meanwhile.
    let err = env.fails(&["pull", "127.0.0.1:1/x:1"]);
    assert!(err.contains("Connection refused"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    if let Some(reg) = Registry::start(None) {
        let err = env.fails(&["pull", &format!("{}/absent:1", reg.host())]);
        assert!(err.contains("not found: manifest unknown"), "{err}");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn corrupt_blob_in_registry_is_rejected() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    env.import("cb", "cb:1");
    let name = format!("{}/cb:1", reg.host());
    env.ok(&["tag", "cb:1", &name]);
    env.ok(&["push", &name]);
    let layer = env.ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .RootFS.Layers 0}}",
        &name,
    ]);
    let file = reg.blob_file(layer.trim());
    let mut data = std::fs::read(&file).unwrap();
    let n = data.len() / 2;
    data[n] ^= 0xff;
    std::fs::File::create(&file)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let other = Env::new();
    other.ok(&["image", "prune", "-f"]);
    let before = other.snapshot();
    let err = other.fails(&["pull", &name]);
    assert!(err.to_lowercase().contains("digest"), "{err}");
    assert_eq!(other.ok(&["images", "-q"]), "");
    other.ok(&["image", "prune", "-f"]);
    assert_eq!(other.snapshot(), before);
}

/// A layer of `bytes` incompressible bytes in one file `big`, written to `file` under the
/// environment's directory.
fn big_tarball(env: &Env, file: &str, bytes: usize) -> std::path::PathBuf {
    let path = env.path(file);
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut data = vec![0u8; bytes];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "big", &data[..]).unwrap();
    b.into_inner().unwrap().flush().unwrap();
    path
}

/// A tmpfs mounted on `path` (created if needed), unmounted when dropped, so a test's
/// data root can run out of space.
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    /// None (after printing why) when this process may not mount.
    fn mount(path: &std::path::Path, bytes: u64) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let opts = format!("size={bytes},mode=0755");
        match nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        ) {
            Ok(()) => Some(Self {
                path: path.to_path_buf(),
            }),
            Err(e) => {
                integration::skip(&format!("cannot mount a tmpfs ({e}); run as root"));
                None
            }
        }
    }

    fn resize(&self, bytes: u64) {
        let opts = format!("size={bytes}");
        nix::mount::mount(
            None::<&str>,
            &self.path,
            None::<&str>,
            nix::mount::MsFlags::MS_REMOUNT,
            Some(opts.as_str()),
        )
        .expect("remount tmpfs");
    }

    fn free(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(&self.path).expect("statvfs");
        s.blocks_available() * s.fragment_size()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn full_disk_during_pull_is_one_error_and_changes_nothing() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    // Declared after env, so it is unmounted before env's directory is removed.
    let Some(disk) = Tmpfs::mount(&env.root(), 16 << 20) else {
        return;
    };
    let kept = env.import("disk", "disk:1");
    let free = disk.free() as usize;
    // One layer whose blob cannot be downloaded, one whose blob fits but whose unpacked
    // copy does not.
    let src = Env::new();
    let mut pulls = Vec::new();
    for (name, bytes) in [("blob", free * 2), ("unpack", free * 6 / 10)] {
        let t = big_tarball(&src, &format!("{name}.tar"), bytes);
        let image = format!("{}/full-{name}:1", reg.host());
        let id = src.ok(&["import", t.to_str().unwrap(), &image]);
        src.ok(&["push", &image]);
        let layer = src.ok(&[
            "image",
            "inspect",
            "-f",
            "{{index .RootFS.Layers 0}}",
            &image,
        ]);
        pulls.push((name, image, id.trim().to_string(), layer.trim().to_string()));
    }
    let list = [
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}} {{.Size}} {{.CreatedAt}}",
    ];
    let listing = env.ok(&list);
    let before = env.snapshot();
    for (stage, image, _, layer) in &pulls {
        let err = env.fails(&["pull", image]);
        assert_eq!(err.lines().count(), 1, "{stage}: {err}");
        assert!(err.contains("No space left on device"), "{stage}: {err}");
        // The message names what was being written.
        let what = match *stage {
            "blob" => format!("writing blob {layer} to {}", env.root().display()),
            _ => format!("layer {layer}: layer entry \"big\": write: "),
        };
        assert!(err.contains(&what), "{stage}: {err}");
        assert_eq!(env.ok(&list), listing, "{stage}");
        assert_eq!(env.snapshot(), before, "{stage}");
        for tmp in ["images/blobs/tmp", "snapshots/tmp"] {
            let left = std::fs::read_dir(env.root().join(tmp)).unwrap().count();
            assert_eq!(left, 0, "{stage}: leftovers in {tmp}");
        }
    }
    // Room for both images, blob and unpacked copy each.
    disk.resize(free as u64 * 8 + (16 << 20));
    for (_, image, id, _) in &pulls {
        env.ok(&["pull", "-q", image]);
        assert_eq!(
            env.ok(&["image", "inspect", "-f", "{{.Id}}", image]).trim(),
            id
        );
    }
    assert_eq!(
        env.ok(&["image", "inspect", "-f", "{{.Id}}", "disk:1"])
            .trim(),
        kept
    );
}

#[test]
fn kill_during_pull_leaves_no_half_image() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let env = Env::new();
    // Big enough that a pull takes long enough to be interrupted.
    let t = big_tarball(&env, "big.tar", 96 << 20);
    let name = format!("{}/big:1", reg.host());
    let id = env
        .ok(&["import", t.to_str().unwrap(), &name])
        .trim()
        .to_string();
    env.ok(&["push", &name]);

    let other = Env::new();
    other.ok(&["image", "prune", "-f"]);
    let before = other.snapshot();
    let mut killed_in = Vec::new();
    // Kill once while blobs download and once while the layer unpacks.
    for (dir, what) in [
        ("images/blobs/tmp", "download"),
        ("snapshots/tmp", "unpack"),
    ] {
        let watch = other.root().join(dir);
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("wharf"))
            .arg("--data-root")
            .arg(other.root())
            .args(["pull", "-q", &name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut caught = false;
        while std::time::Instant::now() < deadline {
            if std::fs::read_dir(&watch)
                .map(|d| d.count() > 0)
                .unwrap_or(false)
            {
                caught = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::yield_now();
        }
        let _ = child.kill();
        let _ = child.wait();
        if caught {
            killed_in.push(what);
        }
        assert_eq!(
            other.ok(&["images", "-q"]),
            "",
            "half image visible after kill during {what}"
        );
    }
    assert!(
        !killed_in.is_empty(),
        "the pull finished before it could be interrupted"
    );
    // An exclusive command clears the leftovers; then the store is as before.
    other.ok(&["image", "prune", "-f"]);
    assert_eq!(other.snapshot(), before);
    other.ok(&["pull", &name]);
    assert_eq!(other.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    eprintln!("killed during: {killed_in:?}");
}

/// PUTs a raw manifest document, as a registry client would, over plain HTTP/1.0.
fn put_manifest(reg: &Registry, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", reg.port)).unwrap();
    let head = format!(
        "PUT /v2/{repo}/manifests/{reference} HTTP/1.0\r\nHost: {}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\n\r\n",
        reg.host(),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.0 201") || resp.starts_with("HTTP/1.1 201"),
        "{resp}"
    );
}

#[test]
fn multi_arch_index_resolves_to_the_requested_platform() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let mut manifests = Vec::new();
    let mut ids = Vec::new();
    for arch in ["arm64", "amd64"] {
        let id = env.import(arch, &format!("{}/multi:{arch}", reg.host()));
        let out = env.ok(&["push", &format!("{}/multi:{arch}", reg.host())]);
        let line = out.lines().last().unwrap().to_string();
        let digest = line.split(' ').nth(2).unwrap().to_string();
        let size: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "platform": {"os": "linux", "architecture": arch},
        }));
        ids.push(id);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    put_manifest(
        &reg,
        "multi",
        "all",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    let name = format!("{}/multi:all", reg.host());
    let index_digest = format!("sha256:{}", {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&index))
    });
    for (platform, id) in [(None, &ids[1]), (Some("linux/arm64"), &ids[0])] {
        let other = Env::new();
        let mut args = vec!["pull"];
        if let Some(p) = platform {
            args.extend(["--platform", p]);
        }
        args.push(&name);
        let out = other.ok(&args);
        assert!(out.contains(&format!("Digest: {index_digest}\n")), "{out}");
        assert_eq!(
            other.ok(&["images", "-q", "--no-trunc"]).trim(),
            id.as_str(),
            "{platform:?}"
        );
    }
    let err = Env::new().fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
}

#[test]
fn concurrent_pulls_and_imports_share_the_store() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let name = format!("{}/conc:1", reg.host());
    env.import("conc", &name);
    env.ok(&["push", &name]);
    let other = Env::new();
    let tarballs: Vec<_> = (0..3)
        .map(|i| other.busybox_tarball(&format!("c{i}")))
        .collect();
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("wharf"));
            cmd.arg("--data-root").arg(other.root()).args([
                "import",
                tarballs[i].to_str().unwrap(),
                &format!("c:{i}"),
            ]);
            let mut pull = std::process::Command::new(assert_cmd::cargo::cargo_bin("wharf"));
            pull.arg("--data-root")
                .arg(other.root())
                .args(["pull", "-q", &name]);
            (cmd.spawn().unwrap(), pull.spawn().unwrap())
        })
        .collect();
    for (mut a, mut b) in handles {
        assert!(a.wait().unwrap().success());
        assert!(b.wait().unwrap().success());
    }
    let mut names: Vec<String> = other
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    let mut want = vec!["c:0".to_string(), "c:1".into(), "c:2".into(), name.clone()];
    want.sort();
    assert_eq!(names, want);
}

/// A token-auth front for a registry, as docker's Hub and most registries do it: a
/// request without a valid bearer token gets a 401 with a `WWW-Authenticate: Bearer`
/// challenge; `/token` issues tokens for the right basic credentials only; requests with
/// an issued token are relayed to the registry behind. Records what it saw.
struct TokenFront {
    port: u16,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// One HTTP/1.1 request: the request line, headers and body.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn read(s: &mut impl std::io::BufRead) -> Option<Self> {
        let mut line = String::new();
        s.read_line(&mut line).ok()?;
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            s.read_line(&mut h).ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':')?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap_or(0));
        let mut body = vec![0; len];
        s.read_exact(&mut body).ok()?;
        Some(Self {
            method,
            target,
            headers,
            body,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn respond(s: &mut std::net::TcpStream, status: &str, extra: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
}

impl TokenFront {
    fn start(backend: u16, user: &'static str, password: &'static str) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tokens = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let (log2, stop2) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (log, tokens) = (log2.clone(), tokens.clone());
                std::thread::spawn(move || {
                    Self::serve(conn, port, backend, (user, password), &log, &tokens)
                });
            }
        });
        Self {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// Answers one request and closes the connection.
    fn serve(
        mut conn: std::net::TcpStream,
        port: u16,
        backend: u16,
        creds: (&str, &str),
        log: &std::sync::Mutex<Vec<String>>,
        tokens: &std::sync::Mutex<Vec<String>>,
    ) {
        use base64::Engine as _;
        use std::io::Read;
        let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
        let Some(req) = Request::read(&mut reader) else {
            return;
        };
        let note = |s: String| log.lock().unwrap().push(s);
        if let Some(query) = req.target.strip_prefix("/token?") {
            let basic = req
                .header("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            let scope = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("scope="))
                .unwrap_or("")
                .replace("%3A", ":")
                .replace("%2F", "/")
                .replace("%2C", ",");
            note(format!(
                "token scope={scope} basic={}",
                basic.as_deref().unwrap_or("-")
            ));
            if basic.as_deref() == Some(&format!("{}:{}", creds.0, creds.1)) {
                let token = format!("t{}", tokens.lock().unwrap().len());
                tokens.lock().unwrap().push(token.clone());
                respond(
                    &mut conn,
                    "200 OK",
                    "",
                    &format!(r#"{{"token":"{token}"}}"#),
                );
            } else {
                respond(
                    &mut conn,
                    "401 Unauthorized",
                    "",
                    r#"{"details":"incorrect username or password"}"#,
                );
            }
            return;
        }
        let bearer = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::to_string);
        if !bearer.is_some_and(|t| tokens.lock().unwrap().contains(&t)) {
            note(format!("challenge {} {}", req.method, req.target));
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"wharf-test\"\r\n"
            );
            respond(
                &mut conn,
                "401 Unauthorized",
                &challenge,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
            );
            return;
        }
        note(format!("relay {} {}", req.method, req.target));
        let mut up = std::net::TcpStream::connect(("127.0.0.1", backend)).unwrap();
        let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
        for (k, v) in &req.headers {
            if k != "connection" && k != "authorization" {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str("connection: close\r\n\r\n");
        up.write_all(head.as_bytes()).unwrap();
        up.write_all(&req.body).unwrap();
        let mut answer = Vec::new();
        let _ = up.read_to_end(&mut answer);
        let _ = conn.write_all(&answer);
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TokenFront {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn bearer_token_flow_login_logout_and_wrong_password() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let front = TokenFront::start(reg.port, "alice", "s3cret");
    let host = front.host();
    let name = format!("{host}/tok/app:1");

    // Push with credentials from `login`: challenge, token for pull+push, then relayed.
    let src = Env::new();
    let id = src.import("tok", &name);
    let err = src.fails(&["push", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let mut login = src.wharf();
    login.args(["login", "-u", "alice", "--password-stdin", &host]);
    let out = login.write_stdin("s3cret\n").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    src.ok(&["push", &name]);
    let log = front.log();
    assert!(log.iter().any(|l| l == "challenge GET /v2/"), "{log:?}");
    assert!(
        log.contains(&"token scope=repository:tok/app:pull,push basic=alice:s3cret".to_string()),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("relay PUT /v2/tok/app/manifests/1")),
        "{log:?}"
    );

    // Credentials go where docker keeps them: $HOME/.docker/config.json without
    // DOCKER_CONFIG.
    let env = Env::new();
    let home = env.path("home");
    let cmd = |args: &[&str]| {
        let mut c = env.wharf();
        c.env_remove("DOCKER_CONFIG").env("HOME", &home).args(args);
        c
    };
    let out = cmd(&["login", "-u", "alice", "-p", "wrong", &host])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // After docker's warning about -p, one error line.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().last(),
        Some(
            format!("Error: login failed: unauthorized: incorrect username or password for {host}")
                .as_str()
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");
    let config = home.join(".docker/config.json");
    assert!(!config.exists());
    let err = String::from_utf8(cmd(&["pull", &name]).output().unwrap().stderr).unwrap();
    assert!(err.contains("unauthorized"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = cmd(&["login", "-u", "alice", "-p", "s3cret", &host])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    use base64::Engine as _;
    assert_eq!(
        cfg["auths"][&host]["auth"],
        base64::engine::general_purpose::STANDARD
            .encode("alice:s3cret")
            .as_str()
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = front.log().len();
    let out = cmd(&["pull", &name]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.ok(&["image", "inspect", "-f", "{{.Id}}", &name]).trim(),
        id
    );
    let log = front.log()[before..].to_vec();
    assert!(
        log.contains(&"token scope=repository:tok/app:pull basic=alice:s3cret".to_string()),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("relay GET /v2/tok/app/blobs/")),
        "{log:?}"
    );

    let out = cmd(&["logout", &host]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Removing login credentials for {host}\n")
    );
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(cfg["auths"].get(&host).is_none(), "{cfg}");
    let other = Env::new();
    let mut pull = other.wharf();
    pull.env_remove("DOCKER_CONFIG")
        .env("HOME", &home)
        .args(["pull", &name]);
    let out = pull.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
}

#[test]
fn build_pulls_a_missing_base_image() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let name = format!("{}/base/bb:1", reg.host());
    let id = env.import("base", &name);
    env.ok(&["push", &name]);
    // A fresh store has no base: the build pulls it. Metadata steps need no runtime.
    let other = Env::new();
    let ctx = other.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {name}\nENV MODE=pulled\nCMD [\"sh\"]\n"),
    )
    .unwrap();
    let out = other.ok(&["build", "-t", "derived", ctx.to_str().unwrap()]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert!(out.contains("Successfully tagged derived:latest"), "{out}");
    assert_eq!(
        other
            .ok(&["image", "inspect", "-f", "{{.Id}}", &name])
            .trim(),
        id.trim()
    );
    let env_line = other.ok(&["image", "inspect", "-f", "{{json .Config.Env}}", "derived"]);
    assert!(env_line.contains("MODE=pulled"), "{env_line}");
    // --pull asks the registry again even with the base in the store.
    let out = other.ok(&["build", "--pull", ctx.to_str().unwrap()]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );
}

/// A v1 search endpoint on 127.0.0.1 that answers every request with `body` and records
/// the request lines it got.
struct SearchApi {
    port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SearchApi {
    fn start(body: &'static str) -> Self {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        // The thread ends with the test process; each connection is answered and closed.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                seen.lock().unwrap().push(line.trim().to_string());
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { port, requests }
    }
}

#[test]
fn search_uses_the_v1_api_where_there_is_one_and_filters_and_truncates() {
    let api = SearchApi::start(
        r#"{"num_results":2,"query":"web","results":[
            {"name":"web/server","description":"A small web server that serves files from a directory of your choice","star_count":12,"is_official":true,"is_automated":false},
            {"name":"web/proxy","description":"proxy","star_count":3,"is_official":false,"is_automated":true}]}"#,
    );
    let env = Env::new();
    let host = format!("127.0.0.1:{}", api.port);
    let out = env.ok(&["search", &format!("{host}/web")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("OFFICIAL"),
        "{out}"
    );
    assert!(
        lines[1].contains("web/server")
            && lines[1].contains("A small web server that serves files from a …")
            && lines[1].contains("12")
            && lines[1].contains("[OK]"),
        "{out}"
    );
    assert!(!lines[2].contains("[OK]"), "{out}");
    assert_eq!(
        api.requests.lock().unwrap()[0],
        "GET /v1/search?q=web&n=25 HTTP/1.1"
    );
    let full = env.ok(&["search", "--no-trunc", &format!("{host}/web")]);
    assert!(full.contains("of your choice"), "{full}");
    let starred = env.ok(&[
        "search",
        "--filter",
        "stars=5",
        "--format",
        "{{.Name}} {{.StarCount}} {{.IsOfficial}}",
        &format!("{host}/web"),
    ]);
    assert_eq!(starred, "web/server 12 [OK]\n");
    let unofficial = env.ok(&[
        "search",
        "--filter",
        "is-official=false",
        "--format",
        "{{.Name}}",
        &format!("{host}/web"),
    ]);
    assert_eq!(unofficial, "web/proxy\n");
    let json = env.ok(&[
        "search",
        "--limit",
        "1",
        "--format",
        "json",
        &format!("{host}/web"),
    ]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON line");
    assert_eq!(v["Name"], "web/server");
    for (args, msg) in [
        (vec!["--filter", "stars=x"], "invalid filter 'stars=x'"),
        (vec!["--filter", "colour=red"], "invalid filter 'colour'"),
        (
            vec!["--limit", "0"],
            "limit 0 is outside the range of [1, 100]",
        ),
    ] {
        let mut all = vec!["search"];
        all.extend(args);
        let target = format!("{host}/web");
        all.push(&target);
        let err = env.fails(&all);
        assert!(err.contains(msg), "{all:?}: {err}");
    }
}

#[test]
fn search_reads_the_catalog_of_a_registry_without_a_search_api() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    env.import("s", "s:1");
    for repo in ["team/searchable", "team/other"] {
        let name = format!("{}/{repo}:1", reg.host());
        env.ok(&["tag", "s:1", &name]);
        env.ok(&["push", &name]);
    }
    let out = env.ok(&["search", &format!("{}/search", reg.host())]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    // A catalog has no description, stars or official mark: 0 stars, blank OFFICIAL.
    assert_eq!(
        cols,
        [format!("{}/team/searchable", reg.host()).as_str(), "0"],
        "{out}"
    );
    let none = env.ok(&[
        "search",
        "--filter",
        "stars=1",
        &format!("{}/team", reg.host()),
    ]);
    assert_eq!(none.lines().count(), 1, "only the header: {none}");
}

/// Twenty pulls of one image into one store at once (#20's load): each exits 0 without a
/// lock error reaching the user, the store holds the image once, and every blob file's
/// content matches its name.
#[test]
fn twenty_pulls_of_one_image_at_once() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let pusher = Env::new();
    pusher.import("load", "load:1");
    let name = format!("{}/load/bb:1", reg.host());
    pusher.ok(&["tag", "load:1", &name]);
    pusher.ok(&["push", &name]);
    let env = Env::new();
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let pulls: Vec<_> = (0..20)
            .map(|_| s.spawn(|| env.run(&["pull", &name])))
            .collect();
        pulls.into_iter().map(|p| p.join().unwrap()).collect()
    });
    for (i, out) in outs.iter().enumerate() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(out.status.success(), "pull {i}: {text}");
        assert!(!text.contains("locked"), "pull {i}: {text}");
        assert!(text.ends_with(&format!("{name}\n")), "pull {i}: {text}");
    }
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), 1);
    let blobs = env.root().join("images/blobs/sha256");
    for e in std::fs::read_dir(&blobs).unwrap().flatten() {
        use sha2::Digest as _;
        let data = std::fs::read(e.path()).unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&data)),
            e.file_name().to_string_lossy(),
            "a damaged blob"
        );
    }
    let tmp: Vec<_> = std::fs::read_dir(env.root().join("images/blobs/tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    env.ok(&["image", "inspect", &name]);
}
