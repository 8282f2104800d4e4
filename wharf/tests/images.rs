//! Black-box tests of the local image commands: import, images, tag, rmi, history,
//! inspect and prune, against a temporary data root.

mod common;

use common::{have, Env};

#[test]
fn import_list_tag_inspect_history_rmi() {
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let id = env.import("one", "busybox:1");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let short = &id[7..19];
    let out = env.ok(&["images"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "REPOSITORY   TAG       IMAGE ID       CREATED                  SIZE"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(row[0].trim(), "busybox");
    assert_eq!(row[1].trim(), "1");
    assert_eq!(row[2].trim(), short);

    env.ok(&["tag", "busybox:1", "localhost:5000/bb:v2"]);
    env.ok(&["image", "tag", short, "other"]);
    let q = env.ok(&["images", "-q"]);
    assert_eq!(q.trim(), short);
    let f = env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = f.lines().collect();
    names.sort();
    assert_eq!(names, ["busybox:1", "localhost:5000/bb:v2", "other:latest"]);
    let f = env.ok(&[
        "images",
        "--filter",
        "reference=busy*",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(f.trim(), "busybox");

    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "busybox:1"])).unwrap();
    let obj = &inspect[0];
    assert_eq!(obj["Id"], id.as_str());
    assert_eq!(obj["RepoTags"].as_array().unwrap().len(), 3);
    assert_eq!(obj["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(obj["Size"].as_u64().unwrap() > 500_000);
    assert!(obj["Metadata"]["LastTagTime"].is_string());
    let t = env.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{json .RepoTags}}",
        "other",
    ]);
    assert!(t.starts_with(&id), "{t}");
    assert!(t.contains("\"busybox:1\""), "{t}");

    let h = env.ok(&["history", "busybox:1"]);
    assert!(h.starts_with("IMAGE          CREATED"), "{h}");
    assert!(h.contains("Imported from -"), "{h}");

    // Untagging one name keeps the image; removing the last deletes it and its layer.
    assert_eq!(env.ok(&["rmi", "other"]), "Untagged: other:latest\n");
    env.ok(&["image", "rm", "localhost:5000/bb:v2"]);
    let out = env.ok(&["rmi", "busybox:1"]);
    assert!(
        out.starts_with("Untagged: busybox:1\nDeleted: sha256:"),
        "{out}"
    );
    assert_eq!(env.ok(&["images", "-q"]), "");
    let blobs = std::fs::read_dir(env.root().join("images/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
    let snaps: Vec<_> = std::fs::read_dir(env.root().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(snaps, ["tmp"]);
}

#[test]
fn import_applies_changes_and_message() {
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let t = env.busybox_tarball("c");
    env.ok(&[
        "import",
        "-c",
        "CMD [\"/bin/sh\"]",
        "-c",
        "ENV A=1",
        "-m",
        "hello",
        t.to_str().unwrap(),
        "c:1",
    ]);
    let cfg = env.ok(&["image", "inspect", "-f", "{{json .Config}}", "c:1"]);
    assert_eq!(cfg.trim(), r#"{"Cmd":["/bin/sh"],"Env":["A=1"]}"#);
    assert!(env.ok(&["history", "c:1"]).contains("hello"));
    let err = env.fails(&["import", "-c", "RUN true", t.to_str().unwrap(), "d:1"]);
    assert!(err.contains("RUN is not a valid change command"), "{err}");
}

#[test]
fn bad_input_is_one_clear_error_and_changes_nothing() {
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    env.import("keep", "keep:1");
    let before = env.snapshot();
    let err = env.fails(&["rmi", "nope"]);
    assert_eq!(err, "Error: No such image: nope:latest\n");
    let err = env.fails(&["tag", "keep:1", "Bad/Name"]);
    assert!(err.contains("must be lowercase"), "{err}");
    // docker's words, without the input repeated.
    assert_eq!(
        env.fails(&["tag", "keep:1", "a:b:c"]),
        "Error: invalid reference format\n"
    );
    let digest = format!("a@sha256:{}", "0".repeat(64));
    assert_eq!(
        env.fails(&["tag", "keep:1", &digest]),
        "Error: refusing to create a tag with a digest reference\n"
    );
    let err = env.fails(&["image", "inspect", "keep:1", "missing:2"]);
    assert!(err.contains("No such image: missing:2"), "{err}");

    // A truncated gzip tarball.
    let good = std::fs::read(env.busybox_tarball("x")).unwrap();
    let bad = env.path("truncated.tgz");
    std::fs::write(&bad, &good[..good.len() / 2]).unwrap();
    let err = env.fails(&["import", bad.to_str().unwrap(), "broken:1"]);
    assert_eq!(err.lines().count(), 1, "{err}");

    // A tar entry climbing out of the layer.
    let mut tar = Vec::new();
    let mut h = tar::Header::new_ustar();
    h.as_mut_bytes()[..12].copy_from_slice(b"../../escape");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    tar.extend_from_slice(&[b'x'; 512]);
    tar.extend_from_slice(&[0; 1024]);
    let evil = env.path("evil.tar");
    std::fs::write(&evil, &tar).unwrap();
    let err = env.fails(&["import", evil.to_str().unwrap(), "evil:1"]);
    assert!(err.contains("escapes the layer directory"), "{err}");
    assert!(!env.dir.path().join("escape").exists());

    // The lock is shared for imports; an exclusive command cleans temporaries, so compare
    // after one.
    env.ok(&["images"]);
    env.ok(&["image", "prune", "-f"]);
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.ok(&["images", "--format", "{{.Repository}}"]), "keep\n");
}

#[test]
fn usage_errors_exit_125() {
    let env = Env::new();
    let out = env.run(&["images", "--bogus"]);
    assert_eq!(out.status.code(), Some(125));
    let out = env.run(&["images", "--filter", "color=red"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: invalid filter 'color'\n"
    );
}

#[test]
fn prune_removes_dangling_then_all() {
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    env.import("a", "a:1");
    let old = env.import("b", "b:1");
    env.import("c", "b:1");
    let dangling = env.ok(&["images", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.trim(), &old[7..19]);
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with(&format!("Deleted Images:\ndeleted: {old}\n")),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), 2);
    env.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(env.ok(&["images", "-q"]), "");
}

/// `images` rows as sorted `repository:tag` names.
fn names(env: &Env, args: &[&str]) -> Vec<String> {
    let mut all = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
    all.extend_from_slice(args);
    let mut v: Vec<String> = env.ok(&all).lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn images_filters_work_and_combine_like_docker() {
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let t = |m: &str| env.busybox_tarball(m).to_str().unwrap().to_string();
    let (ta, tb) = (t("fa"), t("fb"));
    // Created in this order: app:1, app:2, the image that loses tool:1, tool:1.
    env.ok(&["import", "-c", "LABEL tier=web", &ta, "app:1"]);
    env.ok(&[
        "import",
        "-c",
        "LABEL tier=db",
        "-c",
        "LABEL team=x",
        &tb,
        "app:2",
    ]);
    let old = env.import("fc", "tool:1");
    env.import("fd", "tool:1");
    let f = |args: &[&str]| {
        let mut v = Vec::new();
        for a in args {
            v.extend(["--filter", *a]);
        }
        names(&env, &v)
    };

    assert_eq!(f(&["dangling=true"]), ["<none>:<none>"]);
    assert_eq!(
        env.ok(&["images", "-q", "--no-trunc", "-f", "dangling=true"]),
        format!("{old}\n")
    );
    assert_eq!(f(&["dangling=false"]), ["app:1", "app:2", "tool:1"]);

    assert_eq!(f(&["reference=app"]), ["app:1", "app:2"]);
    assert_eq!(f(&["reference=app:1"]), ["app:1"]);
    assert_eq!(f(&["reference=*:1"]), ["app:1", "tool:1"]);
    assert_eq!(f(&["reference=a[p]p:[2-9]"]), ["app:2"]);
    // Several references widen the match; the positional name is one more of them.
    assert_eq!(
        f(&["reference=app:2", "reference=tool"]),
        ["app:2", "tool:1"]
    );
    assert_eq!(
        names(&env, &["app:1", "--filter", "reference=tool"]),
        ["app:1", "tool:1"]
    );
    assert_eq!(names(&env, &["tool"]), ["tool:1"]);

    assert_eq!(f(&["before=app:2"]), ["app:1"]);
    assert_eq!(f(&["since=app:2"]), ["<none>:<none>", "tool:1"]);
    // Several values resolve to the strictest one.
    assert_eq!(
        f(&["since=app:1", "since=app:2"]),
        ["<none>:<none>", "tool:1"]
    );
    assert_eq!(f(&["before=tool:1", "before=app:2"]), ["app:1"]);
    assert_eq!(
        f(&["since=app:1", "before=tool:1"]),
        ["<none>:<none>", "app:2"]
    );

    assert_eq!(f(&["label=tier"]), ["app:1", "app:2"]);
    assert_eq!(f(&["label=tier=db"]), ["app:2"]);
    assert_eq!(f(&["label=tier=db", "label=team"]), ["app:2"]);
    assert!(f(&["label=tier=web", "label=team"]).is_empty());

    // Different keys all apply.
    assert_eq!(f(&["label=tier", "reference=*:1"]), ["app:1"]);
    assert_eq!(f(&["since=app:1", "dangling=false"]), ["app:2", "tool:1"]);
    assert_eq!(f(&["since=app:1", "dangling=true"]), ["<none>:<none>"]);
    assert!(f(&["dangling=true", "reference=*"]).is_empty());

    for (filter, err) in [
        ("x=1", "invalid filter 'x'"),
        ("dangling=maybe", "invalid filter 'dangling=maybe'"),
        ("reference=[", "syntax error in pattern"),
        ("before=nope", "No such image: nope:latest"),
        ("label", "bad format of filter (expected name=value)"),
    ] {
        assert_eq!(
            env.fails(&["images", "--filter", filter]),
            format!("Error: {err}\n")
        );
    }
}

#[test]
fn import_detects_gzip_xz_and_zstd_and_reads_stdin() {
    use std::io::{Read, Write};
    if !have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(env.busybox_tarball("z")).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let inputs = [
        ("plain", tar.clone()),
        ("gzip", gz.finish().unwrap()),
        ("xz", xz.finish().unwrap()),
        ("zstd", zstd::encode_all(&tar[..], 3).unwrap()),
    ];
    let layer_of = |name: &str| {
        env.ok(&["image", "inspect", "-f", "{{index .RootFS.Layers 0}}", name])
            .trim()
            .to_string()
    };
    let mut layers = Vec::new();
    for (kind, data) in &inputs {
        let file = env.path(&format!("rootfs.{kind}"));
        std::fs::write(&file, data).unwrap();
        env.ok(&["import", file.to_str().unwrap(), &format!("z:{kind}")]);
        layers.push(layer_of(&format!("z:{kind}")));
    }
    // From standard input, with the change applied.
    let out = env
        .wharf()
        .args(["import", "-c", "WORKDIR /etc", "-", "z:stdin"])
        .write_stdin(inputs[3].1.clone())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    layers.push(layer_of("z:stdin"));
    // The layer is the uncompressed tar whatever the input's compression.
    use sha2::Digest as _;
    let want = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)));
    assert!(layers.iter().all(|l| *l == want), "{layers:?} vs {want}");
    assert_eq!(
        env.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.WorkingDir}}",
            "z:stdin"
        ]),
        "/etc\n"
    );
}
