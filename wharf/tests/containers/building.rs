//! `build`, end to end through the runtime under test: the tutorials' Dockerfiles on the
//! busybox image, docker's output, the cache, multi-stage builds and failures that leave
//! nothing behind.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{free_port, runtime, text, Guard};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

fn build(g: &Guard, args: &[&str]) -> (bool, String, String) {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    let out = g.run(&a);
    let (o, e) = text(&out);
    (out.status.success(), o, e)
}

/// Runs wharf with `input` on its stdin.
fn feed(g: &Guard, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = g
        .command(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn steps_using_cache(out: &str) -> usize {
    out.matches(" ---> Using cache").count()
}

#[test]
fn a_tutorial_image_builds_runs_and_rebuilds_from_cache() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let ctx = g.env.path("ctx");
    write(
        &ctx,
        &[
            ("site/index.html", "<h1>built by wharf</h1>\n"),
            ("notes.txt", "copied into the working directory\n"),
            ("big/ignored.bin", "never read"),
            (".dockerignore", "big\n"),
            (
                "Dockerfile",
                "# a web server\nFROM busybox\nLABEL org.example.role=\"web server\"\n\
                 ENV GREETING=hello \\\n    TARGET=world\nWORKDIR /srv\nCOPY site/ www/\nCOPY notes.txt .\n\
                 RUN echo \"$GREETING $TARGET\" > greeting && ls\nEXPOSE 80\n\
                 CMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/srv/www\"]\n",
            ),
        ],
    );
    let ctx_s = ctx.display().to_string();
    let (ok, out, err) = build(&g, &["-t", "web:1", &ctx_s]);
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Sending build context to Docker daemon  "),
        "{out}"
    );
    assert_eq!(lines[1], "Step 1/9 : FROM busybox");
    assert!(out.contains("Step 3/9 : ENV GREETING=hello"), "{out}");
    assert!(
        out.contains("Step 7/9 : RUN echo \"$GREETING $TARGET\" > greeting && ls"),
        "{out}"
    );
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(
        out.contains("greeting\nnotes.txt\nwww\n"),
        "the RUN's output is passed on: {out}"
    );
    assert!(out.contains("Removing intermediate container "), "{out}");
    let id_line = lines[lines.len() - 2];
    assert!(id_line.starts_with("Successfully built "), "{out}");
    assert_eq!(lines[lines.len() - 1], "Successfully tagged web:1");
    // The image is docker-shaped.
    assert_eq!(
        g.ok(&["image", "inspect", "-f", "{{.Config.WorkingDir}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}} {{index .Config.Labels \"org.example.role\"}}", "web:1"]).trim(),
        "/srv [\"httpd\",\"-f\",\"-p\",\"80\",\"-h\",\"/srv/www\"] {\"80/tcp\":{}} web server"
    );
    let history = g.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "web:1",
    ]);
    assert!(
        history.contains("/bin/sh -c echo \"$GREETING $TARGET\" > greeting && ls"),
        "{history}"
    );
    assert!(
        history.contains("/bin/sh -c #(nop) WORKDIR /srv"),
        "{history}"
    );
    assert_eq!(
        g.ok(&["run", "--rm", "web:1", "cat", "greeting"]),
        "hello world\n"
    );
    // `COPY f .` lands in the working directory.
    assert_eq!(
        g.ok(&["run", "--rm", "web:1", "cat", "/srv/notes.txt"]),
        "copied into the working directory\n"
    );
    let listing = g.ok(&["run", "--rm", "web:1", "ls", "/srv/www"]);
    assert_eq!(listing, "index.html\n");
    // Published with -p through the runtime under test, the page answers.
    let port = free_port();
    g.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "web:1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let got = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut r = String::new();
            s.read_to_string(&mut r)?;
            Ok(r)
        })();
        match got {
            Ok(r) if r.contains("200 OK") => break r,
            _ if Instant::now() > deadline => panic!("the built image's server did not answer"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(page.ends_with("<h1>built by wharf</h1>\n"), "{page}");
    g.ok(&["rm", "-f", "web"]);
    // Rebuilt unchanged: every step after FROM from the cache, same id.
    let (ok, again, _) = build(&g, &["-t", "web:1", &ctx_s]);
    assert!(ok);
    assert_eq!(steps_using_cache(&again), 8, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(again.lines().rev().nth(1), Some(id_line));
    // Intermediate images stay out of `images`, and are there with -a.
    assert_eq!(g.ok(&["images", "-q"]).lines().count(), 2);
    assert!(g.ok(&["images", "-a", "-q"]).lines().count() > 2);
    // An ENV change rebuilds only what follows it; a touch changes nothing, a chmod does.
    let df = std::fs::read_to_string(ctx.join("Dockerfile")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        df.replace("TARGET=world", "TARGET=there"),
    )
    .unwrap();
    let (ok, changed, _) = build(&g, &["-t", "web:2", &ctx_s]);
    assert!(ok, "{changed}");
    assert_eq!(
        steps_using_cache(&changed),
        1,
        "only LABEL precedes the ENV: {changed}"
    );
    assert_eq!(
        g.ok(&["run", "--rm", "web:2", "cat", "greeting"]),
        "hello there\n"
    );
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.join("site/index.html"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    let (_, touched, _) = build(&g, &["-t", "web:2", &ctx_s]);
    assert_eq!(steps_using_cache(&touched), 8, "{touched}");
    std::fs::set_permissions(
        ctx.join("site/index.html"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (_, chmodded, _) = build(&g, &["-t", "web:2", &ctx_s]);
    assert_eq!(
        steps_using_cache(&chmodded),
        3,
        "COPY and what follows rebuild: {chmodded}"
    );
    // `builder prune` takes the cache and its images; tagged images stay.
    let pruned = g.ok(&["builder", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    assert_eq!(g.ok(&["images", "-a", "-q"]).lines().count(), 3);
    let (_, cold, _) = build(&g, &["-t", "web:1", &ctx_s]);
    assert_eq!(steps_using_cache(&cold), 0, "{cold}");
}

#[test]
fn multi_stage_targets_args_and_archives() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let ctx = g.env.path("ctx");
    // A tar for ADD to unpack.
    let tarball = ctx.join("files.tar");
    std::fs::create_dir_all(&ctx).unwrap();
    {
        let mut b = tar::Builder::new(std::fs::File::create(&tarball).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "inner/file.txt", &b"inside"[..])
            .unwrap();
        b.into_inner().unwrap();
    }
    write(
        &ctx,
        &[(
            "Dockerfile",
            "ARG FLAVOR=plain\nFROM busybox AS builder\nARG FLAVOR\nARG EXTRA=none\n\
             RUN echo \"$FLAVOR-$EXTRA\" > /made.txt\n\
             FROM busybox AS broken\nRUN exit 9\n\
             FROM scratch\nCOPY --from=builder /made.txt /out/made.txt\n\
             COPY --from=builder /bin/busybox /bin/busybox\nADD files.tar /data/\n\
             CMD [\"/bin/busybox\", \"cat\", \"/out/made.txt\"]\n",
        )],
    );
    let ctx_s = ctx.display().to_string();
    // The broken stage is not needed by the target and never runs.
    let (ok, out, err) = build(
        &g,
        &[
            "-t",
            "multi",
            "--build-arg",
            "FLAVOR=spicy",
            "--build-arg",
            "UNUSED=1",
            &ctx_s,
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(!out.contains("exit 9"), "{out}");
    assert!(
        out.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{out}"
    );
    assert_eq!(g.ok(&["run", "--rm", "multi"]), "spicy-none\n");
    assert_eq!(
        g.ok(&[
            "run",
            "--rm",
            "multi",
            "/bin/busybox",
            "cat",
            "/data/inner/file.txt"
        ]),
        "inside"
    );
    // Only the final stage's layers are in the image: no /bin/sh from busybox's stage.
    let out = g.run(&["run", "--rm", "multi", "/bin/busybox", "ls", "/bin"]);
    assert_eq!(text(&out).0, "busybox\n");
    // --target stops at a stage; the failing one fails with docker's words and exit 1.
    let (ok, out, err) = build(&g, &["--target", "broken", &ctx_s]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("The command '/bin/sh -c exit 9' returned a non-zero code: 9"),
        "{err}"
    );
    assert_eq!(
        g.ok(&["ps", "-a", "-q"]),
        "",
        "no intermediate container is left"
    );
    let (ok, _, err) = build(&g, &["--target", "nosuch", &ctx_s]);
    assert!(
        !ok && err.contains("failed to reach build target nosuch"),
        "{err}"
    );
}

#[test]
fn bad_dockerfiles_fail_before_any_step() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let ctx = g.env.path("ctx");
    write(&ctx, &[("Dockerfile", "FROM busybox\nRUNN echo hi\n")]);
    let ctx_s = ctx.display().to_string();
    let out = g.run(&["build", &ctx_s]);
    assert_eq!(out.status.code(), Some(1));
    let (o, e) = text(&out);
    assert!(e.contains("dockerfile parse error line 2"), "{e}");
    assert!(!o.contains("Step"), "{o}");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nADD https://example.invalid/x /x\n",
        )],
    );
    let out = g.run(&["build", &ctx_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out)
            .1
            .contains("downloading a remote source is not supported"),
        "{:?}",
        text(&out)
    );
    write(
        &ctx,
        &[("Dockerfile", "FROM busybox\nCOPY missing.txt /\n")],
    );
    let out = g.run(&["build", &ctx_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("missing.txt"), "{:?}", text(&out));
    g.assert_clean();
}

#[test]
fn a_killed_build_is_cleaned_up_by_the_next() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let ctx = g.env.path("ctx");
    write(
        &ctx,
        &[("Dockerfile", "FROM busybox\nRUN echo started && sleep 60\n")],
    );
    let mut child = g
        .command(&["build", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    // The RUN's own output line, not the Step line that shows the command.
    while !seen.contains("\nstarted\n") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the build ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // SAFETY: kill has no memory preconditions; the pid is the build this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let left = g.ok(&["ps", "-a"]);
    assert!(
        left.contains("Up "),
        "its RUN container is left running: {left}"
    );
    write(&ctx, &[("Dockerfile", "FROM busybox\nENV QUICK=1\n")]);
    let (ok, out, err) = build(&g, &[ctx.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert_eq!(g.ok(&["ps", "-a", "-q"]), "", "the next build removed it");
}

#[test]
fn heredocs_and_a_dockerfile_from_stdin() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let ctx = g.env.path("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN <<EOF\necho one > /one\necho two >> /one\nEOF\n\
             COPY <<EOF /etc/motd\nwelcome $NAME\nEOF\nRUN <<DATA cat > /two\nline a\nline b\nDATA\n\
             COPY <<first.txt <<'second.txt' /docs/\none $NAME\nfirst.txt\ntwo $NAME\nsecond.txt\n\
             RUN cat <<A > /three && \\\n  tr a-z A-Z <<-'B' >> /three\nfirst $((1<<3))\nA\n\tsecond\n\tB\n\
             RUN <<EOF\n#!/bin/sh -e\necho \"script $0\" > /four\nEOF\n\
             COPY <<note.txt file.txt /docs/\ninline\nnote.txt\n\
             ADD <<EOF /five\nadded\nEOF\n\
             CMD [\"cat\", \"/one\", \"/etc/motd\", \"/two\", \"/docs/first.txt\", \"/docs/second.txt\", \
             \"/three\", \"/four\", \"/docs/note.txt\", \"/docs/file.txt\", \"/five\"]\n",
        ), ("file.txt", "from the context\n")],
    );
    let (ok, out, err) = build(&g, &["-t", "docs", ctx.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        g.ok(&["run", "--rm", "docs"]),
        "one\ntwo\nwelcome \nline a\nline b\none \ntwo $NAME\n\
         first 8\nSECOND\nscript /dev/pipes/EOF\ninline\nfrom the context\nadded\n"
    );
    // A changed `#!` script is another step, though its command (the path) is the same.
    let edited = std::fs::read_to_string(ctx.join("Dockerfile"))
        .unwrap()
        .replace("script $0", "edited $0");
    std::fs::write(ctx.join("Dockerfile"), edited).unwrap();
    let (ok, out, err) = build(&g, &["-t", "docs", ctx.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(
        g.ok(&["run", "--rm", "docs"])
            .contains("edited /dev/pipes/EOF"),
        "{out}"
    );
    // A here-document among other sources needs a directory destination, as docker's
    // rule for several sources has it.
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY <<A file.txt /notadir\nx\nA\n",
        )],
    );
    let (ok, _, err) = build(&g, &[ctx.to_str().unwrap()]);
    assert!(!ok && err.contains("must be a directory"), "{err}");
    // `-f -`: the Dockerfile comes on stdin, the context from the path.
    let out = feed(
        &g,
        &["build", "-q", "-f", "-", ctx.to_str().unwrap()],
        b"FROM busybox\nLABEL from=stdin\n",
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(id.starts_with("sha256:"), "-q prints the id alone: {id}");
    assert_eq!(
        g.ok(&[
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"from\"}}",
            &id
        ])
        .trim(),
        "stdin"
    );
}

#[test]
fn run_mounts_and_chown_by_name() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let ctx = g.env.path("ctx");
    write(
        &ctx,
        &[
            ("data.txt", "from the context\n"),
            ("owned.txt", "bob's\n"),
            (
                "Dockerfile",
                "FROM busybox\nARG N=1\n\
                 RUN --mount=type=cache,target=/cache echo \"$N\" >> /cache/log && cat /cache/log\n\
                 RUN --mount=type=bind,source=data.txt,target=/data.txt cat /data.txt\n\
                 RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch\n\
                 COPY --chown=bob:wheel owned.txt /owned.txt\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    let (ok, first, err) = build(&g, &["-t", "mounts", "--build-arg", "N=1", c]);
    assert!(ok, "{first}{err}");
    assert!(first.contains("from the context\n"), "{first}");
    assert!(first.contains("\nx\n"), "{first}");
    // The cache mount keeps what the first build wrote.
    let (ok, second, err) = build(&g, &["--build-arg", "N=2", c]);
    assert!(ok, "{second}{err}");
    assert!(second.contains("1\n2\n"), "{second}");
    // Neither the tmpfs nor the bind leaves anything in the image.
    let out = g.ok(&[
        "run",
        "--rm",
        "mounts",
        "sh",
        "-c",
        "ls /scratch /data.txt 2>&1; stat -c '%u:%g' /owned.txt",
    ]);
    assert!(out.contains("1000:10"), "bob is 1000, wheel is 10: {out}");
    assert!(
        !out.contains("/scratch/x") && out.contains("No such file"),
        "{out}"
    );
    // The mounts' options reach the mount; RUN --network picks the step's network; a
    // sharing mode other than shared is refused by name.
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN --mount=type=cache,target=/c2,mode=0700,uid=1000 stat -c '%a %u' /c2\n\
             RUN --mount=type=tmpfs,target=/t,size=1m,mode=0750 stat -c '%a' /t\n\
             RUN --network=none ls /sys/class/net\n",
        )],
    );
    let (ok, out, err) = build(&g, &[c]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\n700 1000\n"), "{out}");
    assert!(out.contains("\n750\n"), "{out}");
    assert!(out.contains("\nlo\n"), "{out}");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/c,sharing=locked true\n",
        )],
    );
    let (ok, _, err) = build(&g, &[c]);
    assert!(
        !ok && err.contains("sharing=locked is not supported"),
        "{err}"
    );
}

#[test]
fn a_context_or_a_dockerfile_on_stdin() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    // A tar of the context on stdin.
    let mut tar = tar::Builder::new(Vec::new());
    for (name, body) in [
        (
            "Dockerfile",
            "FROM busybox\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
        ),
        ("hello.txt", "from a piped context\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        tar.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    let data = tar.into_inner().unwrap();
    let out = feed(&g, &["build", "-t", "piped", "-"], &data);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(g.ok(&["run", "--rm", "piped"]), "from a piped context\n");
    // A lone Dockerfile on stdin: an empty context.
    let out = feed(
        &g,
        &["build", "-t", "lone", "-"],
        b"FROM busybox\nENV LONE=1\n",
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(g
        .ok(&["image", "inspect", "-f", "{{json .Config.Env}}", "lone"])
        .contains("LONE=1"));
    // stdin cannot be both, as docker says.
    let out = feed(&g, &["build", "-f", "-", "-"], &data);
    assert!(!out.status.success());
    assert!(
        text(&out)
            .1
            .contains("can't use stdin for both build context and dockerfile"),
        "{:?}",
        text(&out)
    );
    // Nothing of the piped contexts stays in the data root.
    let left: Vec<_> = std::fs::read_dir(g.env.root())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("build-context-")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn onbuild_triggers_run_in_the_child_build() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let base = g.env.path("base");
    write(
        &base,
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD COPY note.txt /note.txt\nONBUILD RUN echo triggered > /triggered\n",
        )],
    );
    let (ok, out, err) = build(&g, &["-t", "parent", base.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        g.ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.OnBuild}}",
            "parent"
        ])
        .trim(),
        "[\"COPY note.txt /note.txt\",\"RUN echo triggered \\u003e /triggered\"]"
    );
    let child = g.env.path("child");
    write(
        &child,
        &[
            ("note.txt", "from the child's context\n"),
            (
                "Dockerfile",
                "FROM parent\nCMD [\"cat\", \"/note.txt\", \"/triggered\"]\n",
            ),
        ],
    );
    let (ok, out, err) = build(&g, &["-t", "child", child.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("# Executing 2 build triggers"), "{out}");
    assert_eq!(
        g.ok(&["run", "--rm", "child"]),
        "from the child's context\ntriggered\n"
    );
    // Triggers fire once: the child does not pass them on.
    assert_eq!(
        g.ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.OnBuild}}",
            "child"
        ])
        .trim(),
        "null"
    );
}

#[test]
fn independent_stages_build_at_the_same_time() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    // The two stages' RUN steps meet in a shared cache mount: each leaves its mark and
    // waits (up to 60 s) for the other's, which only a build that runs them at the same
    // time can give, however slowly the machine starts containers.
    let meet = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=meet,target=/meet touch /meet/{me} && i=0 && \\\n  \
             while [ ! -e /meet/{other} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done && \\\n  \
             test -e /meet/{other} && echo {me} met {other} > /met\n"
        )
    };
    let dockerfile = format!(
        "FROM busybox AS a\n{}FROM busybox AS b\n{}FROM busybox\n\
         COPY --from=a /met /a.met\nCOPY --from=b /met /b.met\n",
        meet("a", "b"),
        meet("b", "a")
    );
    let ctx = g.env.path("ctx");
    write(&ctx, &[("Dockerfile", dockerfile.as_str())]);
    let (ok, out, err) = build(&g, &["-t", "both", ctx.to_str().unwrap()]);
    assert!(ok, "the stages did not meet: {out}{err}");
    // Numbered by the file, reported stage by stage.
    let a = out
        .find("Step 1/7 : FROM busybox AS a")
        .expect("stage a's steps");
    let b = out
        .find("Step 3/7 : FROM busybox AS b")
        .expect("stage b's steps");
    assert!(a < b, "{out}");
    assert!(
        out.contains("Step 7/7 : COPY --from=b /met /b.met"),
        "{out}"
    );
    assert_eq!(
        g.ok(&["run", "--rm", "both", "cat", "/a.met", "/b.met"]),
        "a met b\nb met a\n"
    );
}

#[test]
fn entrypoint_and_cmd_forms_ignored_files_and_build_flags() {
    let Some(g) = Guard::new(&runtime()) else {
        return;
    };
    let ctx = g.env.path("ctx");
    write(
        &ctx,
        &[
            (".dockerignore", "secret\n"),
            (
                "Dockerfile",
                "FROM busybox AS exec\nENTRYPOINT [\"echo\", \"ep\"]\nCMD [\"default\"]\n\
                 FROM busybox AS shell\nENTRYPOINT echo shell-ep\nCMD [\"ignored\"]\n\
                 FROM busybox AS cmdonly\nCMD echo cmd-shell\n\
                 FROM busybox AS proxy\nRUN echo \"proxy=$HTTP_PROXY\" > /proxy\nCOPY . /ctx/\n",
            ),
        ],
    );
    // A FIFO in an ignored directory: reading it would block the build forever.
    std::fs::create_dir_all(ctx.join("secret")).unwrap();
    let fifo = std::ffi::CString::new(ctx.join("secret/pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let c = ctx.to_str().unwrap();
    for (target, tag) in [
        ("exec", "m-exec"),
        ("shell", "m-shell"),
        ("cmdonly", "m-cmd"),
    ] {
        let (ok, out, err) = build(&g, &["--target", target, "-t", tag, c]);
        assert!(ok, "{out}{err}");
    }
    // Exec ENTRYPOINT takes CMD or the run's arguments; shell form ignores both; CMD alone
    // runs through the shell; --entrypoint replaces the image's.
    assert_eq!(g.ok(&["run", "--rm", "m-exec"]), "ep default\n");
    assert_eq!(g.ok(&["run", "--rm", "m-exec", "given"]), "ep given\n");
    assert_eq!(g.ok(&["run", "--rm", "m-shell", "given"]), "shell-ep\n");
    assert_eq!(g.ok(&["run", "--rm", "m-cmd"]), "cmd-shell\n");
    assert_eq!(
        g.ok(&["run", "--rm", "--entrypoint", "echo", "m-exec", "over"]),
        "over\n"
    );
    // A predefined proxy ARG reaches RUN without an ARG line and stays out of the history;
    // --rm=false keeps the step's container, and the next build leaves it alone.
    let (ok, out, err) = build(
        &g,
        &[
            "--target",
            "proxy",
            "-t",
            "m-proxy",
            "--rm=false",
            "--build-arg",
            "HTTP_PROXY=http://127.0.0.1:3128",
            c,
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(!out.contains("Removing intermediate container"), "{out}");
    assert!(!out.contains("were not consumed"), "{out}");
    assert_eq!(
        g.ok(&["run", "--rm", "m-proxy", "cat", "/proxy"]),
        "proxy=http://127.0.0.1:3128\n"
    );
    // The CREATED BY column only: an image id may hold the digits by chance.
    let history = g.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "m-proxy",
    ]);
    assert!(history.contains("echo \"proxy=$HTTP_PROXY\""), "{history}");
    assert!(!history.contains("3128"), "{history}");
    assert!(!g
        .ok(&["run", "--rm", "m-proxy", "ls", "/ctx"])
        .contains("secret"));
    assert_eq!(
        g.ok(&["ps", "-a", "-q"]).lines().count(),
        1,
        "the kept container"
    );
    let (ok, _, _) = build(&g, &["--target", "exec", c]);
    assert!(ok);
    assert_eq!(
        g.ok(&["ps", "-a", "-q"]).lines().count(),
        1,
        "kept across builds"
    );
}
