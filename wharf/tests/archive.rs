//! save/load round trips and interoperability with podman and skopeo archives.

mod common;

use common::{have, podman, tool, Env};

#[test]
fn save_and_load_round_trip_in_both_formats() {
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let id = env.import("rt", "rt:1");
    for format in ["docker-archive", "oci-archive"] {
        let out = env.path(&format!("{format}.tar"));
        env.ok(&[
            "save",
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
            "rt:1",
        ]);
        let other = Env::new();
        assert_eq!(
            other.ok(&["load", "-i", out.to_str().unwrap()]),
            "Loaded image: rt:1\n"
        );
        let got = other.ok(&["image", "inspect", "-f", "{{.Id}}", "rt:1"]);
        assert_eq!(got.trim(), id);
    }
    // gzip'd archives load too, from stdin.
    let plain = std::fs::read(env.path("docker-archive.tar")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let other = Env::new();
    let out = other
        .wharf()
        .arg("load")
        .write_stdin(gz.finish().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Loaded image: rt:1\n");
}

#[test]
fn corrupt_archive_is_rejected_and_store_unchanged() {
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    env.import("c", "c:1");
    let out = env.path("c.tar");
    env.ok(&["save", "-o", out.to_str().unwrap(), "c:1"]);
    let mut bytes = std::fs::read(&out).unwrap();
    // Flip a byte well inside the layer blob (busybox is the bulk of the archive).
    let n = bytes.len() / 2;
    bytes[n] ^= 0xff;
    let bad = env.path("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();
    let other = Env::new();
    other.import("x", "x:1");
    other.ok(&["image", "prune", "-f"]);
    let before = other.snapshot();
    let err = other.fails(&["load", "-i", bad.to_str().unwrap()]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    other.ok(&["image", "prune", "-f"]);
    assert_eq!(other.snapshot(), before);
    assert_eq!(other.ok(&["images", "--format", "{{.Repository}}"]), "x\n");
    let err = other.fails(&["load", "-i", env.busybox_tarball("n").to_str().unwrap()]);
    assert!(
        err.contains("neither manifest.json nor index.json"),
        "{err}"
    );
}

#[test]
fn skopeo_reads_wharf_archives_and_wharf_loads_skopeo_archives() {
    if !have("/bin/busybox", "busybox-static") || !have("/usr/bin/skopeo", "skopeo") {
        return;
    }
    let env = Env::new();
    let id = env.import("s", "s:1");
    let saved = env.path("s.tar");
    env.ok(&["save", "-o", saved.to_str().unwrap(), "s:1"]);
    let info = tool(
        std::process::Command::new("skopeo")
            .args(["inspect", &format!("docker-archive:{}", saved.display())]),
    );
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["Architecture"], "amd64");
    let info = tool(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--config",
        &format!("oci-archive:{}:1", saved.display()),
    ]));
    assert!(info.contains("Imported from -"), "{info}");

    for (transport, file) in [("docker-archive", "sk-d.tar"), ("oci-archive", "sk-o.tar")] {
        let dest = env.path(file);
        tool(std::process::Command::new("skopeo").args([
            "copy",
            &format!("docker-archive:{}", saved.display()),
            &format!("{transport}:{}:localhost/sk:{}", dest.display(), "2"),
        ]));
        let other = Env::new();
        let out = other.ok(&["load", "-i", dest.to_str().unwrap()]);
        assert_eq!(out, "Loaded image: localhost/sk:2\n", "{transport}");
        // skopeo may rewrite the config when it converts to OCI (so the ID can change); the
        // layers must be the same content either way.
        let layers =
            |e: &Env, r: &str| e.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", r]);
        assert_eq!(
            layers(&other, "localhost/sk:2"),
            layers(&env, "s:1"),
            "{transport}"
        );
        if transport == "docker-archive" {
            let got = other.ok(&["images", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"]);
            assert_eq!(
                got,
                format!("{} localhost/sk:2\n", &id[7..19]),
                "{transport}"
            );
        }
    }
}

#[test]
fn podman_loads_wharf_archives_and_wharf_loads_podman_archives() {
    if !have("/bin/busybox", "busybox-static") || !have("/usr/bin/podman", "podman") {
        return;
    }
    let env = Env::new();
    let id = env.import("p", "p:1");
    let saved = env.path("p.tar");
    env.ok(&["save", "-o", saved.to_str().unwrap(), "p:1"]);
    let pd = env.path("podman");
    let out = tool(podman(&pd).args(["load", "-i", saved.to_str().unwrap()]));
    assert!(out.contains("Loaded image: docker.io/library/p:1"), "{out}");
    let ids = tool(podman(&pd).args(["images", "--no-trunc", "--format", "{{.ID}}"]));
    assert_eq!(ids.trim(), id);
    tool(podman(&pd).args(["tag", "docker.io/library/p:1", "localhost/pp:3"]));
    for format in ["docker-archive", "oci-archive"] {
        let out = env.path(&format!("podman-{format}.tar"));
        tool(podman(&pd).args([
            "save",
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
            "localhost/pp:3",
        ]));
        let other = Env::new();
        assert_eq!(
            other.ok(&["load", "-i", out.to_str().unwrap()]),
            "Loaded image: localhost/pp:3\n",
            "{format}"
        );
        let got = other.ok(&["image", "inspect", "-f", "{{.Id}}", "localhost/pp:3"]);
        assert_eq!(got.trim(), id, "{format}");
    }
}
