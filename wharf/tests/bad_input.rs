//! Garbage in (#20): Dockerfiles (tests/corpus/dockerfile), `run` flags, image archives
//! for `load` (their manifests, configs and layers) and tarballs for `import`. Each case
//! exits non-zero with one clear message naming what is wrong, never panics, and leaves
//! the store as it was: no image, container, volume, blob, snapshot or temporary file.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Output;

use common::{tar_header, Env};
use wharf::image::digest::Digest;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure of the kind asked for: the exit code, no panic, and the message naming the
/// problem.
fn refused(what: &str, out: &Output, code: i32, names: &str) {
    let err = stderr(out);
    println!("{what}: {}", err.trim_end());
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(err.contains(names), "{what}: expected {names:?} in: {err}");
}

/// The store holds what it held before: the same files (the database aside), no temporary
/// file, no container and no volume.
fn unchanged(env: &Env, before: &[(std::path::PathBuf, u64)], what: &str) {
    assert_eq!(env.snapshot(), before, "{what}: the store changed");
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "", "{what}");
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "", "{what}");
}

/// (corpus file, what the message must name)
const DOCKERFILES: &[(&str, &str)] = &[
    ("empty.Dockerfile", "expected at least one FROM"),
    ("no-from.Dockerfile", "line 1, column 1: expected FROM"),
    (
        "unknown-instruction.Dockerfile",
        "unknown instruction 'FOO'",
    ),
    ("open-heredoc.Dockerfile", "end of here-document (EOF)"),
    ("open-substitution.Dockerfile", "missing '}'"),
    ("bad-escape.Dockerfile", "invalid escape 'x'"),
    ("bad-expose.Dockerfile", "invalid containerPort: abc"),
    ("bad-healthcheck.Dockerfile", "invalid interval: xx"),
    (
        "empty-from.Dockerfile",
        "FROM instruction requires at least one argument",
    ),
    (
        "copy-one-argument.Dockerfile",
        "COPY instruction requires at least two",
    ),
    (
        "user-no-argument.Dockerfile",
        "USER instruction requires exactly one",
    ),
    ("bad-signal.Dockerfile", "Invalid signal: SIGFOO"),
    ("binary.Dockerfile", "valid UTF-8"),
    ("bad-run-mount.Dockerfile", "nope"),
    ("bad-chmod.Dockerfile", "999"),
    // The classic builder's answer (BuildKit's ADD --checksum is not in it).
    ("bad-checksum.Dockerfile", "Unknown flag: checksum"),
    ("duplicate-stage.Dockerfile", "one"),
];

#[test]
fn bad_dockerfiles_are_refused_before_anything_is_built() {
    if !common::have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    env.import("bad", "busybox");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/dockerfile");
    let listed: Vec<&str> = DOCKERFILES.iter().map(|(f, _)| *f).collect();
    for e in std::fs::read_dir(&corpus).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(listed.contains(&name.as_str()), "{name} has no expectation");
    }
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("a"), b"a").unwrap();
    let before = env.snapshot();
    for (file, names) in DOCKERFILES {
        let out = env.run(&[
            "build",
            "-f",
            corpus.join(file).to_str().unwrap(),
            ctx.to_str().unwrap(),
        ]);
        refused(file, &out, 1, names);
        unchanged(&env, &before, file);
    }
}

/// (flags of `create`, exit code, what the message must name)
const RUN_FLAGS: &[(&[&str], i32, &str)] = &[
    (&["-p", "abc"], 125, "invalid containerPort: abc"),
    (&["-p", "70000:80"], 125, "invalid hostPort: 70000"),
    (&["-v", ":/x"], 125, "empty section between colons"),
    (&["-v", "/a:relative"], 125, "'/a:relative'"),
    (&["-v", "/a:/b:bogus"], 125, "invalid mode: bogus"),
    (
        &["--mount", "type=bogus,dst=/x"],
        125,
        "mount type \"bogus\"",
    ),
    (&["--mount", "type=bind,dst=/x"], 125, "type=bind,dst=/x"),
    (&["--memory", "1q"], 125, "invalid size: '1q'"),
    (&["--cpus", "x"], 125, "\"x\" for \"--cpus\""),
    (
        &["--restart", "sometimes"],
        125,
        "restart policy format: sometimes",
    ),
    (
        &["--add-host", "nohost"],
        125,
        "bad format for add-host: \"nohost\"",
    ),
    (&["--security-opt", "bogus"], 125, "\"bogus\""),
    (&["--tmpfs", "relative"], 125, "'relative'"),
    (&["--stop-signal", "SIGFOO"], 125, "Invalid signal: SIGFOO"),
    (&["--cpuset-cpus", "999"], 125, "requested 999"),
    (&["-e", "=x"], 125, "invalid environment variable: =x"),
    (&["--name", "a b"], 125, "Invalid container name (a b)"),
    (&["--network", "nosuch"], 125, "network nosuch not found"),
    (&["--mac-address", "xx"], 125, "invalid MAC address: xx"),
    (&["-w", "relative"], 125, "'relative'"),
    (
        &["--cap-add", "NOPE"],
        125,
        "unknown capability: \"CAP_NOPE\"",
    ),
    (&["--pids-limit", "x"], 125, "'x' for '--pids-limit"),
    (&["--health-interval", "xx"], 125, "invalid duration \"xx\""),
    (
        &["--volumes-from", "nosuch"],
        125,
        "No such container: nosuch",
    ),
    (&["--link", "nosuch:x"], 125, "No such container: nosuch"),
    (&["--expose", "abc"], 125, "invalid containerPort: abc"),
    (&["--env-file", "/nonexistent/env"], 125, "/nonexistent/env"),
    (
        &["--user", "nobody-here"],
        125,
        "unable to find user nobody-here",
    ),
];

#[test]
fn bad_run_flags_are_refused_before_anything_is_made() {
    if !common::have("/bin/busybox", "busybox-static") {
        return;
    }
    let env = Env::new();
    env.import("bad", "busybox");
    let before = env.snapshot();
    for (flags, code, names) in RUN_FLAGS {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let out = env.run(&args);
        let what = flags.join(" ");
        refused(&what, &out, *code, names);
        unchanged(&env, &before, &what);
    }
}

/// An archive of `files` (path, content) as `save` would write one.
fn archive(env: &Env, name: &str, files: &[(&str, Vec<u8>)]) -> std::path::PathBuf {
    let path = env.path(name);
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (p, data) in files {
        let mut h = tar_header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, p, &data[..]).unwrap();
    }
    b.into_inner().unwrap();
    path
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A one-file layer, uncompressed.
fn layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar_header(tar::EntryType::Regular, 0o644, 2);
    b.append_data(&mut h, "hi", &b"hi"[..]).unwrap();
    b.into_inner().unwrap()
}

fn config(diff_ids: &[&Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": wharf::operations::system::go_arch(),
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

fn manifest(config: &str, layers: &[&str], tags: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([
        {"Config": config, "RepoTags": tags, "Layers": layers}
    ]))
    .unwrap()
}

#[test]
fn bad_image_archives_are_refused_and_leave_nothing() {
    let env = Env::new();
    let l = layer();
    let diff = Digest::of(&l);
    let good_config = config(&[&diff]);
    let other = Digest::of(b"other").to_string();
    let absent = Digest::of(b"absent").to_string();
    let cases: Vec<(&str, std::path::PathBuf, &str)> = vec![
        ("empty", archive(&env, "empty.tar", &[]), "manifest"),
        (
            "garbage",
            {
                let p = env.path("garbage.tar");
                std::fs::write(&p, vec![0x5au8; 3000]).unwrap();
                p
            },
            "",
        ),
        (
            "manifest.json is not JSON",
            archive(&env, "m.tar", &[("manifest.json", b"{not json".to_vec())]),
            "manifest.json",
        ),
        (
            "a config the manifest names is missing",
            archive(
                &env,
                "nocfg.tar",
                &[
                    ("manifest.json", manifest("c.json", &["l.tar"], &["x:1"])),
                    ("l.tar", l.clone()),
                ],
            ),
            "c.json",
        ),
        (
            "a layer the manifest names is missing",
            archive(
                &env,
                "nolayer.tar",
                &[
                    ("manifest.json", manifest("c.json", &["l.tar"], &["x:1"])),
                    ("c.json", good_config.clone()),
                ],
            ),
            "l.tar",
        ),
        (
            "more diff_ids than layers",
            archive(
                &env,
                "count.tar",
                &[
                    ("manifest.json", manifest("c.json", &["l.tar"], &["x:1"])),
                    ("c.json", config(&[&diff, &diff])),
                    ("l.tar", l.clone()),
                ],
            ),
            "diff_ids",
        ),
        (
            "a layer that is not the diff_id",
            archive(
                &env,
                "diff.tar",
                &[
                    ("manifest.json", manifest("c.json", &["l.tar"], &["x:1"])),
                    ("c.json", config(&[&Digest::parse(&other).unwrap()])),
                    ("l.tar", l.clone()),
                ],
            ),
            &other,
        ),
        (
            "a truncated gzip layer",
            archive(
                &env,
                "trunc.tar",
                &[
                    ("manifest.json", manifest("c.json", &["l.tar.gz"], &["x:1"])),
                    ("c.json", good_config.clone()),
                    ("l.tar.gz", gzip(&l)[..20].to_vec()),
                ],
            ),
            "",
        ),
        (
            "a config that is not JSON",
            archive(
                &env,
                "badcfg.tar",
                &[
                    ("manifest.json", manifest("c.json", &["l.tar"], &["x:1"])),
                    ("c.json", b"[1, 2".to_vec()),
                    ("l.tar", l.clone()),
                ],
            ),
            "",
        ),
        (
            "a tag that is no reference",
            archive(
                &env,
                "tag.tar",
                &[
                    (
                        "manifest.json",
                        manifest("c.json", &["l.tar"], &["Bad Name!"]),
                    ),
                    ("c.json", good_config.clone()),
                    ("l.tar", l.clone()),
                ],
            ),
            "Bad Name!",
        ),
        (
            "an index naming a blob that is not there",
            archive(
                &env,
                "index.tar",
                &[
                    ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
                    (
                        "index.json",
                        serde_json::to_vec(&serde_json::json!({
                            "schemaVersion": 2,
                            "manifests": [{
                                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "digest": absent,
                                "size": 6
                            }]
                        }))
                        .unwrap(),
                    ),
                ],
            ),
            &absent,
        ),
    ];
    for (what, path, names) in &cases {
        let out = env.run(&["load", "-i", path.to_str().unwrap()]);
        refused(what, &out, 1, names);
        assert_eq!(stderr(&out).lines().count(), 1, "{what}: {}", stderr(&out));
        assert_eq!(env.ok(&["images", "-q"]), "", "{what}");
        let tmp: Vec<_> = ["images/blobs/tmp", "snapshots/tmp"]
            .iter()
            .flat_map(|d| std::fs::read_dir(env.root().join(d)).into_iter().flatten())
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(tmp.is_empty(), "{what}: {tmp:?}");
    }
    // What the refused archives stored is no image's: a prune takes it all.
    env.ok(&["image", "prune", "-a", "-f"]);
    let left: Vec<_> = std::fs::read_dir(env.root().join("images/blobs/sha256"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_tarballs_for_import_are_refused() {
    let env = Env::new();
    env.ok(&["images"]);
    let garbage = env.path("garbage.tar");
    std::fs::write(&garbage, vec![0xa5u8; 5000]).unwrap();
    let truncated = env.path("truncated.tar.gz");
    std::fs::write(&truncated, &gzip(&layer())[..30]).unwrap();
    for (what, path) in [("garbage", &garbage), ("truncated gzip", &truncated)] {
        let before = env.snapshot();
        let out = env.run(&["import", path.to_str().unwrap(), "imp:1"]);
        refused(what, &out, 1, "");
        assert_eq!(stderr(&out).lines().count(), 1, "{what}: {}", stderr(&out));
        assert_eq!(env.snapshot(), before, "{what}: the store changed");
    }
}
