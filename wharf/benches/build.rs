//! `build` of a six-step tutorial Dockerfile, side by side in one run, as ratios to wharf:
//! cold (`--no-cache`), fully cached, and after a one-line change of the last step, for
//! wharf (driving hull, the release build), docker 20.10's classic builder
//! (`DOCKER_BUILDKIT=0`, dockerd confined to a network namespace of the bench's) and
//! buildah 1.28 (`buildah bud --layers`, runc). RUN steps use `--network none` everywhere.
//! Needs root; a missing docker or buildah is reported and left out.
//!
//! Run: `cargo bench -p wharf --bench build` (`WHARF_BENCH_RUNS=N`, default 5 per case).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;
// The benches' dockerd; this bench does not enter the namespace.
#[path = "engines/dockerd.rs"]
mod dockerd;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOCKERFILE: &str = "FROM busybox\nENV APP=/srv/app\nWORKDIR /srv/app\nCOPY site/ ./\n\
RUN echo built > stamp && ls > listing\nCMD [\"httpd\", \"-f\", \"-p\", \"80\"]\n";

/// How a tool builds a context, with the cache or without.
type BuildCommand = Box<dyn Fn(&Path, bool) -> Command>;

/// A builder under test.
struct Tool {
    name: String,
    build: BuildCommand,
}

fn run(mut c: Command, what: &str) -> Result<Duration, String> {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(took)
}

fn main() {
    if !support::ready("build", &[]) {
        return;
    }
    let runs: usize = support::env_or("WHARF_BENCH_RUNS", 5);
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("busybox.tar");
    support::rootfs_tar(&tar, &["sh", "ls", "echo", "httpd"]);
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(ctx.join("site")).unwrap();
    std::fs::write(ctx.join("site/index.html"), "<h1>bench</h1>\n").unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();

    let mut tools = Vec::new();
    let wharf = PathBuf::from(env!("CARGO_BIN_EXE_wharf"));
    let wroot = dir.path().join("wharf");
    let hull = support::hull();
    let w = {
        let (wharf, wroot, hull) = (wharf.clone(), wroot.clone(), hull.clone());
        move || {
            let mut c = Command::new(&wharf);
            c.arg("--data-root").arg(&wroot).arg("--runtime").arg(&hull);
            c
        }
    };
    let mut import = w();
    import
        .args(["import", "-c", "CMD [\"sh\"]"])
        .arg(&tar)
        .arg("busybox");
    run(import, "wharf import").unwrap();
    {
        let w = w.clone();
        tools.push(Tool {
            name: "wharf + hull".into(),
            build: Box::new(move |ctx, cache| {
                let mut c = w();
                c.args(["build", "-q", "--network", "none", "-t", "bench"]);
                if !cache {
                    c.arg("--no-cache");
                }
                c.arg(ctx);
                c
            }),
        });
    }
    let docker = match dockerd::Dockerd::start(&dir.path().join("docker")) {
        Ok(d) => {
            let mut import = d.client()();
            import
                .args(["import", "-c", "CMD [\"sh\"]"])
                .arg(&tar)
                .arg("busybox");
            run(import, "docker import").unwrap();
            let client = d.client();
            tools.push(Tool {
                name: "docker classic".into(),
                build: Box::new(move |ctx, cache| {
                    let mut c = client();
                    c.env("DOCKER_BUILDKIT", "0").args([
                        "build",
                        "-q",
                        "--network",
                        "none",
                        "-t",
                        "bench",
                    ]);
                    if !cache {
                        c.arg("--no-cache");
                    }
                    c.arg(ctx);
                    c
                }),
            });
            Some(d)
        }
        Err(why) => {
            println!("docker: not measured ({why})");
            None
        }
    };
    let broot = dir.path().join("buildah");
    let buildah = {
        let broot = broot.clone();
        move || {
            let mut c = Command::new("buildah");
            c.arg("--root")
                .arg(broot.join("root"))
                .arg("--runroot")
                .arg(broot.join("runroot"))
                .args(["--storage-driver", "vfs"]);
            c
        }
    };
    if Command::new("buildah").arg("--version").output().is_ok() {
        let out = buildah().args(["from", "scratch"]).output().unwrap();
        let ctr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut add = buildah();
        add.args(["add", &ctr]).arg(&tar).arg("/");
        run(add, "buildah add").unwrap();
        let mut commit = buildah();
        commit.args(["commit", "-q", &ctr, "busybox"]);
        run(commit, "buildah commit").unwrap();
        let b = buildah.clone();
        tools.push(Tool {
            name: "buildah bud".into(),
            build: Box::new(move |ctx, cache| {
                let mut c = b();
                c.args([
                    "bud",
                    "--layers",
                    "--pull-never",
                    "--runtime",
                    "runc",
                    "--network",
                    "none",
                    "-q",
                    "-t",
                    "bench",
                ]);
                if !cache {
                    c.arg("--no-cache");
                }
                c.arg(ctx);
                c
            }),
        });
    } else {
        println!("buildah: not measured (apt-get install buildah; .ci/setup does)");
    }

    let result = (|| -> Result<(), String> {
        let mut cold = vec![Vec::new(); tools.len()];
        let mut cached = vec![Vec::new(); tools.len()];
        let mut changed = vec![Vec::new(); tools.len()];
        for round in 0..runs {
            for (i, t) in tools.iter().enumerate() {
                std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).map_err(|e| e.to_string())?;
                cold[i].push(run((t.build)(&ctx, false), &t.name)?);
                cached[i].push(run((t.build)(&ctx, true), &t.name)?);
                let edited = DOCKERFILE.replace("\"80\"", &format!("\"{}\"", 8000 + round));
                std::fs::write(ctx.join("Dockerfile"), edited).map_err(|e| e.to_string())?;
                changed[i].push(run((t.build)(&ctx, true), &t.name)?);
            }
        }
        println!(
            "build of a 6-step Dockerfile, {runs} rounds, interleaved; median and ratio to wharf"
        );
        println!(
            "{:<16} {:>16} {:>16} {:>20}",
            "", "cold", "fully cached", "last step changed"
        );
        let base: Vec<Duration> = [&mut cold, &mut cached, &mut changed]
            .into_iter()
            .map(|c| support::median(&mut c[0]))
            .collect();
        for (i, t) in tools.iter().enumerate() {
            let cells: Vec<String> = [&mut cold, &mut cached, &mut changed]
                .into_iter()
                .zip(&base)
                .map(|(c, b)| {
                    let m = support::median(&mut c[i]);
                    format!(
                        "{:>7.1}ms {:>5.2}x",
                        m.as_secs_f64() * 1000.0,
                        m.as_secs_f64() / b.as_secs_f64()
                    )
                })
                .collect();
            println!(
                "{:<16} {:>16} {:>16} {:>20}",
                t.name, cells[0], cells[1], cells[2]
            );
        }
        Ok(())
    })();
    drop(tools);
    drop(docker);
    let _ = buildah()
        .args(["rm", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("umount")
        .arg("-R")
        .arg(&broot)
        .stderr(Stdio::null())
        .status();
    common::remove_network_state(&wroot);
    common::remove_empty_cgroup_parents(&["wharf", "buildah"]);
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
