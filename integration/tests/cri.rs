//! The runtime under Kubernetes' runtime interface: a private containerd 1.6 with its CRI
//! plugin and a runtime handler `hull` (the runc v2 shim with `BinaryName` set to the runtime
//! under test, so `REFERENCE=runc` runs the same calls through runc), driven over its socket
//! with kubelet's calls through the CRI API's own client (`k8s-cri`). Images come from a
//! local registry on 127.0.0.1; pods get addresses on a CNI bridge of the test's own, and
//! no traffic leaves the pod or the host's loopback.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration::{busybox_tar, skip, unique, Runtime, TempDir};
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// The pods' subnet: a range no other test uses.
const SUBNET: &str = "10.99.7.0/24";

/// A Debian docker-registry on a free loopback port, killed on drop.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    fn start(dir: &Path) -> Option<Registry> {
        if !Path::new("/usr/bin/docker-registry").exists() {
            skip("docker-registry is not installed (apt-get install docker-registry)");
            return None;
        }
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let config = dir.join("registry.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                    dir.join("registry").display()
                ),
            )
            .unwrap();
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("docker-registry");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Registry { child, port });
                }
                // Another test took the port first: try another.
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// busybox as `busybox:1` and a pause image (`sleep inf`) as `pause:1` in the registry,
/// made with podman in a store of the test's own.
fn push_images(dir: &Path, registry: &str) {
    let tar = busybox_tar(dir);
    let podman = |args: &[&str]| {
        let out = Command::new("podman")
            .arg("--root")
            .arg(dir.join("podman/root"))
            .arg("--runroot")
            .arg(dir.join("podman/run"))
            .arg("--tmpdir")
            .arg(dir.join("podman/tmp"))
            .args([
                "--storage-driver=vfs",
                "--cgroup-manager=cgroupfs",
                "--events-backend=file",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for (name, change) in [
        ("busybox:1", "CMD [\"sh\"]"),
        ("pause:1", "ENTRYPOINT [\"/bin/sleep\", \"inf\"]"),
    ] {
        let image = format!("{registry}/{name}");
        podman(&[
            "import",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            change,
            tar.to_str().unwrap(),
            &image,
        ]);
        podman(&["push", "--tls-verify=false", &image]);
    }
}

/// A private containerd with the CRI plugin, its CNI bridge and the registry, all removed
/// on drop (after every pod the test made).
struct Cluster {
    dir: TempDir,
    daemon: Child,
    registry: Registry,
    bridge: String,
    cgroup_parent: String,
    tokio: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    pods: Vec<String>,
}

impl Cluster {
    fn start(rt: &Runtime) -> Option<Cluster> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            skip("containerd needs root");
            return None;
        }
        for (tool, package) in [("containerd", "containerd"), ("podman", "podman")] {
            if Command::new(tool).arg("--version").output().is_err() {
                skip(&format!(
                    "{tool} is not installed (apt-get install {package})"
                ));
                return None;
            }
        }
        if !Path::new("/usr/lib/cni/bridge").exists() {
            skip("the CNI plugins are not installed (apt-get install containernetworking-plugins)");
            return None;
        }
        let dir = TempDir::new("cri");
        let registry = Registry::start(&dir.path)?;
        push_images(&dir.path, &registry.host());
        let n = unique("");
        let bridge: String = format!("hcri{}", n.replace('-', ""))
            .chars()
            .take(15)
            .collect();
        let cni = dir.path.join("cni");
        std::fs::create_dir_all(&cni).unwrap();
        std::fs::write(
            cni.join("10-hull.conflist"),
            format!(
                r#"{{"cniVersion": "0.4.0", "name": "hull-cri", "plugins": [
                    {{"type": "bridge", "bridge": "{bridge}", "isGateway": true, "ipMasq": false,
                      "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{SUBNET}"}}]],
                                "dataDir": "{}"}}}}]}}"#,
                dir.path.join("ipam").display()
            ),
        )
        .unwrap();
        let host = registry.host();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{host}/pause:1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "hull"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull.options]
        BinaryName = "{bin}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{host}"]
    endpoint = ["http://{host}"]
"#,
            d = dir.path.display(),
            bin = rt.bin.display(),
            cni = cni.display(),
        );
        std::fs::write(dir.path.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.path.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd");
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let socket = dir.path.join("sock");
        let channel = tokio.block_on(async {
            // The socket exists between containerd's bind and its listen, when a connection is
            // refused: wait for one that is taken.
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::os::unix::net::UnixStream::connect(&socket).is_err() {
                assert!(Instant::now() < deadline, "containerd did not listen");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let socket = socket.clone();
            Endpoint::try_from("http://[::]:0")
                .unwrap()
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let socket = socket.clone();
                    async move {
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                            tokio::net::UnixStream::connect(socket).await?,
                        ))
                    }
                }))
                .await
                .expect("connect to containerd")
        });
        let c = Cluster {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            cgroup_parent: format!("/hullcri{}", n.replace('-', "")),
            dir,
            daemon,
            registry,
            bridge,
            tokio,
            pods: Vec::new(),
        };
        // The CRI plugin comes up after the socket: wait for its answer.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = c.call(|mut r| async move {
                r.version(cri::VersionRequest {
                    version: "v1".into(),
                })
                .await
            });
            match v {
                Ok(v) if v.runtime_name == "containerd" => break,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                other => panic!("the CRI plugin never answered: {other:?}"),
            }
        }
        Some(c)
    }

    /// One RuntimeService call, its answer or the status.
    fn call<T, F>(
        &self,
        f: impl FnOnce(RuntimeServiceClient<Channel>) -> F,
    ) -> Result<T, tonic::Status>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.tokio
            .block_on(f(self.runtime.clone()))
            .map(tonic::Response::into_inner)
    }

    fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host())
    }

    fn pull(&self, name: &str) -> String {
        let image = self.image(name);
        let mut images = self.images.clone();
        let r = self
            .tokio
            .block_on(images.pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }))
            .expect("PullImage")
            .into_inner();
        assert!(r.image_ref.starts_with("sha256:"), "{r:?}");
        image
    }

    /// kubelet's sandbox config for pod `name`: the pod's network unless `host_network`;
    /// `pid` is the pod's (shared) or each container's own.
    fn pod_config(
        &self,
        name: &str,
        host_network: bool,
        pid: cri::NamespaceMode,
    ) -> cri::PodSandboxConfig {
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: unique("uid"),
                namespace: "default".into(),
                attempt: 0,
            }),
            // kubelet names only pods of their own network (the host's keep its name).
            hostname: if host_network {
                String::new()
            } else {
                name.into()
            },
            log_directory: self.dir.path.join("logs").join(name).display().to_string(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: if host_network {
                            cri::NamespaceMode::Node
                        } else {
                            cri::NamespaceMode::Pod
                        } as i32,
                        pid: pid as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run_pod(&mut self, config: &cri::PodSandboxConfig) -> String {
        let config = config.clone();
        let id = self
            .call(|mut r| async move {
                r.run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: "hull".into(),
                })
                .await
            })
            .expect("RunPodSandbox")
            .pod_sandbox_id;
        self.pods.push(id.clone());
        id
    }

    /// Creates and starts `name` in the pod; `pid_ns` is the container's pid namespace mode.
    fn start_container(
        &self,
        pod: &str,
        pod_config: &cri::PodSandboxConfig,
        name: &str,
        image: &str,
        command: &[&str],
    ) -> String {
        let (pod, pod_config) = (pod.to_string(), pod_config.clone());
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: pod_config
                        .linux
                        .as_ref()
                        .and_then(|l| l.security_context.as_ref())
                        .and_then(|s| s.namespace_options.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .call(|mut r| async move {
                r.create_container(cri::CreateContainerRequest {
                    pod_sandbox_id: pod,
                    config: Some(config),
                    sandbox_config: Some(pod_config),
                })
                .await
            })
            .expect("CreateContainer")
            .container_id;
        let start = id.clone();
        self.call(|mut r| async move {
            r.start_container(cri::StartContainerRequest {
                container_id: start,
            })
            .await
        })
        .expect("StartContainer");
        id
    }

    fn exec_sync(&self, id: &str, cmd: &[&str]) -> cri::ExecSyncResponse {
        let (id, cmd) = (id.to_string(), cmd.iter().map(|s| s.to_string()).collect());
        self.call(|mut r| async move {
            r.exec_sync(cri::ExecSyncRequest {
                container_id: id,
                cmd,
                timeout: 10,
            })
            .await
        })
        .expect("ExecSync")
    }

    /// StopPodSandbox and RemovePodSandbox, with its containers.
    fn remove_pod(&self, pod: &str) {
        let p = pod.to_string();
        self.call(|mut r| async move {
            r.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: p })
                .await
        })
        .expect("StopPodSandbox");
        let p = pod.to_string();
        self.call(|mut r| async move {
            r.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: p })
                .await
        })
        .expect("RemovePodSandbox");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for pod in std::mem::take(&mut self.pods) {
            let p = pod.clone();
            let _ = self.call(|mut r| async move {
                r.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: p })
                    .await
            });
            let _ = self.call(|mut r| async move {
                r.remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: pod,
                })
                .await
            });
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        // The shim's state root for the k8s.io namespace, empty once every pod is gone.
        let _ = std::fs::remove_dir("/run/containerd/runc/k8s.io");
        integration::remove_empty_cgroups(self.cgroup_parent.trim_start_matches('/'));
    }
}

/// Runs the exec behind a stream URL as kubectl does, over a WebSocket with Kubernetes'
/// channel protocol (a channel byte before each message: 1 stdout, 3 the final status);
/// returns the output and the status.
fn stream_exec(url: &str) -> (String, String) {
    use tungstenite::client::IntoClientRequest;
    let mut req = url
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .expect("a WebSocket request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().unwrap(),
    );
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let tcp = std::net::TcpStream::connect(addr).expect("the stream server");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut ws, _) = tungstenite::client(req, tcp).expect("WebSocket handshake");
    // kubectl's first message on a terminal: its size (channel 4).
    let mut resize = vec![4u8];
    resize.extend_from_slice(br#"{"Width":80,"Height":24}"#);
    ws.send(tungstenite::Message::Binary(resize.into()))
        .expect("send the terminal size");
    let (mut out, mut status) = (Vec::new(), Vec::new());
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Binary(m)) if !m.is_empty() => match m[0] {
                1 => out.extend_from_slice(&m[1..]),
                3 => status.extend_from_slice(&m[1..]),
                _ => {}
            },
            Ok(tungstenite::Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    (text(&out), text(&status))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn kubelets_calls_run_a_pod_of_two_containers_through_the_runtime() {
    if integration::skip_if_a_hierarchy_lingers("containerd's container stats") {
        return;
    }
    let rt = Runtime::new();
    let Some(mut k) = Cluster::start(&rt) else {
        return;
    };
    let busybox = k.pull("busybox:1");
    let config = k.pod_config("web", false, cri::NamespaceMode::Pod);
    let pod = k.run_pod(&config);
    let status = {
        let p = pod.clone();
        k.call(|mut r| async move {
            r.pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: p,
                verbose: false,
            })
            .await
        })
        .expect("PodSandboxStatus")
        .status
        .expect("a status")
    };
    assert_eq!(status.state, cri::PodSandboxState::SandboxReady as i32);
    let ip = status.network.expect("a pod network").ip;
    assert!(ip.starts_with("10.99.7."), "pod address {ip}");

    let web = k.start_container(
        &pod,
        &config,
        "web",
        &busybox,
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www",
        ],
    );
    let client = k.start_container(&pod, &config, "client", &busybox, &["sleep", "3600"]);
    // Two containers of one pod talk over its localhost.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let r = k.exec_sync(
            &client,
            &["wget", "-q", "-O", "-", "http://127.0.0.1:8080/index.html"],
        );
        if r.exit_code == 0 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        text(&page.stdout),
        "hello-from-web\n",
        "{}",
        text(&page.stderr)
    );
    // ...and share its uts and ipc namespaces, and pid when asked (here: the pod's).
    assert_eq!(text(&k.exec_sync(&client, &["hostname"]).stdout), "web\n");
    let ps = text(&k.exec_sync(&client, &["ps", "-o", "args"]).stdout);
    assert!(ps.contains("sleep inf") && ps.contains("httpd"), "{ps}");
    let failed = k.exec_sync(&client, &["sh", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(
        (failed.exit_code, text(&failed.stderr)),
        (3, "oops\n".into())
    );

    // Stats and a resource update, as kubelet reads and resizes.
    let stats = {
        let id = web.clone();
        k.call(|mut r| async move {
            r.container_stats(cri::ContainerStatsRequest { container_id: id })
                .await
        })
        .expect("ContainerStats")
        .stats
        .expect("stats")
    };
    let memory = stats.memory.expect("memory stats");
    assert!(
        memory.working_set_bytes.map_or(0, |v| v.value) > 0,
        "{memory:?}"
    );
    {
        let id = client.clone();
        k.call(|mut r| async move {
            r.update_container_resources(cri::UpdateContainerResourcesRequest {
                container_id: id,
                linux: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: 64 << 20,
                    cpu_shares: 256,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
        })
        .expect("UpdateContainerResources");
    }
    let limit = k.exec_sync(
        &client,
        &["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"],
    );
    assert_eq!(text(&limit.stdout).trim(), (64u64 << 20).to_string());

    // Exec with a terminal: containerd answers with a stream URL of its own.
    let url = {
        let id = client.clone();
        k.call(|mut r| async move {
            r.exec(cri::ExecRequest {
                container_id: id,
                cmd: vec!["tty".into()],
                // As `kubectl exec -it`: containerd 1.6 relays a terminal's output reliably
                // only with stdin attached too (without it, the output went missing in most
                // runs, with runc as with hull).
                tty: true,
                stdin: true,
                stdout: true,
                ..Default::default()
            })
            .await
        })
        .expect("Exec")
        .url
    };
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let (out, status) = stream_exec(&url);
    assert!(
        out.starts_with("/dev/pts/"),
        "the exec's terminal: {out:?} (status {status:?})"
    );
    assert!(status.contains("Success"), "{status}");

    for id in [&web, &client] {
        let c = id.to_string();
        k.call(|mut r| async move {
            r.stop_container(cri::StopContainerRequest {
                container_id: c,
                timeout: 2,
            })
            .await
        })
        .expect("StopContainer");
        let c = id.to_string();
        k.call(|mut r| async move {
            r.remove_container(cri::RemoveContainerRequest { container_id: c })
                .await
        })
        .expect("RemoveContainer");
    }
    k.remove_pod(&pod);
    k.pods.clear();

    // A pod on the host's network sees the host's interfaces; with its own pid namespace a
    // container does not see the pod's pause process.
    let config = k.pod_config("hostnet", true, cri::NamespaceMode::Container);
    let pod = k.run_pod(&config);
    let c = k.start_container(&pod, &config, "probe", &busybox, &["sleep", "3600"]);
    let links = text(&k.exec_sync(&c, &["ls", "/sys/class/net"]).stdout);
    assert!(links.contains(&k.bridge), "{links}");
    let ps = text(&k.exec_sync(&c, &["ps", "-o", "args"]).stdout);
    assert!(
        !ps.contains("sleep inf") && ps.contains("sleep 3600"),
        "{ps}"
    );
    k.remove_pod(&pod);
    k.pods.clear();
}
