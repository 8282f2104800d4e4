//! The Engine API service (`system service`) driven by real clients: Debian's docker CLI
//! (20.10, API 1.41), the docker 28 CLI where one is installed, and curl for the raw
//! endpoints and bad requests. Each test's service is ended by its guard (by pid).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, runtime, Guard};

/// A running `wharf system service` on a socket in the test's directory.
struct Service {
    child: Child,
    socket: PathBuf,
}

impl Service {
    fn start(g: &Guard, time: &str) -> Self {
        let socket = g.env.path("api.sock");
        let uri = format!("unix://{}", socket.display());
        let child = g
            .command(&["system", "service", "--time", time, &uri])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the service");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the service never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, socket }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// curl against the socket: (status, body).
    fn curl(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "20"]);
        // curl's -X HEAD would wait for a body; -I asks the HEAD way.
        if method == "HEAD" {
            c.arg("-I");
        } else {
            c.args(["-X", method]);
        }
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        c.arg("--unix-socket").arg(&self.socket);
        c.arg(format!("http://wharf{path}"));
        let out = c.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The docker CLIs installed here: Debian's and a newer one in /usr/local/bin.
fn clients() -> Vec<PathBuf> {
    ["/usr/bin/docker", "/usr/local/bin/docker"]
        .into_iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect()
}

fn docker(cli: &Path, s: &Service, args: &[&str]) -> Output {
    Command::new(cli)
        .env("DOCKER_HOST", s.host())
        .env("DOCKER_CONFIG", s.socket.with_file_name("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

/// `docker`, asserting success; its stdout.
fn docker_ok(cli: &Path, s: &Service, args: &[&str]) -> String {
    let out = docker(cli, s, args);
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn setup() -> Option<(Guard, Service)> {
    if !super::common::have("/usr/bin/curl", "curl") {
        return None;
    }
    let g = Guard::new(&runtime())?;
    let s = Service::start(&g, "0");
    Some((g, s))
}

#[test]
fn ping_versions_and_errors_as_dockerd_sends_them() {
    let Some((g, s)) = setup() else { return };
    let out = Command::new("curl")
        .args(["-s", "-i", "--unix-socket"])
        .arg(&s.socket)
        .arg("http://wharf/_ping")
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    for h in ["api-version: 1.41", "ostype: linux", "builder-version: 1"] {
        assert!(head.contains(h), "{h} missing: {head}");
    }
    assert!(head.ends_with("ok"), "{head}");
    assert_eq!(s.curl("HEAD", "/_ping", None).0, 200);
    let (code, body) = s.curl("GET", "/v1.24/version", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ApiVersion\":\"1.41\""), "{body}");
    let (code, body) = s.curl("GET", "/v1.99/version", None);
    assert_eq!(code, 400);
    assert!(body.contains("client version 1.99 is too new"), "{body}");
    let (code, body) = s.curl("GET", "/v1.41/no/such/endpoint", None);
    assert_eq!(
        (code, body.as_str()),
        (404, "{\"message\":\"page not found\"}")
    );
    let (code, body) = s.curl("GET", "/containers/nosuch/json", None);
    assert_eq!(code, 404);
    assert!(body.contains("No such container: nosuch"), "{body}");
    // Bodies wharf cannot honour are refused by name, before anything is made.
    let (code, body) = s.curl("POST", "/containers/create", Some("{not json"));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid JSON body"), "{body}");
    let (code, body) = s.curl(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"CpuRealtimePeriod":1000}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("HostConfig.CpuRealtimePeriod"), "{body}");
    let (code, body) = s.curl(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","NetworkDisabled":true}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("NetworkDisabled"), "{body}");
    // The image list takes docker's filters, as `docker images` does.
    let (code, body) = s.curl(
        "GET",
        "/images/json?filters=%7B%22reference%22%3A%5B%22nosuch%22%5D%7D",
        None,
    );
    assert_eq!((code, body.trim()), (200, "[]"));
    let (code, body) = s.curl(
        "GET",
        "/images/json?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("colour"), "{body}");
    // A prune with filters wharf does not take is refused, not widened to everything.
    for what in ["containers", "networks"] {
        let (code, body) = s.curl(
            "POST",
            &format!("/{what}/prune?filters=%7B%22label%22%3A%5B%22keep%22%5D%7D"),
            None,
        );
        assert_eq!(code, 400, "{what}: {body}");
        assert!(body.contains("label=keep"), "{body}");
    }
    let (code, body) = s.curl(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"Memory":1024}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("Minimum memory limit allowed is 6MB"),
        "{body}"
    );
    let (code, body) = s.curl("POST", "/containers/create", Some(r#"{"Image":"nosuch"}"#));
    assert_eq!(code, 404, "{body}");
    let (code, body) = s.curl("POST", "/build?memory=64000000&rm=1", None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("memory=64000000"), "{body}");
    // A huge body is refused, and a client that never finishes its request holds
    // nobody else up.
    let huge = format!(
        "{{\"Image\":\"busybox\",\"Labels\":{{\"k\":\"{}\"}}}}",
        "x".repeat(3 << 20)
    );
    let big = g.env.path("huge.json");
    std::fs::write(&big, huge).unwrap();
    let (code, _) = s.curl(
        "POST",
        "/containers/create",
        Some(&format!("@{}", big.display())),
    );
    assert_eq!(code, 413);
    let mut slow = std::os::unix::net::UnixStream::connect(&s.socket).unwrap();
    slow.write_all(
        b"POST /containers/create HTTP/1.1\r\nHost: wharf\r\nContent-Length: 100\r\n\r\n{\"Ima",
    )
    .unwrap();
    let mut half = std::os::unix::net::UnixStream::connect(&s.socket).unwrap();
    half.write_all(b"GET /_ping HTTP/1.1\r\nHost: wh").unwrap();
    assert_eq!(s.curl("GET", "/_ping", None), (200, "OK".to_string()));
    drop((slow, half));
    let (code, body) = s.curl("GET", "/containers/json?all=1", None);
    assert_eq!(
        (code, body.as_str()),
        (200, "[]"),
        "nothing was left behind"
    );
}

#[test]
fn docker_cli_runs_containers_through_the_socket() {
    let Some((g, s)) = setup() else { return };
    let clis = clients();
    if clis.is_empty() {
        return integration::skip("no docker CLI installed (Debian's docker.io)");
    }
    for cli in &clis {
        let out = docker(cli, &s, &["run", "--rm", "busybox", "echo", "hello"]);
        assert!(out.status.success(), "{cli:?}: {}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
        let out = docker(
            cli,
            &s,
            &["run", "--rm", "busybox", "sh", "-c", "echo e >&2; exit 7"],
        );
        assert_eq!(out.status.code(), Some(7), "{cli:?}: {}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "e\n");
        // -i: our stdin reaches the container through the hijacked attach.
        let mut child = Command::new(cli)
            .env("DOCKER_HOST", s.host())
            .args([
                "run",
                "--rm",
                "-i",
                "busybox",
                "sh",
                "-c",
                "read l; echo \"got $l\"",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "got piped\n",
            "{cli:?}"
        );
        let out = docker(cli, &s, &["rm", "nosuch"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out).contains("No such container: nosuch"),
            "{}",
            text(&out)
        );
    }
    let cli = &clis[0];
    let out = docker(
        cli,
        &s,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "-l",
            "k=v",
            "busybox",
            "sh",
            "-c",
            "echo up; echo oops >&2; exec sleep 60",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    // The CLI's view and wharf's own agree: one store, two front doors.
    assert_eq!(g.inspect("web", "{{.Id}}"), id);
    let ps = text(&docker(
        cli,
        &s,
        &["ps", "--format", "{{.Names}} {{.Image}} {{.Labels}}"],
    ));
    assert_eq!(ps.trim(), "web busybox k=v");
    g.until(10, "the output logged", || {
        let o = docker(cli, &s, &["logs", "web"]);
        (String::from_utf8_lossy(&o.stdout) == "up\n"
            && String::from_utf8_lossy(&o.stderr) == "oops\n")
            .then_some(())
    });
    let out = docker(
        cli,
        &s,
        &["exec", "web", "sh", "-c", "echo in $(hostname); exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("in {}\n", &id[..12])
    );
    let out = docker(
        cli,
        &s,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Config.Labels.k}}",
            "web",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "running v");
    // logs -f follows until the container ends.
    let out = docker(
        cli,
        &s,
        &[
            "run",
            "-d",
            "--name",
            "brief",
            "busybox",
            "sh",
            "-c",
            "echo a; sleep 0.5; echo b",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = docker(cli, &s, &["logs", "-f", "brief"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a\nb\n",
        "{}",
        text(&out)
    );
    assert!(docker(cli, &s, &["rm", "brief"]).status.success());
    let out = docker(cli, &s, &["stop", "-t", "1", "web"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(g.inspect("web", "{{.State.Status}}"), "exited");
    let out = docker(cli, &s, &["rm", "web"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = docker(cli, &s, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "busybox:latest"
    );
    assert_eq!(g.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn killing_the_service_stops_no_container_and_an_idle_one_exits() {
    let Some((g, mut s)) = setup() else { return };
    let Some(cli) = clients().into_iter().next() else {
        return integration::skip("no docker CLI installed (Debian's docker.io)");
    };
    let out = docker(
        &cli,
        &s,
        &["run", "-d", "--name", "stays", "busybox", "sleep", "60"],
    );
    assert!(out.status.success(), "{}", text(&out));
    // SIGKILL: the service ends at once, without cleaning anything up.
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    assert_eq!(g.inspect("stays", "{{.State.Status}}"), "running");
    // The next service takes the dead one's socket and serves the same store.
    let s = Service::start(&g, "1");
    let out = docker(&cli, &s, &["ps", "--format", "{{.Names}}"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "stays",
        "{}",
        text(&out)
    );
    drop(out);
    let mut s = s;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            assert!(st.success(), "the idle service exited with {st}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not exit when idle"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!s.socket.exists(), "the idle service removed its socket");
    g.ok(&["rm", "-f", "stays"]);
}

#[test]
fn twenty_clients_at_once_each_run_a_container() {
    let Some((g, s)) = setup() else { return };
    let Some(cli) = clients().into_iter().next() else {
        return integration::skip("no docker CLI installed (Debian's docker.io)");
    };
    let children: Vec<Child> = (0..20)
        .map(|n| {
            Command::new(&cli)
                .env("DOCKER_HOST", s.host())
                .args(["run", "--rm", "busybox", "echo", &format!("client {n}")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (n, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "client {n}: {}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("client {n}\n")
        );
    }
    assert_eq!(
        g.ok(&["ps", "-a", "-q"]),
        "",
        "every --rm container is gone"
    );
}

#[test]
fn docker_cli_builds_through_the_socket() {
    let Some((g, s)) = setup() else { return };
    let Some(cli) = clients().into_iter().next() else {
        return integration::skip("no docker CLI installed (Debian's docker.io)");
    };
    let ctx = g.build_context("build-ctx", "FROM busybox\nARG WHO=nobody\nRUN echo \"built for $WHO\" > /built\nCMD [\"cat\", \"/built\"]\n");
    let out = docker(
        &cli,
        &s,
        &[
            "build",
            "-t",
            "built:1",
            "--build-arg",
            "WHO=api",
            ctx.to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("Step 3/4 : RUN echo \"built for $WHO\" > /built"),
        "{t}"
    );
    assert!(t.contains("Successfully tagged built:1"), "{t}");
    let out = docker(&cli, &s, &["run", "--rm", "built:1"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "built for api\n",
        "{}",
        text(&out)
    );
    // A failing step is the build's error, and nothing of it stays.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN exit 7\n").unwrap();
    let out = docker(&cli, &s, &["build", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("The command '/bin/sh -c exit 7' returned a non-zero code: 7"),
        "{}",
        text(&out)
    );
    assert_eq!(g.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn compose_runs_two_services_with_a_port_a_volume_and_names() {
    if !super::common::have("/usr/bin/docker-compose", "docker-compose") {
        return;
    }
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let port = free_port();
    let project = g.env.path("shop");
    std::fs::create_dir_all(project.join("app")).unwrap();
    std::fs::write(
        project.join("app/Dockerfile"),
        "FROM busybox\nRUN echo app-image > /made\nCMD [\"cat\", \"/made\"]\n",
    )
    .unwrap();
    // The client resolves `web` from its hosts file; DNS stays inside the container
    // (127.0.0.1), so no lookup leaves the machine.
    std::fs::write(
        project.join("docker-compose.yml"),
        format!(
            "version: \"3.8\"\nservices:\n  web:\n    image: busybox\n    command: sh -c 'echo hello-from-web > /data/index.html; exec httpd -f -p 80 -h /data'\n    ports:\n      - \"127.0.0.1:{port}:80\"\n    volumes:\n      - site:/data\n  client:\n    image: busybox\n    dns: 127.0.0.1\n    command: sh -c 'until wget -q -O - http://web/index.html; do sleep 0.2; done; exec sleep 60'\n    depends_on:\n      - web\n  app:\n    build: ./app\n    image: shop-app:latest\nvolumes:\n  site:\n"
        ),
    )
    .unwrap();
    let compose = |args: &[&str]| -> Output {
        g.command(&["compose"])
            .args(args)
            .current_dir(&project)
            .stdin(Stdio::null())
            .output()
            .expect("wharf compose")
    };
    let ok = |args: &[&str]| -> String {
        let out = compose(args);
        assert!(out.status.success(), "compose {args:?}: {}", text(&out));
        text(&out)
    };
    ok(&["up", "-d", "web", "client"]);
    let page = g.until(20, "the published page", || {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{port}/index.html"))
            .output()
            .ok()?;
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        (!body.is_empty()).then_some(body)
    });
    assert_eq!(page, "hello-from-web\n");
    let ps = ok(&["ps"]);
    assert!(
        ps.contains("shop_web_1") && ps.contains("shop_client_1"),
        "{ps}"
    );
    g.until(20, "the client's fetch by service name", || {
        ok(&["logs", "--no-color", "client"])
            .contains("client_1  | hello-from-web")
            .then_some(())
    });
    assert_eq!(
        ok(&["exec", "-T", "web", "cat", "/data/index.html"]),
        "hello-from-web\n"
    );
    assert!(ok(&["run", "--rm", "-T", "client", "echo", "one-off"]).contains("one-off"));
    assert!(ok(&["build", "app"]).contains("Successfully tagged shop-app:latest"));
    assert!(ok(&["run", "--rm", "-T", "app"]).contains("app-image"));
    ok(&["down", "-v"]);
    assert_eq!(g.ok(&["ps", "-a", "-q"]), "");
    let nets = g.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("shop_default"), "{nets}");
    assert_eq!(g.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn python_sdk_drives_containers_images_networks_and_volumes() {
    let have_sdk = Command::new("python3")
        .args(["-c", "import docker"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_sdk {
        return integration::skip(
            "python3-docker is not installed (apt-get install python3-docker)",
        );
    }
    let Some((g, s)) = setup() else { return };
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
assert c.ping()
out = c.containers.run("busybox", ["echo", "from-python"], remove=True)
assert out == b"from-python\n", out
ct = c.containers.run("busybox", ["sh", "-c", "echo logged; exec sleep 60"], detach=True, name="py", labels={"sdk": "yes"})
code, got = ct.exec_run(["sh", "-c", "echo $((6*7))"])
assert (code, got) == (0, b"42\n"), (code, got)
import time
for _ in range(100):
    if ct.logs() == b"logged\n":
        break
    time.sleep(0.05)
assert ct.logs() == b"logged\n", ct.logs()
assert [x.name for x in c.containers.list(filters={"label": "sdk=yes"})] == ["py"]
ct.stop(timeout=1)
ct.reload()
assert ct.status == "exited", ct.status
ct.remove()
net = c.networks.create("pynet", driver="bridge", labels={"k": "v"})
assert c.networks.get("pynet").attrs["Labels"] == {"k": "v"}
net.remove()
vol = c.volumes.create("pyvol")
assert c.volumes.get("pyvol").name == "pyvol"
vol.remove()
assert [t for i in c.images.list() for t in i.tags] == ["busybox:latest"]
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.host()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    assert_eq!(g.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn docker_cli_terminals_for_run_and_exec() {
    let Some((_g, s)) = setup() else { return };
    let Some(cli) = clients().into_iter().next() else {
        return integration::skip("no docker CLI installed (Debian's docker.io)");
    };
    // script(1) gives the CLI the terminal `-t` needs.
    let in_terminal = |command: String| -> (Option<i32>, String) {
        let out = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("DOCKER_HOST", s.host())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out.status.code(), text(&out))
    };
    let cli = cli.display();
    let (code, out) = in_terminal(format!("{cli} run --rm -it busybox sh -c 'tty; exit 4'"));
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    let out = docker(
        &clients()[0],
        &s,
        &["run", "-d", "--name", "term", "busybox", "sleep", "60"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let (code, out) = in_terminal(format!("{cli} exec -it term sh -c 'tty; exit 5'"));
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    // Detach keys typed into an attach end the attach, not the container.
    let out = docker(
        &clients()[0],
        &s,
        &["run", "-dit", "--name", "shell", "busybox", "sh"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut attach = Command::new("script")
        .args([
            "-qec",
            &format!("{cli} attach --detach-keys ctrl-x shell"),
            "/dev/null",
        ])
        .env("DOCKER_HOST", s.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut input = attach.stdin.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let (mut out, seen) = (attach.stdout.take().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut out, &mut buf) {
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let shown = |what: &str| String::from_utf8_lossy(&seen.lock().unwrap()).contains(what);
    // The shell's answer, not only the terminal's echo of the line: the detach keys go
    // only once the container has had the line, whatever the machine's load.
    input.write_all(b"echo typed-$((6*7))\r").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !shown("typed-42") {
        assert!(
            Instant::now() < deadline,
            "the shell did not answer through the attach: {:?}",
            String::from_utf8_lossy(&seen.lock().unwrap())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    input.write_all(b"\x18").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while attach.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the detach keys did not end the attach"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(input);
    reader.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(
            &docker(
                &clients()[0],
                &s,
                &["inspect", "-f", "{{.State.Status}}", "shell"]
            )
            .stdout
        )
        .trim(),
        "running"
    );
    for name in ["term", "shell"] {
        let out = docker(&clients()[0], &s, &["rm", "-f", name]);
        assert!(out.status.success(), "{}", text(&out));
    }
}

#[test]
fn docker_cli_everyday_commands_through_the_socket() {
    let Some((g, s)) = setup() else { return };
    let Some(cli) = clients().into_iter().next() else {
        return integration::skip("no docker CLI installed (Debian's docker.io)");
    };
    let d = |args: &[&str]| docker_ok(&cli, &s, args);
    d(&["run", "-d", "--name", "box", "busybox", "sleep", "60"]);
    // cp both ways, through the archive endpoints.
    let host = g.env.path("cp");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "into the container\n").unwrap();
    d(&["cp", host.join("in.txt").to_str().unwrap(), "box:/tmp/"]);
    d(&[
        "cp",
        "box:/tmp/in.txt",
        host.join("back.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("back.txt")).unwrap(),
        "into the container\n"
    );
    let out = docker(&cli, &s, &["cp", "box:/no/such", host.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("No such container:path: box:/no/such"),
        "{}",
        text(&out)
    );
    assert!(d(&["top", "box"]).contains("sleep 60"));
    assert!(d(&["diff", "box"]).contains("A /tmp/in.txt"));
    assert_eq!(
        d(&["stats", "--no-stream", "--format", "{{.Name}}", "box"]).trim(),
        "box"
    );
    let tar = g.env.path("box.tar");
    d(&["export", "-o", tar.to_str().unwrap(), "box"]);
    let listing = super::common::tool(Command::new("tar").arg("-tf").arg(&tar));
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "bin/busybox"),
        "{listing}"
    );
    // Networks and volumes.
    d(&["network", "create", "--subnet", "10.98.0.0/24", "apinet"]);
    assert!(d(&["network", "ls", "--format", "{{.Name}}"]).contains("apinet"));
    d(&["network", "connect", "apinet", "box"]);
    assert_eq!(
        d(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}}{{end}}",
            "apinet"
        ])
        .trim(),
        "box"
    );
    d(&["network", "disconnect", "apinet", "box"]);
    d(&["network", "rm", "apinet"]);
    d(&["volume", "create", "--label", "k=v", "apivol"]);
    assert_eq!(
        d(&["volume", "inspect", "-f", "{{.Labels.k}}", "apivol"]).trim(),
        "v"
    );
    assert_eq!(d(&["volume", "ls", "-q"]).trim(), "apivol");
    d(&["volume", "rm", "apivol"]);
    // Images: save, load, tag, push and pull through a local registry, prune.
    let archive = g.env.path("images.tar");
    d(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let loaded = d(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        loaded.contains("Loaded image: busybox:latest"),
        "{loaded:?}"
    );
    if let Some(reg) = super::common::Registry::start(None) {
        let name = format!("{}/api/box:1", reg.host());
        d(&["tag", "busybox", &name]);
        assert!(d(&["push", &name]).contains("digest: sha256:"));
        // search reads the registry's catalog, through the API and the CLI alike.
        let hits = d(&[
            "search",
            "--format",
            "{{.Name}}",
            &format!("{}/box", reg.host()),
        ]);
        assert_eq!(hits.trim(), format!("{}/api/box", reg.host()));
        assert!(g
            .ok(&["search", &format!("{}/api", reg.host())])
            .contains("/api/box"));
        d(&["rmi", &name]);
        d(&["pull", &name]);
        assert!(d(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .contains(&format!("{}/api/box:1", reg.host())));
        d(&["rmi", &name]);
    }
    assert!(d(&["system", "df"]).contains("Images"));
    // docker's client sends `until` in whole seconds: a bound a second ahead keeps this
    // second's events (the stream ends once it passes).
    let until = || {
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1)
        .to_string()
    };
    let events = d(&[
        "events",
        "--since",
        "5m",
        "--until",
        &until(),
        "--filter",
        "container=box",
        "--format",
        "{{.Action}}",
    ]);
    for action in ["create", "start"] {
        assert!(
            events.lines().any(|l| l == action),
            "{action} missing: {events}"
        );
    }
    d(&["rm", "-f", "box"]);
    let destroyed = d(&[
        "events",
        "--since",
        "5m",
        "--until",
        &until(),
        "--filter",
        "event=destroy",
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    assert!(destroyed.contains("box"), "{destroyed}");
    assert_eq!(g.ok(&["ps", "-a", "-q"]), "");
}

/// Waits until the service process has ended (after a SIGKILL).
fn killed(s: &mut Service) {
    s.child.kill().unwrap();
    s.child.wait().unwrap();
}

#[test]
fn a_service_killed_mid_pull_build_or_attach_leaves_a_consistent_store() {
    let Some((g, mut s)) = setup() else { return };
    let Some(cli) = clients().into_iter().next() else {
        return integration::skip("no docker CLI installed (Debian's docker.io)");
    };
    // A pull: an image with a large layer in a local registry, killed once layers move.
    if let Some(reg) = super::common::Registry::start(None) {
        let ctx = g.env.path("big");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY blob /blob\n").unwrap();
        let blob: Vec<u8> = (0..48u32 << 20)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        std::fs::write(ctx.join("blob"), blob).unwrap();
        let name = format!("{}/big:1", reg.host());
        g.ok(&["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
        g.ok(&["push", &name]);
        g.ok(&["rmi", &name]);
        let before = g.env.snapshot();
        let mut pull = Command::new("curl")
            .args(["-s", "-N", "-X", "POST", "--unix-socket"])
            .arg(&s.socket)
            .arg(format!(
                "http://wharf/images/create?fromImage={}/big&tag=1",
                reg.host()
            ))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = pull.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("Downloading") {
            let n = std::io::Read::read(&mut out, &mut buf).unwrap();
            assert!(
                n > 0,
                "the pull ended before any layer moved: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        killed(&mut s);
        let _ = pull.wait();
        // Nothing half pulled is an image; the next service pulls it whole.
        assert!(
            !g.ok(&["images"]).contains("big"),
            "a killed pull left an image"
        );
        s = Service::start(&g, "0");
        let out = docker(&cli, &s, &["pull", &name]);
        assert!(out.status.success(), "{}", text(&out));
        let out = docker(
            &cli,
            &s,
            &[
                "run",
                "--rm",
                &name,
                "sh",
                "-c",
                "test -s /blob && echo whole",
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "whole\n",
            "{}",
            text(&out)
        );
        g.ok(&["rmi", &name]);
        g.ok(&["image", "prune", "-f"]);
        // The store is back where it was, but for the database and the leftovers of
        // the killed pull that no image uses, which prune removes.
        let after = g.env.snapshot();
        let blobs = |v: &Vec<(PathBuf, u64)>| {
            v.iter()
                .filter(|(p, _)| p.to_string_lossy().contains("/images/blobs/"))
                .count()
        };
        assert_eq!(blobs(&after), blobs(&before), "blobs left behind");
    }
    // A build: killed while a RUN step's container runs; the next build through the next
    // service removes what it left.
    let ctx = g.build_context("slow", "FROM busybox\nRUN sleep 3; echo done > /done\n");
    let mut build = Command::new(&cli)
        .env("DOCKER_HOST", s.host())
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-t", "slow", ctx.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    g.until(20, "the RUN step's container", || {
        (!g.ok(&["ps", "-a", "-q"]).trim().is_empty()).then_some(())
    });
    killed(&mut s);
    let _ = build.wait();
    s = Service::start(&g, "0");
    let out = docker(&cli, &s, &["build", "-t", "slow", ctx.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    g.until(20, "the killed build's container gone", || {
        g.ok(&["ps", "-a", "-q"]).trim().is_empty().then_some(())
    });
    // An attach: the container outlives the service and the next one attaches again.
    let out = docker(
        &cli,
        &s,
        &[
            "run",
            "-d",
            "--name",
            "talker",
            "busybox",
            "sh",
            "-c",
            "while true; do echo tick; sleep 0.2; done",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut attach = Command::new(&cli)
        .env("DOCKER_HOST", s.host())
        .args(["attach", "--no-stdin", "talker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = attach.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    assert!(
        std::io::Read::read(&mut out, &mut buf).unwrap() > 0,
        "the attach relayed nothing"
    );
    killed(&mut s);
    let _ = attach.wait();
    assert_eq!(g.inspect("talker", "{{.State.Status}}"), "running");
    s = Service::start(&g, "0");
    let mut attach = Command::new(&cli)
        .env("DOCKER_HOST", s.host())
        .args(["attach", "--no-stdin", "talker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = attach.stdout.take().unwrap();
    assert!(
        std::io::Read::read(&mut out, &mut buf).unwrap() > 0,
        "the second attach relayed nothing"
    );
    let _ = attach.kill();
    let _ = attach.wait();
    g.ok(&["rm", "-f", "talker"]);
    assert_eq!(g.ok(&["ps", "-a", "-q"]), "");
}

/// Every JSON body the service sends decodes into the model bollard-stubs generates from
/// moby's swagger for that endpoint: a field of the wrong type, or a required one missing,
/// fails here.
#[test]
fn responses_decode_as_dockers_models() {
    use bollard_stubs::models as m;
    let Some((g, s)) = setup() else { return };
    fn decode<T: serde::de::DeserializeOwned>(what: &str, (code, body): (u16, String)) -> T {
        assert!((200..300).contains(&code), "{what}: {code} {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
    }
    let created: m::ContainerCreateResponse = decode(
        "create",
        s.curl(
            "POST",
            "/containers/create?name=shape",
            Some(r#"{"Image":"busybox","Cmd":["sleep","60"],"Labels":{"k":"v"},"Healthcheck":{"Test":["CMD","true"],"Interval":200000000,"Timeout":null},"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]}}}"#),
        ),
    );
    let id = created.id;
    assert_eq!(
        s.curl("POST", &format!("/containers/{id}/start"), None).0,
        204
    );
    let _: Vec<m::ContainerSummaryInner> = decode("list", s.curl("GET", "/containers/json", None));
    let inspected: m::ContainerInspectResponse = g.until(20, "a health result", || {
        let i: m::ContainerInspectResponse =
            decode("inspect", s.curl("GET", "/containers/shape/json", None));
        let logged = i.state.as_ref()?.health.as_ref()?.log.as_ref()?.len();
        (logged > 0).then_some(i)
    });
    let health = inspected.state.unwrap().health.unwrap();
    assert_eq!(health.log.unwrap()[0].exit_code, Some(0));
    let _: m::ContainerUpdateResponse = decode(
        "update",
        s.curl(
            "POST",
            "/containers/shape/update",
            Some(
                r#"{"CpuShares":256,"Memory":0,"RestartPolicy":{"Name":"","MaximumRetryCount":0}}"#,
            ),
        ),
    );
    assert_eq!(
        s.curl(
            "POST",
            "/containers/shape/update",
            Some(r#"{"KernelMemory":1}"#)
        )
        .0,
        400
    );
    let _: m::ContainerTopResponse = decode("top", s.curl("GET", "/containers/shape/top", None));
    let _: Vec<m::ContainerChangeResponseItem> = {
        let exec: m::IdResponse = decode(
            "exec create",
            s.curl(
                "POST",
                "/containers/shape/exec",
                Some(r#"{"Cmd":["touch","/made"]}"#),
            ),
        );
        assert_eq!(
            s.curl(
                "POST",
                &format!("/exec/{}/start", exec.id),
                Some(r#"{"Detach":true}"#)
            )
            .0,
            200
        );
        g.until(10, "the detached exec", || {
            let e: m::ExecInspectResponse = decode(
                "exec inspect",
                s.curl("GET", &format!("/exec/{}/json", exec.id), None),
            );
            // Not running and no exit code yet is an exec not started: wait for its end.
            (e.running == Some(false) && e.exit_code.is_some()).then_some(())
        });
        decode("changes", s.curl("GET", "/containers/shape/changes", None))
    };
    let _: m::Image = decode("image inspect", s.curl("GET", "/images/busybox/json", None));
    let _: Vec<m::ImageSummary> = decode("images", s.curl("GET", "/images/json", None));
    let _: Vec<m::HistoryResponseItem> =
        decode("history", s.curl("GET", "/images/busybox/history", None));
    // bollard-stubs 1.41 types Components[].Details as a map of unit keys, which no
    // dockerd answer decodes either: the details are checked as strings instead.
    let mut version: serde_json::Value = decode("version", s.curl("GET", "/version", None));
    for c in version["Components"].as_array_mut().unwrap() {
        let details = c.as_object_mut().unwrap().remove("Details").unwrap();
        assert!(
            details.as_object().unwrap().values().all(|v| v.is_string()),
            "{details}"
        );
    }
    let _: m::SystemVersion = decode("version", (200, version.to_string()));
    let _: m::SystemInfo = decode("info", s.curl("GET", "/info", None));
    let _: m::SystemDataUsageResponse = decode("df", s.curl("GET", "/system/df", None));
    let _: m::NetworkCreateResponse = decode(
        "network create",
        s.curl("POST", "/networks/create", Some(r#"{"Name":"shapenet"}"#)),
    );
    let _: Vec<m::Network> = decode("networks", s.curl("GET", "/networks", None));
    let _: m::Network = decode("network", s.curl("GET", "/networks/shapenet", None));
    assert_eq!(s.curl("DELETE", "/networks/shapenet", None).0, 204);
    let _: m::Volume = decode(
        "volume create",
        s.curl("POST", "/volumes/create", Some(r#"{"Name":"shapevol"}"#)),
    );
    let _: m::VolumeListResponse = decode("volumes", s.curl("GET", "/volumes", None));
    assert_eq!(s.curl("DELETE", "/volumes/shapevol", None).0, 204);
    // (API 1.41's models have no stats type.)
    let stats: serde_json::Value = decode(
        "stats",
        s.curl("GET", "/containers/shape/stats?stream=false", None),
    );
    assert!(
        stats["cpu_stats"]["cpu_usage"]["total_usage"].is_u64(),
        "{stats}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (code, body) = s.curl("GET", &format!("/events?since=0&until={}", now + 1), None);
    assert_eq!(code, 200);
    let events: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(events.len() >= 4, "{body}");
    for line in events {
        let _: m::SystemEventsResponse = decode("event", (200, line.to_string()));
    }
    let _: m::ContainerWaitResponse = {
        assert_eq!(s.curl("POST", "/containers/shape/kill", None).0, 204);
        decode("wait", s.curl("POST", "/containers/shape/wait", None))
    };
    let _: Vec<m::ImageDeleteResponseItem> = {
        assert_eq!(
            s.curl("POST", "/images/busybox/tag?repo=shape&tag=1", None)
                .0,
            201
        );
        decode("image delete", s.curl("DELETE", "/images/shape:1", None))
    };
    let _: m::ContainerPruneResponse =
        { decode("container prune", s.curl("POST", "/containers/prune", None)) };
}

#[test]
fn docker_cli_sees_health_updates_and_disk_usage() {
    let Some((g, s)) = setup() else { return };
    let Some(cli) = clients().into_iter().next() else {
        return integration::skip("no docker CLI installed (Debian's docker.io)");
    };
    let d = |args: &[&str]| docker_ok(&cli, &s, args);
    d(&[
        "run",
        "-d",
        "--name",
        "checked",
        "--health-cmd",
        "echo up",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "60",
    ]);
    g.until(20, "healthy through the API", || {
        (d(&["inspect", "-f", "{{.State.Health.Status}}", "checked"]).trim() == "healthy")
            .then_some(())
    });
    assert!(d(&["ps", "--format", "{{.Status}}"]).contains("(healthy)"));
    assert_eq!(
        d(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]).trim(),
        "checked"
    );
    assert_eq!(
        d(&[
            "update",
            "--cpu-shares",
            "300",
            "--pids-limit",
            "20",
            "checked"
        ])
        .trim(),
        "checked"
    );
    assert_eq!(
        d(&[
            "inspect",
            "-f",
            "{{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}}",
            "checked"
        ])
        .trim(),
        "300 20"
    );
    let out = docker(&cli, &s, &["update", "--cpuset-cpus", "99", "checked"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("Requested CPUs are not available"),
        "{}",
        text(&out)
    );
    let df = d(&["system", "df"]);
    for kind in ["Images", "Containers", "Local Volumes", "Build Cache"] {
        assert!(df.contains(kind), "{df}");
    }
    assert!(d(&["system", "df", "-v"]).contains("Build cache usage: 0B"));
}

#[test]
fn compose_starts_a_service_once_its_dependency_is_healthy() {
    if !super::common::have("/usr/bin/docker-compose", "docker-compose") {
        return;
    }
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let project = g.env.path("healthy");
    std::fs::create_dir_all(&project).unwrap();
    // The check passes once db has been up for a second; compose 1.29 waits for it.
    std::fs::write(
        project.join("docker-compose.yml"),
        "version: \"2.4\"\nservices:\n  db:\n    image: busybox\n    network_mode: none\n    command: sh -c 'sleep 1; touch /tmp/ready; exec sleep 60'\n    healthcheck:\n      test: [\"CMD-SHELL\", \"[ -f /tmp/ready ]\"]\n      interval: 200ms\n      retries: 100\n  app:\n    image: busybox\n    network_mode: none\n    command: sleep 60\n    depends_on:\n      db:\n        condition: service_healthy\n",
    )
    .unwrap();
    let out = g
        .command(&["compose", "up", "-d", "app"])
        .current_dir(&project)
        .stdin(Stdio::null())
        .output()
        .expect("wharf compose");
    assert!(out.status.success(), "{}", text(&out));
    let db = "healthy_db_1";
    let app = "healthy_app_1";
    assert_eq!(g.inspect(db, "{{.State.Health.Status}}"), "healthy");
    let healthy_at = g.inspect(
        db,
        "{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End}} {{end}}{{end}}",
    );
    let first_pass = healthy_at
        .split_whitespace()
        .next()
        .expect("a passing probe")
        .to_string();
    let app_started = g.inspect(app, "{{.State.StartedAt}}");
    assert!(
        app_started.as_str() > first_pass.as_str(),
        "app started at {app_started}, before db's first passing probe at {first_pass}"
    );
    let down = g
        .command(&["compose", "down", "-t", "0"])
        .current_dir(&project)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
}

/// (create body, what the 4xx message must name): bodies a broken or hostile client sends.
const BAD_CREATE_BODIES: &[(&str, &str)] = &[
    ("", "invalid JSON body"),
    ("[]", "JSON object"),
    ("null", "JSON object"),
    (r#"{"Image":5}"#, "Image"),
    (r#"{"Image":"busybox","Cmd":{"a":1}}"#, "Cmd"),
    (r#"{"Image":"busybox","Env":"A=1"}"#, "Env"),
    (r#"{"Image":"busybox","Env":["=x"]}"#, "=x"),
    (r#"{"Image":"busybox","WorkingDir":"relative"}"#, "relative"),
    (r#"{"Image":"busybox","StopSignal":"SIGFOO"}"#, "SIGFOO"),
    (r#"{"Image":"busybox","ExposedPorts":{"abc":{}}}"#, "abc"),
    (
        r#"{"Image":"busybox","Healthcheck":{"Interval":-5}}"#,
        "Interval",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#,
        "Memory",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"Memory":1e400}}"#,
        "invalid JSON body",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"NanoCpus":-1}}"#,
        "Range of CPUs",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"PortBindings":{"eighty/tcp":[{"HostPort":"1"}]}}}"#,
        "eighty",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"99999"}]}}}"#,
        "99999",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"Binds":[":/x"]}}"#,
        ":/x",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"Binds":["/a:rel"]}}"#,
        "/a:rel",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bogus","Target":"/x"}]}}"#,
        "bogus",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#,
        "sometimes",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"CapAdd":["NOPE"]}}"#,
        "NOPE",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"NetworkMode":"nosuch"}}"#,
        "nosuch",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"ExtraHosts":["nohost"]}}"#,
        "nohost",
    ),
    (
        r#"{"Image":"busybox","HostConfig":{"Tmpfs":{"rel":""}}}"#,
        "rel",
    ),
];

#[test]
fn bad_create_bodies_are_refused_by_name_and_make_nothing() {
    let Some((g, s)) = setup() else { return };
    // Nested past any recursion limit; too long for an argument, curl reads it from a file.
    let deep = g.env.path("deep.json");
    std::fs::write(
        &deep,
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    )
    .unwrap();
    let deep = format!("@{}", deep.display());
    let mut cases: Vec<(&str, &str)> = BAD_CREATE_BODIES.to_vec();
    cases.push((&deep, "invalid JSON body"));
    for (body, names) in cases {
        let what = &body[..body.len().min(80)];
        let (code, answer) = s.curl("POST", "/containers/create", Some(body));
        println!("{what}: {code} {answer}");
        assert!((400..500).contains(&code), "{what}: {code} {answer}");
        assert!(
            answer.contains(names),
            "{what}: expected {names:?} in {answer}"
        );
        assert_eq!(g.ok(&["ps", "-a", "-q"]), "", "{what}");
    }
    let (code, answer) = s.curl(
        "POST",
        "/containers/create?name=a%20b",
        Some(r#"{"Image":"busybox"}"#),
    );
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("Invalid container name (a b)"), "{answer}");
    // The service took all that and still works.
    let (code, answer) = s.curl("POST", "/containers/create", Some(r#"{"Image":"busybox"}"#));
    assert_eq!(code, 201, "{answer}");
    let made = g.ok(&["ps", "-a", "-q", "--no-trunc"]);
    assert_eq!(made.lines().count(), 1, "{made}");
    g.ok(&["rm", made.trim()]);
    g.assert_clean();
}

#[test]
fn bad_compose_files_fail_and_leave_nothing() {
    if !super::common::have("/usr/bin/docker-compose", "docker-compose") {
        return;
    }
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let project = g.env.path("broken");
    std::fs::create_dir_all(&project).unwrap();
    let cases = [
        ("not YAML", "services: [\n  web: {image: busybox\n"),
        ("an unknown key", "version: \"3.8\"\nservices:\n  web:\n    image: busybox\n    colour: red\n"),
        ("a bad port", "version: \"3.8\"\nservices:\n  web:\n    image: busybox\n    ports:\n      - \"eighty:80\"\n"),
        ("a service without image or build", "version: \"3.8\"\nservices:\n  web:\n    command: \"true\"\n"),
        ("a bad volume", "version: \"3.8\"\nservices:\n  web:\n    image: busybox\n    command: \"true\"\n    volumes:\n      - \":/x\"\n"),
    ];
    for (what, yaml) in cases {
        std::fs::write(project.join("docker-compose.yml"), yaml).unwrap();
        let out = g
            .command(&["compose", "up", "-d"])
            .current_dir(&project)
            .stdin(Stdio::null())
            .output()
            .expect("wharf compose");
        println!("{what}: {}", text(&out));
        assert!(!out.status.success(), "{what}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{what}: {}", text(&out));
        // What compose made before the failure (its network) goes with `down`, as with
        // dockerd.
        g.command(&["compose", "down", "-v"])
            .current_dir(&project)
            .stdin(Stdio::null())
            .output()
            .expect("wharf compose down");
        assert_eq!(g.ok(&["ps", "-a", "-q"]), "", "{what}");
        assert_eq!(g.ok(&["volume", "ls", "-q"]), "", "{what}");
        let nets = g.ok(&["network", "ls", "--format", "{{.Name}}"]);
        assert_eq!(nets, "bridge\nhost\nnone\n", "{what}");
    }
}

/// A process's peak resident set in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// How much the service's peak RSS grows (KiB) while `upload` runs; writing 5 to
/// clear_refs resets it first.
fn peak_growth(s: &Service, upload: impl FnOnce()) -> u64 {
    let pid = s.child.id();
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let before = peak_rss_kib(pid);
    upload();
    let grew = peak_rss_kib(pid).saturating_sub(before);
    eprintln!("the service's peak RSS grew by {grew} KiB");
    grew
}

/// A tar of one 48 MiB file `blob` that no compression shrinks.
fn big_tarball(g: &Guard) -> PathBuf {
    let data = g.env.path("big");
    std::fs::create_dir_all(&data).unwrap();
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    let mut out = std::fs::File::create(data.join("blob")).unwrap();
    std::io::copy(&mut std::io::Read::take(&mut random, 48 << 20), &mut out).unwrap();
    let tarball = g.env.path("big.tar");
    super::common::tool(
        Command::new("tar")
            .arg("-C")
            .arg(&data)
            .arg("-cf")
            .arg(&tarball)
            .arg("blob"),
    );
    tarball
}

// Held whole, a 48 MiB upload grows the peak by more than 48 MiB (54848 KiB for load
// before it streamed); streamed, what grows is buffers and threads (about 10 MiB).
const STREAMED_KIB: u64 = 24 << 10;

#[test]
fn a_large_archive_is_loaded_through_the_api_without_holding_it_in_memory() {
    let Some((g, s)) = setup() else { return };
    g.ok(&["import", big_tarball(&g).to_str().unwrap(), "big:1"]);
    let archive = g.env.path("big-image.tar");
    g.ok(&["save", "-o", archive.to_str().unwrap(), "big:1"]);
    g.ok(&["rmi", "big:1"]);
    // curl's --data-binary reads a file named after an @.
    let body = format!("@{}", archive.display());
    let mut said = (0, String::new());
    let grew = peak_growth(&s, || said = s.curl("POST", "/images/load", Some(&body)));
    assert_eq!(said.0, 200, "{}", said.1);
    assert!(said.1.contains("Loaded image: big:1"), "{}", said.1);
    assert!(
        grew < STREAMED_KIB,
        "peak RSS grew {grew} KiB for a 48 MiB archive"
    );
    assert!(g
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains("big:1"));
}

#[test]
fn a_large_build_context_through_the_api_is_not_held_in_memory() {
    let Some((g, s)) = setup() else { return };
    let context = big_tarball(&g);
    let dir = g.env.path("big");
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nCOPY blob /blob\n").unwrap();
    super::common::tool(
        Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-rf")
            .arg(&context)
            .arg("Dockerfile"),
    );
    let body = format!("@{}", context.display());
    let grew = peak_growth(&s, || {
        let (code, said) = s.curl("POST", "/build?t=big:ctx", Some(&body));
        assert_eq!(code, 200, "{said}");
        assert!(!said.contains("errorDetail"), "{said}");
    });
    assert!(
        grew < STREAMED_KIB,
        "peak RSS grew {grew} KiB for a 48 MiB build context"
    );
    let size = g.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "big:ctx",
        "/bin/busybox",
        "wc",
        "-c",
        "/blob",
    ]);
    assert!(size.contains(&(48u64 << 20).to_string()), "{size}");
}

#[test]
fn a_large_copy_into_a_container_through_the_api_is_not_held_in_memory() {
    let Some((g, s)) = setup() else { return };
    let tarball = big_tarball(&g);
    g.ok(&["create", "--name", "box", "busybox", "true"]);
    let body = format!("@{}", tarball.display());
    let grew = peak_growth(&s, || {
        let (code, said) = s.curl("PUT", "/containers/box/archive?path=/tmp", Some(&body));
        assert_eq!(code, 200, "{said}");
    });
    assert!(
        grew < STREAMED_KIB,
        "peak RSS grew {grew} KiB for a 48 MiB copy"
    );
    let back = g.env.path("back");
    g.ok(&["cp", "box:/tmp/blob", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(g.env.path("big").join("blob")).unwrap()
    );
}
