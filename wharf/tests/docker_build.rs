//! wharf's builds against docker 20.10's classic builder (`DOCKER_BUILDKIT=0`) for the same
//! Dockerfiles: the image config and the history, field by field. dockerd runs on its own
//! containerd inside a network namespace the test makes (see the bench helper), so the host's
//! firewall and links are left alone. Skipped, with the reason, where dockerd cannot run.

// The benches' dockerd.
#[path = "../benches/engines/dockerd.rs"]
mod dockerd;

mod common;

use common::Env;
use serde_json::Value;

fn inspect(json: &str) -> Value {
    let v: Value = serde_json::from_str(json).expect("inspect JSON");
    v[0].clone()
}

/// The config fields a Dockerfile sets, as docker and wharf record them.
const FIELDS: [&str; 12] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "ExposedPorts",
    "Volumes",
    "User",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
];

#[test]
fn configs_and_histories_match_dockers_classic_builder() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        integration::skip("dockerd needs root");
        return;
    }
    let env = Env::new();
    let dir = env.path("docker");
    let d = match dockerd::Dockerd::start(&dir) {
        Ok(d) => d,
        Err(why) => {
            integration::skip(&format!("docker's classic builder is not available: {why}"));
            return;
        }
    };
    let tarball = env.busybox_tarball("compare");
    env.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tarball.to_str().unwrap(),
        "busybox",
    ]);
    let mut import = d.client()();
    import
        .args(["import", "-c", "CMD [\"sh\"]"])
        .arg(&tarball)
        .arg("busybox");
    assert!(import.output().unwrap().status.success());
    // (name, Dockerfile, extra build flags)
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "metadata",
            "FROM busybox\nENV A=1 B=\"two words\"\nENV C D E\nLABEL x=y \"z w\"=v\nWORKDIR /app\n\
             WORKDIR sub\nEXPOSE 80 53/udp\nVOLUME /data [\"/logs\"]\nUSER 1000:1000\nSTOPSIGNAL SIGINT\n\
             ENTRYPOINT [\"sh\", \"-c\"]\nCMD [\"echo hi\"]\nHEALTHCHECK --interval=5s --retries=2 CMD true\n\
             ONBUILD RUN echo child\nSHELL [\"/bin/sh\", \"-xc\"]\nMAINTAINER someone\n",
            &[],
        ),
        (
            "layers",
            "FROM busybox\nARG V=1\nCOPY file.txt /dest/\nRUN echo \"$V\" > /made\nCMD echo shell form\n",
            &[],
        ),
        (
            "label-flags",
            "FROM busybox\nLABEL x=y\n",
            &["--label", "z=last", "--label", "flag=given"],
        ),
    ];
    let mut diffs = Vec::new();
    // COPY's source hash is docker's tarsum; wharf's covers content, mode and owner.
    let hash = regex::Regex::new(r"(file|dir):[0-9a-f]{64}").unwrap();
    // Ids differ between the two; everything else on the lines must not.
    let id = regex::Regex::new(r"\b[0-9a-f]{12}\b").unwrap();
    let shape = |o: &str| -> Vec<String> {
        o.lines()
            .skip(1)
            .map(|l| id.replace_all(l.trim_end_matches('\r'), "ID").into_owned())
            .collect()
    };
    for (name, text, extra) in cases {
        let ctx = env.path(&format!("ctx-{name}"));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), text).unwrap();
        std::fs::write(ctx.join("file.txt"), "content\n").unwrap();
        let tag = format!("cmp-{name}");
        let ours_out = env.ok(&[
            "--runtime",
            "runc",
            "build",
            "--network",
            "none",
            "-t",
            &tag,
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .chain([ctx.to_str().unwrap()])
        .collect::<Vec<_>>());
        let mut b = d.client()();
        b.env("DOCKER_BUILDKIT", "0")
            .args(["build", "--network", "none", "-t", &tag])
            .args(extra)
            .arg(&ctx);
        let out = b.output().unwrap();
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The first line: the context's size as docker's client counts it.
        // (docker ends its progress line with a carriage return before the newline.)
        let first = |o: &str| {
            o.lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches('\r')
                .to_string()
        };
        let theirs_out = String::from_utf8_lossy(&out.stdout).into_owned();
        if first(&ours_out) != first(&theirs_out) {
            diffs.push(format!(
                "{name}: {:?} against docker's {:?}",
                first(&ours_out),
                first(&theirs_out)
            ));
        }
        let (o_lines, t_lines) = (shape(&ours_out), shape(&theirs_out));
        if o_lines != t_lines {
            diffs.push(format!(
                "{name}: output:\n  docker {t_lines:#?}\n  wharf {o_lines:#?}"
            ));
        }
        let theirs = inspect(&String::from_utf8_lossy(
            &d.docker(&["image", "inspect", &tag]).unwrap().stdout,
        ));
        let ours = inspect(&env.ok(&["image", "inspect", &tag]));
        for f in FIELDS {
            let (t, o) = (&theirs["Config"][f], &ours["Config"][f]);
            let same = t == o || (t.is_null() && o.as_array().is_some_and(|a| a.is_empty()));
            if !same {
                diffs.push(format!("{name}: Config.{f}: docker {t} wharf {o}"));
            }
        }
        if theirs["Author"] != ours["Author"] {
            diffs.push(format!(
                "{name}: Author: docker {} wharf {}",
                theirs["Author"], ours["Author"]
            ));
        }
        let history = |text: &str| -> Vec<String> { text.lines().map(str::to_string).collect() };
        let fmt = "{{.CreatedBy}}|{{.Size}}";
        let t = String::from_utf8_lossy(
            &d.docker(&["history", "--no-trunc", "--format", fmt, &tag])
                .unwrap()
                .stdout,
        )
        .into_owned();
        let o = env.ok(&["history", "--no-trunc", "--format", fmt, &tag]);
        let (t, o) = (history(&t), history(&o));
        // The base's own entry is where imports differ ("Imported from -"); compare the steps.
        let labels = extra.iter().filter(|f| **f == "--label").count();
        let steps = text.lines().filter(|l| !l.is_empty()).count() - 1 + labels;
        let (t, o) = (&t[..steps.min(t.len())], &o[..steps.min(o.len())]);
        for (a, b) in t.iter().zip(o) {
            let (a, b) = (
                hash.replace_all(a, "$1:HASH"),
                hash.replace_all(b, "$1:HASH"),
            );
            let (ca, sa) = a.rsplit_once('|').unwrap();
            let (cb, sb) = b.rsplit_once('|').unwrap();
            if ca != cb || (sa == "0B") != (sb == "0B") {
                diffs.push(format!("{name}: history: docker {a:?} wharf {b:?}"));
            }
        }
        if t.len() != o.len() {
            diffs.push(format!(
                "{name}: history length: docker {} wharf {}",
                t.len(),
                o.len()
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "wharf differs from docker's classic builder:\n{}",
        diffs.join("\n")
    );
}
