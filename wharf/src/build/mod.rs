//! `build`: a Dockerfile and its context become an image, step by step as docker's classic
//! builder does it and prints it (`Step 2/5 : ...`, ` ---> Using cache`, `Successfully
//! built ...`), with BuildKit's habit of skipping the stages the target does not need.
//! Every step's result is an image in the store (untagged, hidden from `images` like
//! docker's intermediate images) and a row in the build cache: the key is the parent
//! image, the instruction after expansion, and for COPY/ADD the content, mode and owner
//! of every source. RUN steps run in a container through the chosen runtime, on the
//! default bridge unless `--network` says otherwise, and leave no container behind.
//! The operation reports progress through a line sink and never prints.

pub mod dockerignore;
pub mod expand;
pub mod heredoc;
pub mod layer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parse_dockerfile::{Command, Instruction, Source};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::container::{self, create, ops, HostConfig};
use crate::context::Context;
use crate::image::compression::Compression;
use crate::image::digest::Digest;
use crate::image::install;
use crate::image::lookup;
use crate::image::oci::Descriptor;
use crate::image::reference::ImageRef;
use crate::image::registry;
use crate::image::ImageError;
use dockerignore::Matcher;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dockerfile parse error line {line}, column {column}: {msg}")]
    Parse {
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("{0}")]
    Dockerignore(#[from] dockerignore::PatternError),
    #[error("failed to process {text:?}: {source}")]
    Expand {
        text: String,
        source: expand::ExpandError,
    },
    #[error("failed to reach build target {0} in Dockerfile")]
    Target(String),
    #[error("the Dockerfile has no stage: it needs a FROM instruction")]
    NoStage,
    #[error("{0}")]
    Unsupported(String),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("{0}")]
    Step(String),
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Create(#[from] create::CreateError),
    #[error(transparent)]
    Ops(#[from] ops::OpsError),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Lookup(#[from] lookup::LookupError),
    #[error(transparent)]
    Reference(#[from] crate::image::reference::RefError),
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
}

/// What `build` was asked for.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile, `context/Dockerfile` when None.
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<String>,
    /// `--build-arg K=V`, or `K` alone to take the value from the environment.
    pub build_args: Vec<String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: BTreeMap<String, String>,
    /// NetworkMode of RUN steps.
    pub network: String,
    pub runtime_path: PathBuf,
    /// `--pull`: FROM images are pulled even when the store has them.
    pub pull: bool,
    /// The Dockerfile's text when it does not come from a file (`-f -`).
    pub dockerfile_text: Option<String>,
    /// `--rm=false`: the containers of successful RUN steps stay.
    pub keep_intermediates: bool,
}

/// Marks a build's intermediate containers with their builder, so that the next build
/// removes those a killed build left (`system prune` removes them once stopped).
pub const BUILD_LABEL: &str = "io.wharf.build.intermediate";

/// Marks the containers `--rm=false` keeps: once their step succeeded they are the
/// user's, not leftovers.
const KEEP_LABEL: &str = "io.wharf.build.keep";

/// The image a stage has built so far.
#[derive(Debug, Clone)]
struct Image {
    /// None for `scratch` before its first layer.
    id: Option<Digest>,
    config: Value,
    layers: Vec<Descriptor>,
}

impl Image {
    fn scratch() -> Self {
        Image {
            id: None,
            config: json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            layers: Vec::new(),
        }
    }

    fn cfg(&mut self) -> &mut Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"].as_object_mut().expect("an object")
    }

    fn env(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|a| strings(a))
            .unwrap_or_default()
    }

    fn workdir(&self) -> String {
        self.config["config"]["WorkingDir"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn parent_key(&self) -> String {
        self.id
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_else(|| "scratch".into())
    }
}

fn short(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

/// docker's `units.HumanSize` (four significant digits, decimal units).
fn context_size(size: u64) -> String {
    crate::format::human_size_with(size, 4)
}

/// The text of the instruction as written, continuation lines joined (comment lines
/// inside it dropped, as docker does).
fn original(text: &str, start: usize, escape: char) -> String {
    let mut out = String::new();
    for (n, l) in text[start..].split('\n').enumerate() {
        let l = l.trim_end_matches('\r');
        if n > 0 && l.trim_start().starts_with('#') {
            continue;
        }
        match l.trim_end().strip_suffix(escape) {
            Some(cont) => out.push_str(cont),
            None => {
                out.push_str(l);
                break;
            }
        }
    }
    out.trim().to_string()
}

fn shell_text(raw: &str, escape: char) -> String {
    original(raw, 0, escape)
}

/// Starts of every instruction, for the `Step` lines.
fn instruction_start(i: &Instruction) -> usize {
    match i {
        Instruction::Add(x) => x.add.span.start,
        Instruction::Arg(x) => x.arg.span.start,
        Instruction::Cmd(x) => x.cmd.span.start,
        Instruction::Copy(x) => x.copy.span.start,
        Instruction::Entrypoint(x) => x.entrypoint.span.start,
        Instruction::Env(x) => x.env.span.start,
        Instruction::Expose(x) => x.expose.span.start,
        Instruction::From(x) => x.from.span.start,
        Instruction::Healthcheck(x) => x.healthcheck.span.start,
        Instruction::Label(x) => x.label.span.start,
        Instruction::Maintainer(x) => x.maintainer.span.start,
        Instruction::Onbuild(x) => x.onbuild.span.start,
        Instruction::Run(x) => x.run.span.start,
        Instruction::Shell(x) => x.shell.span.start,
        Instruction::Stopsignal(x) => x.stopsignal.span.start,
        Instruction::User(x) => x.user.span.start,
        Instruction::Volume(x) => x.volume.span.start,
        Instruction::Workdir(x) => x.workdir.span.start,
        _ => 0,
    }
}

/// A command of RUN/CMD/ENTRYPOINT as the config records it: exec form as given, shell
/// form through the stage's shell.
fn command_of(c: &Command, shell: &[String], escape: char) -> (Vec<String>, bool) {
    match c {
        Command::Exec(v) => (v.value.iter().map(|s| s.value.to_string()).collect(), false),
        Command::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(shell_text(s.value, escape));
            (v, true)
        }
        _ => (Vec::new(), false),
    }
}

/// Variables a stage sees: build args declared so far (with their values) under the
/// image's environment.
struct Vars {
    args: BTreeMap<String, String>,
}

impl Vars {
    /// A variable as instructions see it: a build arg declared so far, else the image's
    /// environment.
    fn lookup<'a>(&'a self, env: &'a [String]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| self.args.get(k).cloned().or_else(|| lookup_env(env, k))
    }
}

/// docker's predefined ARGs: usable without an ARG line, and left out of the history.
const PREDEFINED_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

fn lookup_env(env: &[String], name: &str) -> Option<String> {
    env.iter().rev().find_map(|e| {
        e.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

/// A COPY/ADD source as written: a path (in the context or in `--from`'s filesystem), or a
/// here-document's file by name in the step's own directory.
enum CopySource {
    Path(String),
    Doc(String),
}

/// The builder's state over one Dockerfile.
struct Builder<'a> {
    ctx: &'a mut Context,
    o: &'a Options,
    out: &'a mut dyn FnMut(&str),
    ignore: Matcher,
    given_args: HashMap<String, String>,
    used_args: HashSet<String>,
    step: usize,
    steps: usize,
    /// The stage's shell as docker writes it before `#(nop)` in history.
    shell_prefix: String,
    /// RUN here-documents the parser did not take.
    lifted: &'a heredoc::Lifted,
}

/// Builds the image; returns its id. Intermediate containers are removed whatever happens.
pub fn build(
    ctx: &mut Context,
    o: &Options,
    out: &mut dyn FnMut(&str),
) -> Result<Digest, BuildError> {
    let dockerfile = o
        .dockerfile
        .clone()
        .unwrap_or_else(|| o.context.join("Dockerfile"));
    let written = match &o.dockerfile_text {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(&dockerfile).map_err(|source| BuildError::Read {
            path: dockerfile.clone(),
            source,
        })?,
    };
    let lifted = heredoc::lift(&written);
    let text = &lifted.text;
    let ignore_text = std::fs::read_to_string(o.context.join(".dockerignore")).unwrap_or_default();
    let ignore = Matcher::parse(&ignore_text)?;
    let mut given_args = HashMap::new();
    for a in &o.build_args {
        match a.split_once('=') {
            Some((k, v)) => given_args.insert(k.to_string(), v.to_string()),
            None => std::env::var(a)
                .ok()
                .and_then(|v| given_args.insert(a.clone(), v)),
        };
    }
    let Plan {
        dockerfile,
        escape,
        names,
        global,
        target,
        needed,
        deps,
    } = plan(text, &given_args, o.target.as_deref())?;
    let stages: Vec<parse_dockerfile::Stage> = dockerfile.stages().collect();
    out(&format!(
        "Sending build context to Docker daemon  {}",
        context_size(context_bytes(&o.context, &ignore))
    ));
    let steps: usize = needed
        .iter()
        .map(|i| stages[*i].instructions.len() + 1)
        .sum::<usize>()
        + o.labels.len();
    let mut b = Builder {
        ctx,
        o,
        out,
        ignore,
        given_args,
        used_args: HashSet::new(),
        step: 0,
        steps,
        shell_prefix: "/bin/sh -c".into(),
        lifted: &lifted,
    };
    remove_leftovers(b.ctx)?;
    // Step numbers follow the file, whatever order the stages build in.
    let mut offsets = HashMap::new();
    let mut at = 0;
    for &i in &needed {
        offsets.insert(i, at);
        at += stages[i].instructions.len() + 1;
    }
    // Stages whose dependencies are built run together, each on a thread of its own with
    // its own store connection; their output is passed on stage by stage as each wave ends.
    let mut results: HashMap<usize, Image> = HashMap::new();
    let mut pending = needed.clone();
    while !pending.is_empty() {
        let wave: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|i| deps[i].iter().all(|d| results.contains_key(d)))
            .collect();
        pending.retain(|i| !wave.contains(i));
        if let [i] = wave[..] {
            b.step = offsets[&i];
            let img = b.stage(text, escape, &stages, &names, i, &global, &results)?;
            results.insert(i, img);
            continue;
        }
        let root = b.ctx.root.clone();
        let (ignore, given) = (b.ignore.clone(), b.given_args.clone());
        let done = &results;
        let outcomes: Vec<StageOutcome> = std::thread::scope(|sc| {
            let handles: Vec<_> = wave
                .iter()
                .map(|&i| {
                    let (root, ignore, given) = (&root, &ignore, &given);
                    let (text, stages, names, global, offsets, lifted) =
                        (text, &stages, &names, &global, &offsets, &lifted);
                    sc.spawn(move || {
                        let mut lines = Vec::new();
                        let mut used = HashSet::new();
                        let result = (|| {
                            let mut ctx = Context::open(root, crate::context::Access::Shared)?;
                            let mut sink = |l: &str| lines.push(l.to_string());
                            let mut sb = Builder {
                                ctx: &mut ctx,
                                o,
                                out: &mut sink,
                                ignore: ignore.clone(),
                                given_args: given.clone(),
                                used_args: HashSet::new(),
                                step: offsets[&i],
                                steps,
                                shell_prefix: "/bin/sh -c".into(),
                                lifted,
                            };
                            let img = sb.stage(text, escape, stages, names, i, global, done);
                            used = std::mem::take(&mut sb.used_args);
                            img
                        })();
                        StageOutcome {
                            stage: i,
                            result,
                            lines,
                            used,
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a build stage's thread panicked"))
                .collect()
        });
        let mut first_error = None;
        for o in outcomes {
            for l in &o.lines {
                (b.out)(l);
            }
            b.used_args.extend(o.used);
            match o.result {
                Ok(img) => {
                    results.insert(o.stage, img);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    let mut final_img = results.remove(&target).expect("the target was built");
    // docker's classic builder adds each `--label` (in key order) as a LABEL step of the
    // target stage.
    b.step = at;
    for (k, v) in &o.labels {
        let shown = format!("{k}={v}");
        b.step_line(&format!("LABEL {shown}"));
        let cfg = final_img.cfg();
        let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        labels[k] = json!(v);
        final_img = b.commit_meta(final_img, "LABEL", &shown)?;
    }
    let unused: Vec<&String> = b
        .given_args
        .keys()
        .filter(|k| !b.used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() {
        let mut names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        names.sort();
        (b.out)(&format!(
            "[Warning] One or more build-args [{}] were not consumed",
            names.join(" ")
        ));
    }
    let id = match final_img.id.clone() {
        Some(id) => id,
        None => b.install(&final_img)?,
    };
    (b.out)(&format!("Successfully built {}", short(&id)));
    for t in &o.tags {
        let r = ImageRef::parse(t)?;
        b.ctx.db.tag(&r.to_string(), &id)?;
        (b.out)(&format!("Successfully tagged {}", r.familiar()));
    }
    Ok(id)
}

/// A Dockerfile read and checked before anything runs: its escape character, stages and
/// their names, the global ARGs, the stages the target needs and what each one uses.
pub struct Plan<'a> {
    pub dockerfile: parse_dockerfile::Dockerfile<'a>,
    pub escape: char,
    pub names: Vec<Option<String>>,
    pub global: BTreeMap<String, String>,
    /// The stage built, by index.
    pub target: usize,
    pub needed: Vec<usize>,
    pub deps: HashMap<usize, Vec<usize>>,
}

/// Parses `text` (here-documents already lifted) and resolves what building `target` (the
/// last stage when None) with `given_args` needs, without touching the store.
pub fn plan<'a>(
    text: &'a str,
    given_args: &HashMap<String, String>,
    target: Option<&str>,
) -> Result<Plan<'a>, BuildError> {
    let df = parse_dockerfile::parse(text).map_err(|e| {
        // The parser's text ends with the position this error already gives first.
        let at = format!(" at line {} column {}", e.line(), e.column());
        let msg = e.to_string();
        BuildError::Parse {
            line: e.line(),
            column: e.column(),
            msg: msg.strip_suffix(&at).unwrap_or(&msg).to_string(),
        }
    })?;
    let escape = df
        .parser_directives
        .escape
        .as_ref()
        .map(|d| d.value.value)
        .unwrap_or('\\');
    let stages: Vec<parse_dockerfile::Stage> = df.stages().collect();
    let names: Vec<Option<String>> = stages
        .iter()
        .map(|s| {
            s.from
                .as_
                .as_ref()
                .map(|(_, n)| n.value.to_ascii_lowercase())
        })
        .collect();
    let target = match target {
        Some(t) => names
            .iter()
            .position(|n| n.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| BuildError::Target(t.to_string()))?,
        None => stages.len().checked_sub(1).ok_or(BuildError::NoStage)?,
    };
    // Global ARGs (before the first FROM) only reach FROM lines.
    let mut global = BTreeMap::new();
    for a in df.global_args() {
        for w in expand::words(&a.arguments.value, &|_| None, escape).map_err(|source| {
            BuildError::Expand {
                text: a.arguments.value.to_string(),
                source,
            }
        })? {
            let (k, v) = w
                .split_once('=')
                .map(|(k, v)| (k, Some(v)))
                .unwrap_or((&w, None));
            let v = given_args
                .get(k)
                .cloned()
                .or(v.map(String::from))
                .unwrap_or_default();
            global.insert(k.to_string(), v);
        }
    }
    let (needed, deps) = needed_stages(&stages, &names, target, &global, escape)?;
    drop(stages);
    Ok(Plan {
        dockerfile: df,
        escape,
        names,
        global,
        target,
        needed,
        deps,
    })
}

/// Unpacks a build context sent as a tar archive (plain, gzip, zstd or xz: `build -`)
/// into `into`, keeping every entry inside it.
pub fn unpack_context(data: impl Read + Send, into: &Path) -> std::io::Result<()> {
    let (kind, reader) = crate::image::compression::decoder(data)?;
    let mut a = tar::Archive::new(reader);
    a.set_preserve_permissions(true);
    for e in a.entries()? {
        let mut e = e?;
        let name = e.path()?.into_owned();
        // unpack_in refuses paths that would leave `into`. Its errors say "failed to unpack"
        // with paths in our temporary directory, the cause innermost: name the entry and
        // the cause.
        e.unpack_in(into).map_err(|err| {
            let mut cause: &dyn std::error::Error = &err;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            std::io::Error::new(err.kind(), format!("{}: {cause}", name.display()))
        })?;
    }
    // The archive ends before the compressed stream does: read the stream out, so that its
    // decoder checks the trailer (gzip's CRC and length, zstd's and xz's checksums) and a
    // damaged context is refused instead of built. A plain tar has nothing to check, and its
    // writer need not be waited for. What a compressed stream holds past the archive is
    // bounded: a client could send endless zeros that decompress for ever. (Bytes after the
    // last gzip member, zero padding from `dd conv=sync` say, fail here as a gzip header.)
    if kind == crate::image::compression::Compression::None {
        return Ok(());
    }
    let after = std::io::copy(
        &mut a.into_inner().take(MAX_AFTER_ARCHIVE + 1),
        &mut std::io::sink(),
    )
    .map_err(|e| std::io::Error::new(e.kind(), format!("after the last entry: {e}")))?;
    if after > MAX_AFTER_ARCHIVE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "after the last entry: more than {} KiB of data past the archive's end",
                MAX_AFTER_ARCHIVE >> 10
            ),
        ));
    }
    Ok(())
}

/// What a compressed context may hold past its archive's end blocks (tar's own padding to a
/// 10 KiB record is inside it).
const MAX_AFTER_ARCHIVE: u64 = 1 << 20;

/// Whether bytes sent as a context are an archive (else they are a Dockerfile).
pub fn is_context_archive(head: &[u8]) -> bool {
    use crate::image::compression::Compression;
    Compression::detect(head) != Compression::None
        || (head.len() >= 262 && &head[257..262] == b"ustar")
}

/// Removes intermediate containers of builds that were killed: the label names the
/// building process (pid and start time), and a container whose builder is gone is left
/// over, running or not.
fn remove_leftovers(ctx: &mut Context) -> Result<(), BuildError> {
    let root = ctx.root.clone();
    for c in container::all(&ctx.db)? {
        let Some(owner) = c.spec.config.labels.get(BUILD_LABEL) else {
            continue;
        };
        let alive = owner
            .split_once(':')
            .and_then(|(pid, start)| Some((pid.parse::<i32>().ok()?, start.parse::<u64>().ok()?)))
            .is_some_and(|(pid, start)| container::process_start(pid) == Some(start));
        let kept = c.spec.config.labels.contains_key(KEEP_LABEL)
            && c.effective_status() == container::Status::Exited
            && c.state.exit_code == 0;
        if !alive && !kept {
            ops::remove(&root, &mut ctx.db, &c, true)?;
        }
    }
    Ok(())
}

/// This process as a build container's owner: `pid:start time`.
fn builder_id() -> String {
    let pid = std::process::id() as i32;
    format!("{pid}:{}", container::process_start(pid).unwrap_or(0))
}

/// What a stage built on a thread of its own left: its image or error, its output lines
/// and the build args it used.
struct StageOutcome {
    stage: usize,
    result: Result<Image, BuildError>,
    lines: Vec<String>,
    used: HashSet<String>,
}

/// The size of the tar docker's client would send for the context: a 512-byte header per
/// kept entry (directories and links included), file content padded to 512 bytes, and the
/// two closing blocks.
fn context_bytes(root: &Path, ignore: &Matcher) -> u64 {
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let entries: u64 = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            !ignore.ignored(&rel(e.path())) || (e.file_type().is_dir() && ignore.has_exclusions())
        })
        .filter_map(Result::ok)
        .filter(|e| !ignore.ignored(&rel(e.path())))
        .filter_map(|e| {
            e.metadata()
                .ok()
                .map(|m| (e.file_type().is_file(), m.len()))
        })
        .map(|(file, len)| 512 + if file { len.div_ceil(512) * 512 } else { 0 })
        .sum();
    entries + 1024
}

/// The stages the target needs (its FROM chain and every `COPY --from`), in file order.
/// The stages the target needs, in file order, and the earlier stages each one uses.
type Needed = (Vec<usize>, HashMap<usize, Vec<usize>>);

fn needed_stages(
    stages: &[parse_dockerfile::Stage],
    names: &[Option<String>],
    target: usize,
    global: &BTreeMap<String, String>,
    escape: char,
) -> Result<Needed, BuildError> {
    let by_name = |r: &str| -> Option<usize> {
        let r = r.to_ascii_lowercase();
        names
            .iter()
            .position(|n| n.as_deref() == Some(r.as_str()))
            .or_else(|| r.parse::<usize>().ok().filter(|i| *i < stages.len()))
    };
    let mut need = HashSet::new();
    let mut deps: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !need.insert(i) {
            continue;
        }
        let mine = deps.entry(i).or_default();
        let base = expand::word(
            &stages[i].from.image.value,
            &|k| global.get(k).cloned(),
            escape,
        )
        .unwrap_or_default();
        if let Some(j) = by_name(&base).filter(|j| *j < i) {
            mine.push(j);
            todo.push(j);
        }
        for ins in stages[i].instructions {
            let flags = match ins {
                Instruction::Copy(c) => &c.options[..],
                _ => continue,
            };
            for f in flags.iter().filter(|f| f.name.value == "from") {
                if let Some(j) = f
                    .value
                    .as_ref()
                    .and_then(|v| by_name(&v.value))
                    .filter(|j| *j < i)
                {
                    mine.push(j);
                    todo.push(j);
                }
            }
        }
    }
    let mut v: Vec<usize> = need.into_iter().collect();
    v.sort();
    Ok((v, deps))
}

impl Builder<'_> {
    fn say(&mut self, line: &str) {
        (self.out)(line);
    }

    fn step_line(&mut self, text: &str) {
        self.step += 1;
        let line = format!("Step {}/{} : {text}", self.step, self.steps);
        self.say(&line);
    }

    /// The image a FROM names: the store's, or pulled when missing or with `--pull`.
    fn base_image(&mut self, name: &str) -> Result<Digest, BuildError> {
        if !self.o.pull {
            if let Ok((id, _)) = lookup::find(&self.ctx.db, name) {
                return Ok(id);
            }
        }
        let r = ImageRef::parse(name)?;
        let opts = registry::Options {
            insecure: false,
            credentials: crate::credentials::get(&r.domain),
        };
        let platform = crate::image::oci::default_platform();
        let pulled = registry::pull(self.ctx, &r, &platform, &opts, &registry::Quiet)
            .map_err(|e| BuildError::Step(e.to_string()))?;
        let status = if pulled.up_to_date {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        self.say(&format!("Status: {status} {}", r.familiar()));
        Ok(pulled.image.id)
    }

    /// `--chown=user[:group]` as the image resolves it: numbers as they are, names through
    /// the image's /etc/passwd and /etc/group (a user alone takes its primary group).
    fn resolve_user(&mut self, img: &Image, spec: &str) -> Result<(u32, u32), BuildError> {
        let numeric = |s: &str| s.parse::<u32>().ok();
        if let Some((u, g)) = spec.split_once(':') {
            if let (Some(u), Some(g)) = (numeric(u), numeric(g)) {
                return Ok((u, g));
            }
        } else if let Some(u) = numeric(spec) {
            return Ok((u, u));
        }
        let m = StageMount::mount(self.ctx, img)?;
        let r = crate::bundle::user::resolve(&m.root, spec)
            .map_err(|e| BuildError::Step(format!("--chown={spec}: {e}")))?;
        Ok((r.uid, r.gid))
    }

    /// Stores the image (config and manifest) and returns its id.
    fn install(&mut self, img: &Image) -> Result<Digest, BuildError> {
        let cfg = serde_json::to_vec(&img.config).map_err(ImageError::Json)?;
        Ok(install::install_local(self.ctx, &cfg, img.layers.clone(), None)?.id)
    }

    /// The image the cache holds for the step keyed `key`, reported as docker reports a
    /// hit; None with `--no-cache` or when it is gone.
    fn cache_hit(&mut self, key: &str) -> Result<Option<Image>, BuildError> {
        if self.o.no_cache {
            return Ok(None);
        }
        let Some(id) = self.ctx.db.build_cache_get(key)? else {
            return Ok(None);
        };
        let Ok(id) = Digest::parse(&id) else {
            return Ok(None);
        };
        if self.ctx.db.image(&id)?.is_none() {
            return Ok(None);
        }
        self.say(" ---> Using cache");
        self.say(&format!(" ---> {}", short(&id)));
        Ok(Some(self.load(&id)?))
    }

    fn load(&mut self, id: &Digest) -> Result<Image, BuildError> {
        let raw = self.ctx.blobs.read(id).map_err(ImageError::from)?;
        let config: Value = serde_json::from_slice(&raw).map_err(|source| ImageError::Config {
            digest: id.clone(),
            source,
        })?;
        Ok(Image {
            id: Some(id.clone()),
            config,
            layers: install::layer_descriptors(self.ctx, id)?,
        })
    }

    /// Records `img` as the result of the step keyed `key` and reports its id.
    fn finish_step(&mut self, key: &str, mut img: Image) -> Result<Image, BuildError> {
        let id = self.install(&img)?;
        self.ctx.db.build_cache_put(key, &id.to_string())?;
        crate::fault::at(crate::fault::Step::BuildStepCommitted);
        img.id = Some(id.clone());
        self.say(&format!(" ---> {}", short(&id)));
        Ok(img)
    }

    fn key(&self, parent: &Image, what: &str) -> String {
        let mut h = Sha256::new();
        h.update(parent.parent_key().as_bytes());
        h.update(b"\n");
        h.update(what.as_bytes());
        hex::encode(h.finalize())
    }

    fn history(img: &mut Image, created_by: &str, empty: bool) {
        // docker records the image each step started from.
        let parent = img.id.as_ref().map(|d| d.to_string()).unwrap_or_default();
        if let Some(cfg) = img.config["config"].as_object_mut() {
            cfg.insert("Image".into(), json!(parent));
        }
        let mut entry = json!({"created": container::now(), "created_by": created_by});
        if empty {
            entry["empty_layer"] = json!(true);
        }
        match img.config["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => img.config["history"] = json!([entry]),
        }
        img.config["created"] = json!(container::now());
    }

    /// A step that only changes the config: cached by the change, committed without a layer.
    fn commit_meta(&mut self, img: Image, kind: &str, text: &str) -> Result<Image, BuildError> {
        let config = img.config["config"].to_string();
        self.commit_meta_keyed(img, kind, text, &config)
    }

    /// Adds a layer blob (uncompressed tar) with its history entry.
    fn add_layer(mut img: Image, diff_id: Digest, size: u64, created_by: &str) -> Image {
        match img.config["rootfs"]["diff_ids"].as_array_mut() {
            Some(d) => d.push(json!(diff_id.to_string())),
            None => {
                img.config["rootfs"] = json!({"type": "layers", "diff_ids": [diff_id.to_string()]})
            }
        }
        img.layers.push(Descriptor::layer(
            Compression::None.layer_media_type(),
            &diff_id,
            size,
        ));
        Self::history(&mut img, created_by, false);
        img
    }

    fn expand(
        &self,
        text: &str,
        env: &[String],
        vars: &Vars,
        escape: char,
    ) -> Result<String, BuildError> {
        expand::word(text, &vars.lookup(env), escape).map_err(|source| BuildError::Expand {
            text: text.to_string(),
            source,
        })
    }

    fn expand_words(
        &self,
        text: &str,
        env: &[String],
        vars: &Vars,
        escape: char,
    ) -> Result<Vec<String>, BuildError> {
        expand::words(text, &vars.lookup(env), escape).map_err(|source| BuildError::Expand {
            text: text.to_string(),
            source,
        })
    }

    /// Builds stage `i`; returns its image.
    #[allow(clippy::too_many_arguments)]
    fn stage(
        &mut self,
        text: &str,
        escape: char,
        stages: &[parse_dockerfile::Stage],
        names: &[Option<String>],
        i: usize,
        global: &BTreeMap<String, String>,
        built: &HashMap<usize, Image>,
    ) -> Result<Image, BuildError> {
        let st = &stages[i];
        self.step_line(&original(text, st.from.from.span.start, escape));
        let base = expand::word(&st.from.image.value, &|k| global.get(k).cloned(), escape)
            .map_err(|source| BuildError::Expand {
                text: st.from.image.value.to_string(),
                source,
            })?;
        let stage_ref = names
            .iter()
            .position(|n| n.as_deref() == Some(base.to_ascii_lowercase().as_str()))
            .filter(|j| *j < i);
        let mut img = match stage_ref {
            Some(j) => built
                .get(&j)
                .cloned()
                .expect("earlier stages are built first"),
            None if base == "scratch" => Image::scratch(),
            None => {
                let id = self.base_image(&base)?;
                self.load(&id)?
            }
        };
        if let Some(id) = &img.id {
            let line = format!(" ---> {}", short(id));
            self.say(&line);
        }
        let mut vars = Vars {
            args: BTreeMap::new(),
        };
        for k in global.keys().filter(|k| self.given_args.contains_key(*k)) {
            self.used_args.insert(k.clone());
        }
        let mut shell: Vec<String> = img.config["config"]["Shell"]
            .as_array()
            .map(|a| strings(a))
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        self.shell_prefix = shell.join(" ");
        normalize_config(&mut img);
        // docker runs the base image's ONBUILD triggers first, and does not pass them on.
        let triggers: Vec<String> = img.config["config"]["OnBuild"]
            .as_array()
            .map(|a| strings(a))
            .unwrap_or_default();
        if !triggers.is_empty() {
            let n = triggers.len();
            self.say(&format!(
                "# Executing {n} build trigger{}",
                if n == 1 { "" } else { "s" }
            ));
            img.cfg().insert("OnBuild".into(), Value::Null);
            let text = format!("FROM scratch\n{}\n", triggers.join("\n"));
            let df = parse_dockerfile::parse(&text).map_err(|e| BuildError::Parse {
                line: e.line(),
                column: e.column(),
                msg: format!("ONBUILD trigger: {e}"),
            })?;
            let st = df.stages().next().expect("a parsed Dockerfile has a stage");
            for ins in st.instructions {
                if matches!(ins, Instruction::Onbuild(_) | Instruction::From(_)) {
                    return Err(BuildError::Step(
                        "ONBUILD triggers may not be ONBUILD or FROM".into(),
                    ));
                }
                img = self.instruction(
                    img, ins, &text, escape, &mut vars, &mut shell, names, built, i, global,
                )?;
            }
        }
        for ins in st.instructions {
            self.step_line(&original(text, instruction_start(ins), escape));
            img = self.instruction(
                img, ins, text, escape, &mut vars, &mut shell, names, built, i, global,
            )?;
        }
        Ok(img)
    }

    /// One instruction of stage `i` over the image so far.
    #[allow(clippy::too_many_arguments)]
    fn instruction(
        &mut self,
        mut img: Image,
        ins: &Instruction,
        text: &str,
        escape: char,
        vars: &mut Vars,
        shell: &mut Vec<String>,
        names: &[Option<String>],
        built: &HashMap<usize, Image>,
        i: usize,
        global: &BTreeMap<String, String>,
    ) -> Result<Image, BuildError> {
        let env = img.env();
        Ok(match ins {
            Instruction::Arg(a) => {
                for w in self.expand_words(&a.arguments.value, &env, vars, escape)? {
                    let (k, default) = match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (w.clone(), global.get(&w).cloned()),
                    };
                    let v = self.given_args.get(&k).cloned();
                    if v.is_some() {
                        self.used_args.insert(k.clone());
                    }
                    if let Some(v) = v.or(default) {
                        vars.args.insert(k, v);
                    } else {
                        vars.args.insert(k, String::new());
                    }
                }
                // The values are part of the key: another --build-arg is another step.
                let shown = a.arguments.value.to_string();
                let key_text = format!("{shown} {:?}", vars.args);
                self.commit_meta_keyed(img, "ARG", &shown, &key_text)?
            }
            Instruction::Env(e) => {
                let words = self.expand_words(&e.arguments.value, &env, vars, escape)?;
                let pairs = env_pairs(&words).ok_or_else(|| {
                    BuildError::Step(format!("ENV names can not be blank: {}", e.arguments.value))
                })?;
                let mut new_env = env.clone();
                for (k, v) in &pairs {
                    crate::container::parse::set_env(&mut new_env, &format!("{k}={v}"));
                }
                img.cfg().insert("Env".into(), json!(new_env));
                let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.commit_meta(img, "ENV", &shown.join(" "))?
            }
            Instruction::Label(l) => {
                let words = self.expand_words(&l.arguments.value, &env, vars, escape)?;
                let pairs = env_pairs(&words).ok_or_else(|| {
                    BuildError::Step(format!(
                        "LABEL names can not be blank: {}",
                        l.arguments.value
                    ))
                })?;
                let cfg = img.cfg();
                let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
                if !labels.is_object() {
                    *labels = json!({});
                }
                for (k, v) in &pairs {
                    labels[k] = json!(v);
                }
                let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.commit_meta(img, "LABEL", &shown.join(" "))?
            }
            Instruction::Maintainer(m) => {
                img.config["author"] = json!(m.name.value);
                self.commit_meta(img, "MAINTAINER", &m.name.value)?
            }
            Instruction::Expose(x) => {
                let mut ports = Vec::new();
                let mut given = Vec::new();
                for a in &x.arguments {
                    for w in self.expand_words(&a.value, &env, vars, escape)? {
                        let keys = crate::network::ports::parse_expose(&w)
                            .map_err(|e| BuildError::Step(e.to_string()))?;
                        ports.extend(keys);
                        given.push(w);
                    }
                }
                // docker's history lists the ports as written, sorted.
                given.sort();
                let cfg = img.cfg();
                let exposed = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
                if !exposed.is_object() {
                    *exposed = json!({});
                }
                for p in &ports {
                    exposed[p] = json!({});
                }
                self.commit_meta(img, "EXPOSE", &given.join(" "))?
            }
            Instruction::User(u) => {
                let user = self.expand(&u.arguments.value, &env, vars, escape)?;
                img.cfg().insert("User".into(), json!(user));
                self.commit_meta(img, "USER", &user)?
            }
            Instruction::Stopsignal(s) => {
                let sig = self.expand(&s.arguments.value, &env, vars, escape)?;
                crate::container::parse::signal(&sig)
                    .map_err(|e| BuildError::Step(e.to_string()))?;
                img.cfg().insert("StopSignal".into(), json!(sig));
                self.commit_meta(img, "STOPSIGNAL", &sig)?
            }
            Instruction::Volume(v) => {
                let list: Vec<String> = match &v.arguments {
                    parse_dockerfile::JsonOrStringArray::Json(j) => {
                        j.value.iter().map(|s| s.value.to_string()).collect()
                    }
                    parse_dockerfile::JsonOrStringArray::String(s) => {
                        s.iter().map(|s| s.value.to_string()).collect()
                    }
                };
                let mut vols = Vec::new();
                for x in list {
                    vols.push(self.expand(&x, &env, vars, escape)?);
                }
                let cfg = img.cfg();
                let volumes = cfg.entry("Volumes").or_insert_with(|| json!({}));
                if !volumes.is_object() {
                    *volumes = json!({});
                }
                for v in &vols {
                    volumes[v] = json!({});
                }
                self.commit_meta(img, "VOLUME", &format!("[{}]", vols.join(" ")))?
            }
            Instruction::Shell(s) => {
                *shell = s.arguments.iter().map(|a| a.value.to_string()).collect();
                self.shell_prefix = shell.join(" ");
                img.cfg().insert("Shell".into(), json!(shell));
                self.commit_meta(img, "SHELL", &format!("[{}]", shell.join(" ")))?
            }
            Instruction::Cmd(c) => {
                let (cmd, _) = command_of(&c.arguments, shell, escape);
                img.cfg().insert("Cmd".into(), json!(cmd));
                self.commit_meta(img, "CMD", &go_quoted_list(&cmd))?
            }
            Instruction::Entrypoint(e) => {
                let (ep, _) = command_of(&e.arguments, shell, escape);
                // docker: a new ENTRYPOINT drops the CMD the base image had.
                img.cfg().insert("Entrypoint".into(), json!(ep));
                img.cfg().insert("Cmd".into(), Value::Null);
                self.commit_meta(img, "ENTRYPOINT", &go_quoted_list(&ep))?
            }
            Instruction::Healthcheck(h) => {
                let test = match &h.arguments {
                    parse_dockerfile::HealthcheckArguments::None { .. } => json!(["NONE"]),
                    parse_dockerfile::HealthcheckArguments::Cmd { arguments, .. } => {
                        let (cmd, shell_form) = command_of(arguments, shell, escape);
                        if shell_form {
                            json!(["CMD-SHELL", cmd.last().cloned().unwrap_or_default()])
                        } else {
                            let mut v = vec!["CMD".to_string()];
                            v.extend(cmd);
                            json!(v)
                        }
                    }
                    _ => json!(["NONE"]),
                };
                let mut hc = json!({"Test": test});
                for f in &h.options {
                    let v = f
                        .value
                        .as_ref()
                        .map(|v| v.value.to_string())
                        .unwrap_or_default();
                    let key = match &*f.name.value {
                        "interval" => "Interval",
                        "timeout" => "Timeout",
                        "start-period" => "StartPeriod",
                        "start-interval" => "StartInterval",
                        "retries" => "Retries",
                        other => return Err(BuildError::Step(format!("Unknown flag: {other}"))),
                    };
                    hc[key] = if key == "Retries" {
                        json!(v
                            .parse::<i64>()
                            .map_err(|_| BuildError::Step(format!("invalid retries: {v}")))?)
                    } else {
                        json!(crate::container::logs::go_duration(&v).ok_or_else(|| {
                            BuildError::Step(format!("invalid {}: {v}", f.name.value))
                        })?)
                    };
                }
                img.cfg().insert("Healthcheck".into(), hc.clone());
                self.commit_meta(img, "HEALTHCHECK", &health_text(&hc))?
            }
            Instruction::Onbuild(_) => {
                let start = instruction_start(ins);
                let full = original(text, start, escape);
                let trigger = full
                    .split_once(char::is_whitespace)
                    .map(|(_, t)| t.trim().to_string())
                    .unwrap_or_default();
                let cfg = img.cfg();
                let list = cfg.entry("OnBuild").or_insert_with(|| json!([]));
                if !list.is_array() {
                    *list = json!([]);
                }
                list.as_array_mut().expect("an array").push(json!(trigger));
                self.commit_meta(img, "ONBUILD", &trigger)?
            }
            Instruction::Workdir(w) => {
                let dir = self.expand(&w.arguments.value, &env, vars, escape)?;
                let dir = layer::absolute(&dir, &img.workdir());
                let dir = clean_abs(&dir);
                img.cfg().insert("WorkingDir".into(), json!(dir));
                self.workdir(img, &dir)?
            }
            Instruction::Run(r) => self.run(img, r, shell, vars, escape)?,
            Instruction::Copy(c) => {
                let dest = self.expand(&c.dest.value, &env, vars, escape)?;
                let line = original(text, instruction_start(ins), escape);
                let (srcs, docs) = self.sources(&c.src, &dest, &line, &env, vars, escape)?;
                let docs_dir = docs.as_ref().map(|d| d.path());
                self.copy(
                    img, "COPY", &c.options, &srcs, &dest, names, built, i, docs_dir,
                )?
            }
            Instruction::Add(a) => {
                let dest = self.expand(&a.dest.value, &env, vars, escape)?;
                let line = original(text, instruction_start(ins), escape);
                let (srcs, docs) = self.sources(&a.src, &dest, &line, &env, vars, escape)?;
                if let Some(url) = srcs.iter().find_map(|s| match s {
                    CopySource::Path(p)
                        if ["http://", "https://", "git@"]
                            .iter()
                            .any(|x| p.starts_with(x)) =>
                    {
                        Some(p)
                    }
                    _ => None,
                }) {
                    return Err(BuildError::Unsupported(format!(
                        "ADD {url}: downloading a remote source is not supported: wharf builds offline; put the file in the build context"
                    )));
                }
                let docs_dir = docs.as_ref().map(|d| d.path());
                self.copy(
                    img, "ADD", &a.options, &srcs, &dest, names, built, i, docs_dir,
                )?
            }
            Instruction::From(_) => unreachable!("FROM starts a stage"),
            _ => {
                return Err(BuildError::Unsupported(format!(
                    "{}: an instruction this builder does not know",
                    original(text, instruction_start(ins), escape)
                )))
            }
        })
    }

    /// COPY/ADD sources as written, paths expanded; here-documents become files (content
    /// expanded unless the delimiter was quoted) in a directory of the step's own, named
    /// after their delimiter when they go into a directory (`/dir/`, or with other
    /// sources), as BuildKit names them.
    fn sources(
        &mut self,
        given: &[Source],
        dest: &str,
        line: &str,
        env: &[String],
        vars: &Vars,
        escape: char,
    ) -> Result<(Vec<CopySource>, Option<tempfile::TempDir>), BuildError> {
        let delimiters = heredoc::names(line);
        let into_dir = dest.ends_with('/') || given.len() > 1;
        let mut out = Vec::new();
        let mut dir: Option<tempfile::TempDir> = None;
        let mut n = 0;
        for s in given {
            let doc = match s {
                Source::Path(p) => {
                    out.push(CopySource::Path(self.expand(&p.value, env, vars, escape)?));
                    continue;
                }
                Source::HereDoc(d) => d,
                _ => {
                    return Err(BuildError::Unsupported(format!(
                        "{line}: a source of a kind this builder does not know"
                    )))
                }
            };
            let name = match (into_dir, delimiters.get(n)) {
                (false, _) => "heredoc".to_string(),
                (true, Some(d)) => d.clone(),
                (true, None) => {
                    return Err(BuildError::Step(format!(
                        "{line}: the here-documents' delimiters were not found"
                    )))
                }
            };
            n += 1;
            let content = if doc.expand {
                expand::text(&doc.value, &vars.lookup(env), escape).map_err(|source| {
                    BuildError::Expand {
                        text: doc.value.to_string(),
                        source,
                    }
                })?
            } else {
                doc.value.to_string()
            };
            let root = match &dir {
                Some(d) => d.path().to_path_buf(),
                None => {
                    let d = tempfile::Builder::new()
                        .prefix("build-heredoc-")
                        .tempdir_in(&self.ctx.root)
                        .map_err(|source| BuildError::Read {
                            path: self.ctx.root.clone(),
                            source,
                        })?;
                    let root = d.path().to_path_buf();
                    dir = Some(d);
                    root
                }
            };
            let file = root.join(&name);
            std::fs::write(&file, content).map_err(|source| BuildError::Read {
                path: file.clone(),
                source,
            })?;
            out.push(CopySource::Doc(name));
        }
        Ok((out, dir))
    }

    /// Like `commit_meta` with the cache keyed by `key_text` instead of the config.
    fn commit_meta_keyed(
        &mut self,
        mut img: Image,
        kind: &str,
        shown: &str,
        key_text: &str,
    ) -> Result<Image, BuildError> {
        let created_by = format!("{} #(nop)  {kind} {shown}", self.shell_prefix);
        let key = self.key(&img, &format!("{created_by}\n{key_text}"));
        if let Some(hit) = self.cache_hit(&key)? {
            return Ok(hit);
        }
        self.metadata_container_lines()?;
        Self::history(&mut img, &created_by, true);
        self.finish_step(&key, img)
    }

    /// docker's classic builder commits a metadata step (ENV, CMD, WORKDIR...) through a
    /// container it creates, never starts, and removes, and prints both; scripts and
    /// compose read the same lines here. Nothing would run in it, so none is made: the
    /// id names the step's commit alone.
    fn metadata_container_lines(&mut self) -> Result<(), BuildError> {
        let id = container::random_id().map_err(|source| BuildError::Read {
            path: "/dev/urandom".into(),
            source,
        })?;
        let short = &id[..12];
        self.say(&format!(" ---> Running in {short}"));
        self.say(&format!("Removing intermediate container {short}"));
        Ok(())
    }

    /// WORKDIR: the directory is made (a layer) when the image lacks it.
    fn workdir(&mut self, img: Image, dir: &str) -> Result<Image, BuildError> {
        let created_by = format!("{} #(nop) WORKDIR {dir}", self.shell_prefix);
        let key = self.key(&img, &format!("{created_by}\n{}", img.config["config"]));
        if let Some(hit) = self.cache_hit(&key)? {
            return Ok(hit);
        }
        let mut img = img;
        self.metadata_container_lines()?;
        if self.exists_in(&img, dir)? {
            Self::history(&mut img, &created_by, true);
            return self.finish_step(&key, img);
        }
        let (diff_id, size) = layer::write_dir(&self.ctx.blobs, dir, &layer::Owner::default())?;
        let img = Self::add_layer(img, diff_id, size, &created_by);
        self.finish_step(&key, img)
    }

    /// Whether `path` exists in the image's filesystem (the top layer that has it wins;
    /// a whiteout hides it).
    fn exists_in(&self, img: &Image, path: &str) -> Result<bool, BuildError> {
        let Some(id) = &img.id else {
            return Ok(false);
        };
        let rel = path.trim_start_matches('/');
        for l in self.ctx.db.layers(id)?.iter().rev() {
            let snap = self.ctx.root.join("snapshots").join(l.chain_id.hex());
            let p = snap.join(rel);
            if std::fs::symlink_metadata(&p).is_ok() {
                return Ok(true);
            }
            let name = Path::new(rel)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parent = Path::new(rel).parent().unwrap_or(Path::new(""));
            if snap.join(parent).join(format!(".wh.{name}")).exists() {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// COPY and ADD.
    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        img: Image,
        kind: &str,
        flags: &[parse_dockerfile::Flag],
        srcs: &[CopySource],
        dest: &str,
        names: &[Option<String>],
        built: &HashMap<usize, Image>,
        stage: usize,
        docs_dir: Option<&Path>,
    ) -> Result<Image, BuildError> {
        let mut owner = layer::Owner::default();
        let mut from = None;
        for f in flags {
            let v = f
                .value
                .as_ref()
                .map(|v| v.value.to_string())
                .unwrap_or_default();
            match &*f.name.value {
                "chown" => {
                    let r = self.resolve_user(&img, &v)?;
                    owner.uid = r.0;
                    owner.gid = r.1;
                }
                "chmod" => owner.chmod = Some(layer::parse_chmod(&v)?),
                "from" if kind == "COPY" => from = Some(v),
                // `--link` asks for a layer made from the sources alone, independent of what
                // lies below it: every COPY/ADD layer here is made that way.
                "link" => {}
                other => return Err(BuildError::Step(format!("Unknown flag: {other}"))),
            }
        }
        let dest = layer::absolute(dest, &img.workdir());
        // `.` and a trailing `/` or `/.` name a directory, as in docker (`COPY f .`).
        let dest = if dest.ends_with('/') || dest.ends_with("/.") {
            format!("{}/", clean_abs(&dest).trim_end_matches('/'))
        } else {
            clean_abs(&dest)
        };
        // Another stage's or image's filesystem, mounted read-only while the layer is written.
        let mut mounted = None;
        let context_ignore = self.ignore.clone();
        let (root, ignore): (PathBuf, Option<&Matcher>) = match &from {
            None => (self.o.context.clone(), Some(&context_ignore)),
            Some(f) => {
                let j = names
                    .iter()
                    .position(|n| n.as_deref() == Some(f.to_ascii_lowercase().as_str()))
                    .or_else(|| f.parse::<usize>().ok())
                    .filter(|j| *j < stage);
                let src_img = match j {
                    Some(j) => built
                        .get(&j)
                        .cloned()
                        .ok_or_else(|| BuildError::Step(format!("stage {f} was not built")))?,
                    None => {
                        let (id, _) = lookup::find(&self.ctx.db, f)?;
                        self.load(&id)?
                    }
                };
                let m = StageMount::mount(self.ctx, &src_img)?;
                let root = m.root.clone();
                mounted = Some(m);
                (root, None)
            }
        };
        let sources = layer::Sources {
            root: &root,
            ignore,
        };
        let result = (|| -> Result<Image, BuildError> {
            let archives: Vec<PathBuf> = if kind == "ADD" {
                srcs.iter()
                    .filter_map(|s| match s {
                        CopySource::Path(p) => Some(root.join(p.trim_start_matches('/'))),
                        CopySource::Doc(_) => None,
                    })
                    .filter(|p| p.is_file() && layer::is_archive(p))
                    .collect()
            } else {
                Vec::new()
            };
            if !archives.is_empty() && archives.len() == srcs.len() {
                let mut key_text = format!("{kind} {dest}");
                for a in &archives {
                    key_text.push_str(&layer::file_key(a)?);
                }
                let created_by = format!(
                    "{} #(nop) ADD file:{} in {dest} ",
                    self.shell_prefix,
                    &hex::encode(Sha256::digest(key_text.as_bytes()))[..12]
                );
                let key = self.key(&img, &key_text);
                if let Some(hit) = self.cache_hit(&key)? {
                    return Ok(hit);
                }
                let mut img = img.clone();
                for a in &archives {
                    let (diff_id, size) = layer::write_archive(&self.ctx.blobs, a, &dest)?;
                    img = Self::add_layer(img, diff_id, size, &created_by);
                }
                return self.finish_step(&key, img);
            }
            let items = match docs_dir {
                None => {
                    let paths: Vec<String> = srcs
                        .iter()
                        .filter_map(|s| match s {
                            CopySource::Path(p) => Some(p.clone()),
                            CopySource::Doc(_) => None,
                        })
                        .collect();
                    layer::resolve(&paths, &dest, &sources)?
                }
                // Here-documents among the sources: each is resolved where it lives, in the
                // order written.
                Some(dir) => {
                    if srcs.len() > 1 && !dest.ends_with('/') {
                        return Err(layer::LayerError::NotADirectory.into());
                    }
                    let docs = layer::Sources {
                        root: dir,
                        ignore: None,
                    };
                    let mut items = Vec::new();
                    for s in srcs {
                        let (name, from) = match s {
                            CopySource::Path(p) => (p, &sources),
                            CopySource::Doc(d) => (d, &docs),
                        };
                        items.extend(layer::resolve(std::slice::from_ref(name), &dest, from)?);
                    }
                    items
                }
            };
            let content = layer::content_key(&items, ignore, &owner)?;
            let what = if items.len() == 1 && !items[0].contents {
                "file"
            } else {
                "dir"
            };
            let created_by = format!(
                "{} #(nop) {kind} {what}:{content} in {dest} ",
                self.shell_prefix
            );
            let key = self.key(&img, &created_by);
            if let Some(hit) = self.cache_hit(&key)? {
                return Ok(hit);
            }
            let (diff_id, size) = layer::write(&self.ctx.blobs, &items, ignore, &owner)?;
            let img = Self::add_layer(img.clone(), diff_id, size, &created_by);
            self.finish_step(&key, img)
        })();
        drop(mounted);
        result
    }

    /// RUN: a container of the image so far runs the command; its changes become a layer.
    fn run(
        &mut self,
        img: Image,
        r: &parse_dockerfile::RunInstruction,
        shell: &[String],
        vars: &Vars,
        escape: char,
    ) -> Result<Image, BuildError> {
        let mut mounts = Vec::new();
        let mut network = None;
        // A `#!` here-document's file (kept until the step's container is gone) and its
        // content, which the command (its path) does not show but the cache key must.
        let mut script = None;
        for f in &r.options {
            let v = f
                .value
                .as_ref()
                .map(|v| v.value.to_string())
                .unwrap_or_default();
            match &*f.name.value {
                "mount" => mounts.push(self.run_mount(&v)?),
                "network" => match v.as_str() {
                    "default" | "none" | "host" => network = Some(v),
                    _ => {
                        return Err(BuildError::Step(format!(
                            "RUN --network={v}: the mode must be default, none or host"
                        )))
                    }
                },
                other => {
                    return Err(BuildError::Unsupported(format!(
                        "RUN --{other} is not supported"
                    )))
                }
            }
        }
        let (argv, _) = match (&r.arguments, r.here_docs.as_slice()) {
            (Command::Shell(cmd), []) => match self.lifted.at(r.run.span.start) {
                Some(docs) => {
                    let mut v = shell.to_vec();
                    v.push(heredoc::script(&shell_text(cmd.value, escape), docs));
                    (v, true)
                }
                None => command_of(&r.arguments, shell, escape),
            },
            (_, []) => command_of(&r.arguments, shell, escape),
            // `RUN <<EOF` alone (the parser leaves an empty command): the document is the
            // script the shell runs, as BuildKit does; one with a `#!` line is a file of its
            // own, executed from where BuildKit puts it (`/dev/pipes/EOF`).
            (Command::Shell(cmd), [doc]) if cmd.value.trim().is_empty() => {
                if doc.value.starts_with("#!") {
                    let line = original(&self.lifted.text, r.run.span.start, escape);
                    let name = heredoc::names(&line)
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| "EOF".into());
                    let (dir, mount) = self.script_mount(&name, &doc.value)?;
                    script = Some((dir, doc.value.to_string()));
                    let target = mount.destination.clone();
                    mounts.push(mount);
                    (vec![target], false)
                } else {
                    let mut v = shell.to_vec();
                    v.push(doc.value.to_string());
                    (v, true)
                }
            }
            // `RUN <<EOF cmd ...`: the documents are the command's input, as BuildKit
            // has it; the shell gets them back as here-documents of its own (the parser
            // keeps no delimiter), quoted when the Dockerfile's were.
            (Command::Shell(cmd), docs) => {
                let mut script = shell_text(cmd.value, escape);
                for (n, doc) in docs.iter().enumerate() {
                    let q = if doc.expand { "" } else { "'" };
                    script.push_str(&format!(" <<{q}WHARF_EOF_{n}{q}"));
                }
                for (n, doc) in docs.iter().enumerate() {
                    script.push('\n');
                    script.push_str(&doc.value);
                    if !doc.value.ends_with('\n') {
                        script.push('\n');
                    }
                    script.push_str(&format!("WHARF_EOF_{n}"));
                }
                let mut v = shell.to_vec();
                v.push(script);
                (v, true)
            }
            _ => {
                return Err(BuildError::Unsupported(
                    "RUN in exec form with a here-document is not supported".into(),
                ))
            }
        };
        // docker's words for the command, in history and in a failure: the argv joined.
        let shown = argv.join(" ");
        // Build args reach RUN as environment (not kept in the image); used ones are part
        // of the cache key, as docker records them in created_by.
        let arg_env: Vec<String> = vars
            .args
            .iter()
            .filter(|(k, _)| lookup_env(&img.env(), k).is_none())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let created_by = if arg_env.is_empty() {
            shown.clone()
        } else {
            format!("|{} {} {}", arg_env.len(), arg_env.join(" "), shown)
        };
        let flags: Vec<String> = r
            .options
            .iter()
            .map(|f| {
                let v = f.value.as_ref().map(|v| v.value.as_ref()).unwrap_or("");
                format!("{}={v}", f.name.value)
            })
            .collect();
        let key = self.key(
            &img,
            &format!(
                "RUN\n{created_by}\n{flags:?}\n{}\n{}",
                img.config["config"],
                script
                    .as_ref()
                    .map_or("", |(_, content): &(_, String)| content)
            ),
        );
        if let Some(hit) = self.cache_hit(&key)? {
            return Ok(hit);
        }
        let base_id = match &img.id {
            Some(id) => id.clone(),
            None => self.install(&img)?,
        };
        // docker's predefined proxy ARGs reach RUN without an ARG line, and stay out of the
        // history and the cache key.
        let mut run_env = arg_env.clone();
        for k in PREDEFINED_ARGS {
            if let Some(v) = self.given_args.get(k) {
                if !vars.args.contains_key(k) {
                    run_env.push(format!("{k}={v}"));
                    self.used_args.insert(k.to_string());
                }
            }
        }
        let cfg = &img.config["config"];
        let opts = create::Options {
            image: base_id.to_string(),
            command: argv.clone(),
            entrypoint: Some(Vec::new()),
            env: run_env,
            workdir: cfg["WorkingDir"]
                .as_str()
                .map(String::from)
                .filter(|s| !s.is_empty()),
            user: cfg["User"]
                .as_str()
                .map(String::from)
                .filter(|s| !s.is_empty()),
            host: HostConfig {
                network_mode: match network {
                    Some(n) => n,
                    None if self.o.network.is_empty() => "default".into(),
                    None => self.o.network.clone(),
                },
                ..Default::default()
            },
            runtime_path: self.o.runtime_path.clone(),
            labels: [
                Some(format!("{BUILD_LABEL}={}", builder_id())),
                self.o.keep_intermediates.then(|| format!("{KEEP_LABEL}=1")),
            ]
            .into_iter()
            .flatten()
            .collect(),
            mounts,
            ..Default::default()
        };
        let c = create::create(self.ctx, &base_id, opts)?;
        crate::fault::at(crate::fault::Step::BuildContainerCreated);
        self.say(&format!(" ---> Running in {}", c.short_id()));
        let ran = self.run_container(&c);
        let outcome = ran.and_then(|code| {
            if code != 0 {
                return Err(BuildError::RunFailed {
                    command: shown.clone(),
                    code,
                });
            }
            self.remove_mount_stubs(&img, &c)?;
            let (diff_id, size) = crate::container::commit::write_layer(self.ctx, &c)
                .map_err(|e| BuildError::Step(e.to_string()))?;
            crate::fault::at(crate::fault::Step::BuildLayerWritten);
            Ok(Self::add_layer(img.clone(), diff_id, size, &created_by))
        });
        // `--rm=false` keeps the intermediate containers of steps that succeeded (a failed
        // step's container always goes: a failed build leaves nothing behind).
        if outcome.is_err() || !self.o.keep_intermediates {
            let root = self.ctx.root.clone();
            if let Some(cur) = container::load(&self.ctx.db, &c.id)? {
                ops::remove(&root, &mut self.ctx.db, &cur, true)?;
            }
            self.say(&format!("Removing intermediate container {}", c.short_id()));
        }
        drop(script);
        let new = outcome?;
        self.finish_step(&key, new)
    }

    /// A `#!` here-document as an executable file, and its read-only mount at
    /// `/dev/pipes/NAME`.
    fn script_mount(
        &self,
        name: &str,
        content: &str,
    ) -> Result<(tempfile::TempDir, container::Mount), BuildError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuildError::Read { path, source }
        };
        let dir = tempfile::Builder::new()
            .prefix("build-script-")
            .tempdir_in(&self.ctx.root)
            .map_err(io(&self.ctx.root))?;
        let file = dir.path().join(name);
        std::fs::write(&file, content).map_err(io(&file))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
            .map_err(io(&file))?;
        let mount = container::Mount {
            kind: "bind".into(),
            source: file.display().to_string(),
            destination: format!("/dev/pipes/{name}"),
            rw: false,
            ..Default::default()
        };
        Ok((dir, mount))
    }

    /// Removes from the container's upper layer the mount points the runtime made for
    /// `RUN --mount` targets (and the empty parents it made for them), so they do not end
    /// up in the image, as BuildKit removes its mount stubs.
    fn remove_mount_stubs(&self, img: &Image, c: &container::Container) -> Result<(), BuildError> {
        let upper = container::rootfs::Layout::new(&container::dir(&self.ctx.root, &c.id)).upper;
        for m in &c.spec.mounts {
            let mut path = m.destination.trim_end_matches('/').to_string();
            while !path.is_empty() && !self.exists_in(img, &path)? {
                let p = upper.join(path.trim_start_matches('/'));
                let empty = match std::fs::symlink_metadata(&p) {
                    Ok(meta) if meta.is_dir() => {
                        std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_none())
                    }
                    Ok(meta) => meta.is_file() && meta.len() == 0,
                    Err(_) => false,
                };
                if !empty {
                    break;
                }
                let removed = if p.is_dir() {
                    std::fs::remove_dir(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                removed.map_err(|source| BuildError::Read {
                    path: p.clone(),
                    source,
                })?;
                path = match path.rsplit_once('/') {
                    Some((parent, _)) => parent.to_string(),
                    None => String::new(),
                };
            }
        }
        Ok(())
    }

    /// One `RUN --mount=...`: `type=cache` (a directory of the data root that persists
    /// between builds, by `id` or target; `mode`, `uid` and `gid` given to it when it is
    /// made), `type=bind` (from the context, read-only unless `rw`) or `type=tmpfs` (with
    /// `size`, `mode`, `uid`, `gid` as mount options).
    fn run_mount(&mut self, spec: &str) -> Result<container::Mount, BuildError> {
        let mut kind = "bind".to_string();
        let (mut target, mut source, mut id) = (String::new(), String::new(), String::new());
        let mut rw = false;
        let (mut mode, mut uid, mut gid, mut size) = (None, None, None, None);
        let number = |k: &str, v: &str, radix: u32| {
            u32::from_str_radix(v, radix).map_err(|_| {
                BuildError::Step(format!("RUN --mount={spec}: {k}={v} is not a number"))
            })
        };
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match k {
                "type" => kind = v.to_string(),
                "target" | "dst" | "destination" => target = v.to_string(),
                "source" | "src" => source = v.to_string(),
                "id" => id = v.to_string(),
                "rw" | "readwrite" => rw = v != "false",
                "ro" | "readonly" => rw = v == "false",
                "mode" => mode = Some(number(k, v, 8)?),
                "uid" => uid = Some(number(k, v, 10)?),
                "gid" => gid = Some(number(k, v, 10)?),
                "size" => size = Some(v.to_string()),
                // Concurrent builds share a cache mount; locking it is not offered.
                "sharing" if v == "shared" => {}
                "sharing" => {
                    return Err(BuildError::Unsupported(format!(
                        "RUN --mount={spec}: sharing={v} is not supported (cache mounts are shared)"
                    )))
                }
                other => {
                    return Err(BuildError::Unsupported(format!(
                        "RUN --mount={spec}: unknown key {other}"
                    )))
                }
            }
        }
        if target.is_empty() {
            return Err(BuildError::Step(format!(
                "RUN --mount={spec}: a target is needed"
            )));
        }
        let mount = |kind: &str, source: String, rw: bool| container::Mount {
            kind: kind.to_string(),
            source,
            destination: target.clone(),
            rw,
            ..Default::default()
        };
        match kind.as_str() {
            "cache" => {
                let key = if id.is_empty() { target.clone() } else { id };
                let dir = self
                    .ctx
                    .root
                    .join("build-cache-mounts")
                    .join(hex::encode(Sha256::digest(key.as_bytes())));
                let io = |source| BuildError::Read {
                    path: dir.clone(),
                    source,
                };
                if !dir.exists() {
                    std::fs::create_dir_all(&dir).map_err(io)?;
                    // BuildKit's defaults: 0755, root.
                    std::fs::set_permissions(
                        &dir,
                        std::os::unix::fs::PermissionsExt::from_mode(mode.unwrap_or(0o755)),
                    )
                    .map_err(io)?;
                    std::os::unix::fs::chown(&dir, uid, gid).map_err(io)?;
                }
                Ok(mount("bind", dir.display().to_string(), true))
            }
            "bind" if mode.is_some() || uid.is_some() || gid.is_some() || size.is_some() => {
                Err(BuildError::Step(format!(
                    "RUN --mount={spec}: mode, uid, gid and size apply to cache and tmpfs mounts"
                )))
            }
            "bind" => {
                let rel = source.trim_start_matches('/');
                let path = self.o.context.join(rel);
                if rel.split('/').any(|p| p == "..") || !path.exists() {
                    return Err(BuildError::Step(format!(
                        "RUN --mount={spec}: {source} is not in the build context"
                    )));
                }
                Ok(mount("bind", path.display().to_string(), rw))
            }
            "tmpfs" => {
                let options: Vec<String> = [
                    size.map(|s| format!("size={s}")),
                    mode.map(|m| format!("mode={m:o}")),
                    uid.map(|u| format!("uid={u}")),
                    gid.map(|g| format!("gid={g}")),
                ]
                .into_iter()
                .flatten()
                .collect();
                Ok(container::Mount {
                    kind: "tmpfs".into(),
                    destination: target.clone(),
                    mode: options.join(","),
                    rw: true,
                    ..Default::default()
                })
            }
            other => Err(BuildError::Unsupported(format!(
                "RUN --mount type={other} is not supported"
            ))),
        }
    }

    /// Starts the container, passes its output on line by line, returns its exit code.
    fn run_container(&mut self, c: &container::Container) -> Result<i32, BuildError> {
        let root = self.ctx.root.clone();
        let mut pipe = ops::start_monitor(&root, c, false, None)?;
        if let Err(e) = pipe.wait_started(&c.id) {
            return match e {
                ops::OpsError::Start { code, msg } => {
                    Err(BuildError::Step(format!("{msg} (exit {code})")))
                }
                e => Err(e.into()),
            };
        }
        let mut log = container::logs::Reader::open(&container::log_path(&root, &c.id)).map_err(
            |source| BuildError::Read {
                path: container::log_path(&root, &c.id),
                source,
            },
        )?;
        loop {
            let line = pipe.line(Some(Duration::from_millis(50)))?;
            for e in log.read_new().unwrap_or_default() {
                self.say(e.log.trim_end_matches('\n'));
            }
            match line.as_deref() {
                Some(l) if l.starts_with("exit ") => {
                    for e in log.read_new().unwrap_or_default() {
                        self.say(e.log.trim_end_matches('\n'));
                    }
                    return Ok(l[5..].parse().unwrap_or(1));
                }
                Some(l) if l.starts_with("error ") => {
                    return Err(BuildError::Step(l[6..].to_string()))
                }
                Some(_) | None => {}
            }
            if line.is_none()
                && !container::load(&self.ctx.db, &c.id)?.is_some_and(|x| x.is_running())
            {
                // The monitor is gone without a word: the store has the exit code.
                if let Some(x) = container::load(&self.ctx.db, &c.id)? {
                    if x.state.status != container::Status::Running {
                        return Ok(x.state.exit_code);
                    }
                }
            }
        }
    }
}

/// Go's `%q` of a string.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a string slice, as docker's history writes CMD and ENTRYPOINT.
fn go_quoted_list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(" ")
    )
}

/// Go's `%q` of an int: a quoted rune.
fn go_quote_rune(n: i64) -> String {
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) if (' '..='~').contains(&c) => format!("'{c}'"),
        Some(c) if (c as u32) < 0x100 => format!("'\\x{:02x}'", c as u32),
        Some(c) if (c as u32) < 0x10000 => format!("'\\u{:04x}'", c as u32),
        Some(c) => format!("'\\U{:08x}'", c as u32),
        None => "'\\ufffd'".into(),
    }
}

/// docker 20.10's history text of a HEALTHCHECK: Go's `%q` of its HealthConfig struct
/// (Test, Interval, Timeout, StartPeriod, Retries).
fn health_text(hc: &Value) -> String {
    let test: Vec<String> = hc["Test"]
        .as_array()
        .map(|a| strings(a))
        .unwrap_or_default();
    let d = |k: &str| {
        go_quote(&crate::format::go_duration_text(
            hc[k].as_i64().unwrap_or(0),
        ))
    };
    format!(
        "&{{{} {} {} {} {}}}",
        go_quoted_list(&test),
        d("Interval"),
        d("Timeout"),
        d("StartPeriod"),
        go_quote_rune(hc["Retries"].as_i64().unwrap_or(0))
    )
}

/// docker's config fields that every built image has (Go's zero values where unset), the
/// default PATH when the base has none, as docker's builder sets them at FROM.
fn normalize_config(img: &mut Image) {
    let cfg = img.cfg();
    for (k, v) in [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("WorkingDir", json!("")),
    ] {
        let slot = cfg.entry(k).or_insert(Value::Null);
        if slot.is_null() {
            *slot = v;
        }
    }
    let mut env: Vec<String> = cfg
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| strings(a))
        .unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        );
        cfg.insert("Env".into(), json!(env));
    }
}

/// The strings of a JSON array (Env, Shell, OnBuild, a healthcheck's Test).
fn strings(a: &[Value]) -> Vec<String> {
    a.iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

/// ENV/LABEL words to pairs: `k=v` words, or the legacy `ENV k v...` form.
fn env_pairs(words: &[String]) -> Option<Vec<(String, String)>> {
    if words.is_empty() {
        return None;
    }
    if !words[0].contains('=') {
        let v = words[1..].join(" ");
        return Some(vec![(words[0].clone(), v)]);
    }
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// A lexically cleaned absolute path.
fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A read-only overlay of an image's layers (COPY --from), unmounted on drop.
struct StageMount {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl StageMount {
    fn mount(ctx: &mut Context, img: &Image) -> Result<Self, BuildError> {
        let dir = tempfile::Builder::new()
            .prefix("build-from-")
            .tempdir_in(&ctx.root)
            .map_err(|source| BuildError::Read {
                path: ctx.root.clone(),
                source,
            })?;
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).map_err(|source| BuildError::Read {
            path: root.clone(),
            source,
        })?;
        let lowers: Vec<PathBuf> = match &img.id {
            Some(id) => ctx
                .db
                .layers(id)?
                .iter()
                .rev()
                .map(|l| ctx.root.join("snapshots").join(l.chain_id.hex()))
                .collect(),
            None => Vec::new(),
        };
        match lowers.len() {
            0 => {}
            1 => nix::mount::mount(
                Some(&lowers[0]),
                &root,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(|e| BuildError::Step(format!("mounting the stage's filesystem: {e}")))?,
            _ => {
                let data = format!(
                    "lowerdir={}",
                    lowers
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":")
                );
                nix::mount::mount(
                    Some("overlay"),
                    &root,
                    Some("overlay"),
                    nix::mount::MsFlags::MS_RDONLY,
                    Some(data.as_str()),
                )
                .map_err(|e| BuildError::Step(format!("mounting the stage's filesystem: {e}")))?;
            }
        }
        Ok(Self { _dir: dir, root })
    }
}

impl Drop for StageMount {
    /// Unmounts before the temporary directory (a field) is removed.
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.root, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_text_joins_continuations() {
        let t = "FROM x\nRUN echo a \\\n  && echo b\nCMD [\"sh\"]\n";
        assert_eq!(original(t, 7, '\\'), "RUN echo a   && echo b");
        assert_eq!(original(t, 0, '\\'), "FROM x");
        let t = "RUN a \\\n# note\n b\n";
        assert_eq!(original(t, 0, '\\'), "RUN a  b");
    }

    #[test]
    fn history_texts_are_gos() {
        assert_eq!(
            go_quoted_list(&["sh".into(), "-c".into(), "a \"b\"".into()]),
            "[\"sh\" \"-c\" \"a \\\"b\\\"\"]"
        );
        assert_eq!(go_quote_rune(2), "'\\x02'");
        assert_eq!(go_quote_rune(65), "'A'");
        assert_eq!(
            health_text(
                &json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 2})
            ),
            "&{[\"CMD-SHELL\" \"true\"] \"5s\" \"0s\" \"0s\" '\\x02'}"
        );
    }

    #[test]
    fn env_forms_and_paths() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            env_pairs(&w(&["A=1", "B=two"])).unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "two".into())]
        );
        assert_eq!(
            env_pairs(&w(&["A", "one", "two"])).unwrap(),
            vec![("A".into(), "one two".into())]
        );
        assert!(env_pairs(&w(&["=x"])).is_none());
        assert_eq!(clean_abs("/a/./b/../c/"), "/a/c");
        assert_eq!(
            crate::container::logs::go_duration("1m30s"),
            Some(90_000_000_000)
        );
        assert_eq!(context_size(2048), "2.048kB");
    }
}
