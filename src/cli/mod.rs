//! The command line: runc's global flags and subcommands, mapped onto `lifecycle`. No logic
//! lives here beyond turning flags into options.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::lifecycle::{self, create::CreateOptions, list, Global};
use crate::logging;

#[derive(Debug, Parser)]
#[command(
    name = "hull",
    about = "an Open Container Initiative runtime with runc's command line",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state (default /run/hull).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Also write log messages to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Format of the --log file.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log debug messages too.
    #[arg(long)]
    debug: bool,
    /// Manage cgroups through systemd (cgroupsPath is slice:prefix:name).
    #[arg(long)]
    systemd_cgroup: bool,
    /// Path to the criu binary used for checkpoint and restore.
    #[arg(long, default_value = "criu")]
    criu: PathBuf,
    /// Ignore cgroup permission errors: true, false or auto (when not root, or root in a
    /// user namespace). Before the command, as in runc (`spec --rootless` is another flag).
    #[arg(long = "rootless", id = "rootless_mode", value_name = "true|false|auto", default_value = "auto", value_parser = rootless_mode)]
    rootless: RootlessMode,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master of a terminal.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// File to write the container's init pid to.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the container's init.
    #[arg(long)]
    pidfd_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for a rootfs on ramfs).
    #[arg(long)]
    no_pivot: bool,
    /// Keep the caller's session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass fds 3..3+N to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: i32,
    container_id: String,
}

impl CreateArgs {
    fn options(self) -> CreateOptions {
        CreateOptions {
            id: self.container_id,
            bundle: self.bundle,
            pid_file: self.pid_file,
            console_socket: self.console_socket,
            pidfd_socket: self.pidfd_socket,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
        }
    }
}

#[derive(Debug, Args)]
struct ExecArgs {
    /// Unix socket that receives the pty master of a terminal.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set an environment variable (NAME=value); repeatable.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    tty: bool,
    /// uid[:gid] to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Additional group ids; repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// A process.json to run instead of the command.
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(short, long)]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the process.
    #[arg(long)]
    pidfd_socket: Option<PathBuf>,
    /// SELinux label for the process.
    #[arg(long)]
    process_label: Option<String>,
    /// AppArmor profile for the process.
    #[arg(long)]
    apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    no_new_privs: bool,
    /// Add a capability (bounding, effective, permitted); repeatable.
    #[arg(short = 'c', long = "cap")]
    cap: Vec<String>,
    /// Pass fds 3..3+N to the process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: i32,
    /// Run in an existing sub-cgroup of the container's cgroup: `path` for every controller or
    /// `ctrl[,ctrl]:path` for some (v1); repeatable.
    #[arg(long)]
    cgroup: Vec<String>,
    /// Allow exec into a paused container.
    #[arg(long)]
    ignore_paused: bool,
    container_id: String,
    /// The command and its arguments; flags after the container ID belong to the command.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    /// LinuxResources JSON file, or - for stdin.
    #[arg(short, long)]
    resources: Option<PathBuf>,
    #[arg(long)]
    blkio_weight: Option<u16>,
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CFS quota in microseconds; -1 for unlimited.
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    #[arg(long)]
    cpu_share: Option<u64>,
    #[arg(long)]
    cpu_rt_period: Option<u64>,
    #[arg(long, allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// CFS burst in microseconds.
    #[arg(long)]
    cpu_burst: Option<u64>,
    /// 1 makes the cgroup SCHED_IDLE, 0 undoes it.
    #[arg(long, allow_hyphen_values = true)]
    cpu_idle: Option<i64>,
    #[arg(long)]
    cpuset_cpus: Option<String>,
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with k/m/g); -1 for unlimited.
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited.
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    container_id: String,
}

/// The CRIU flags `checkpoint` and `restore` share.
#[derive(Debug, Args)]
struct CriuArgs {
    /// Directory of the checkpoint's images (default ./checkpoint).
    #[arg(long)]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's log and work files (default: the image directory).
    #[arg(long)]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long)]
    tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long)]
    ext_unix_sk: bool,
    /// Allow a shell job (a process attached to the caller's terminal session).
    #[arg(long)]
    shell_job: bool,
    /// Handle file locks.
    #[arg(long)]
    file_locks: bool,
    /// Deduplicate the memory pages against the parent images.
    #[arg(long)]
    auto_dedup: bool,
    /// Memory is fetched by a page server on demand (userfaultfd).
    #[arg(long)]
    lazy_pages: bool,
    /// How CRIU handles cgroups: soft, full, strict or ignore.
    #[arg(long)]
    manage_cgroups_mode: Option<String>,
    /// Namespaces created empty, without their properties (network).
    #[arg(long)]
    empty_ns: Vec<String>,
}

impl CriuArgs {
    fn options(self) -> lifecycle::CriuOptions {
        lifecycle::CriuOptions {
            image_path: self.image_path,
            work_path: self.work_path,
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
            manage_cgroups_mode: self.manage_cgroups_mode,
            empty_ns: self.empty_ns,
        }
    }
}

#[derive(Debug, Args)]
struct CheckpointArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// A pre-dump's images, relative to the image directory.
    #[arg(long)]
    parent_path: Option<PathBuf>,
    /// Leave the container running afterwards.
    #[arg(long)]
    leave_running: bool,
    /// Skip TCP connections still being established.
    #[arg(long)]
    tcp_skip_in_flight: bool,
    /// Allow linking of unlinked files.
    #[arg(long)]
    link_remap: bool,
    /// Dump only the memory, leaving the container running (a parent for a later dump).
    #[arg(long)]
    pre_dump: bool,
    /// ADDRESS:PORT of a CRIU page server to send the memory to.
    #[arg(long)]
    page_server: Option<String>,
    /// With --lazy-pages: an fd that gets a NUL byte once the pages can be served.
    #[arg(long, allow_hyphen_values = true)]
    status_fd: Option<i32>,
    container_id: String,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master of a terminal.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Return once the container runs instead of waiting for it.
    #[arg(short, long)]
    detach: bool,
    /// File to write the restored init's pid to.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Do not become a subreaper of the container's processes.
    #[arg(long)]
    no_subreaper: bool,
    /// Accepted as runc accepts it; CRIU sets up the restored root itself.
    #[arg(long)]
    no_pivot: bool,
    /// LSM profile of the restored processes (TYPE:NAME).
    #[arg(long)]
    lsm_profile: Option<String>,
    /// LSM mount context of the restored mounts.
    #[arg(long)]
    lsm_mount_context: Option<String>,
    container_id: String,
}

/// Deferred: only the subcommand named on the command line has its arguments built, a third
/// of the instructions of a `run`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
enum Command {
    /// Checkpoint a running container.
    Checkpoint(Box<CheckpointArgs>),
    /// Restore a container from a previous checkpoint.
    Restore(Box<RestoreArgs>),
    /// Create a container from a bundle; it waits for `start`.
    Create(CreateArgs),
    /// Start the process of a created container.
    Start { container_id: String },
    /// Create and start a container.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the process runs instead of waiting for it.
        #[arg(short, long)]
        detach: bool,
        /// Keep the stopped container (its state and cgroup) after the process exits.
        #[arg(long)]
        keep: bool,
    },
    /// Run a process in a running container.
    Exec(Box<ExecArgs>),
    /// Freeze every process of a container.
    Pause { container_id: String },
    /// Thaw a paused container.
    Resume { container_id: String },
    /// List a container's processes (ps(1) arguments follow the ID; default -ef).
    Ps {
        /// table (ps's own) or json (a bare array of pids).
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        container_id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print statistics and OOM events of a container as JSON lines.
    Events {
        /// Print one statistics line and exit.
        #[arg(long)]
        stats: bool,
        /// Time between statistics lines.
        #[arg(long, default_value = "5s")]
        interval: String,
        container_id: String,
    },
    /// Change the resources of a running container.
    Update(Box<UpdateArgs>),
    /// Print what this runtime supports, as JSON.
    Features,
    /// Print a container's state as JSON.
    State { container_id: String },
    /// Send a signal to a container's init (default SIGTERM).
    Kill {
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
        container_id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and what it made.
    Delete {
        /// Kill a running container first; succeed if it does not exist.
        #[arg(short, long)]
        force: bool,
        container_id: String,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Print only the IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json into a bundle.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for a user without root on the host.
        #[arg(long)]
        rootless: bool,
    },
}

/// `--rootless`: a choice, or None (`auto`) to decide by who runs hull.
#[derive(Debug, Clone, Copy)]
struct RootlessMode(Option<bool>);

/// Go's boolean spellings, as runc takes them, and `auto` or nothing for auto.
fn rootless_mode(v: &str) -> Result<RootlessMode, String> {
    match v {
        "" | "auto" => Ok(RootlessMode(None)),
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(RootlessMode(Some(true))),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(RootlessMode(Some(false))),
        other => Err(format!(
            "invalid --rootless value {other:?}: true, false or auto"
        )),
    }
}

/// runc's default state root: `/run/hull` for root on the host, `$XDG_RUNTIME_DIR/hull` for
/// a user without root, and for root in a user namespace that is not the user "root".
fn default_root(unprivileged: bool, in_userns: bool) -> PathBuf {
    let honor_xdg =
        unprivileged || (in_userns && std::env::var("USER").map_or(true, |u| u != "root"));
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| honor_xdg && !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("hull"),
        None => PathBuf::from("/run/hull"),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

/// Help in runc's layout (`NAME:` first, then `hull CMD - what it does`): callers and runc's own
/// tests read it.
const HELP: &str =
    "NAME:\n   {name} - {about}\n\nUSAGE:\n   {usage}\n\nOPTIONS:\n{all-args}{after-help}";

/// The command line as runc lays out its help, each subcommand named `PROG CMD` after the name
/// hull was run by (as in the usage line; callers and runc's tests read both). Only what clap
/// prints needs this dress: `parse` puts it on when clap has something to say, since dressing
/// all the subcommands is a twentieth of a `run`'s instructions. `argv0` is the name hull was
/// run by.
fn dressed(cmd: clap::Command, argv0: Option<&std::ffi::OsString>) -> clap::Command {
    let prog = argv0
        .map(std::path::Path::new)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "hull".into());
    cmd.help_template(HELP)
        .display_name(prog.clone())
        .mut_subcommands(|c| {
            let name = format!("{prog} {}", c.get_name());
            c.help_template(HELP).display_name(name)
        })
}

/// The parsed command line, or the exit status of clap's own output (help, usage errors).
/// `hull foo -h` says there is no help for `foo`, as runc does.
/// runc's flag parser (Go's) takes `-name` for `--name`, and callers use it: containerd's
/// shim passes `restore ... -no-subreaper`. Such an argument becomes `--name` when `name` is a
/// long flag of hull or of the command, up to the command's first positional argument (after
/// it come a process's own arguments, as in `exec ID ls -la`).
fn go_style_flags(cmd: &clap::Command, args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    // Only a single-dash word can change, and most callers write none: then the command's
    // arguments need not be built on a copy (a tenth of a `run`'s instructions).
    let single_dash_word = |a: &std::ffi::OsString| {
        let b = a.as_encoded_bytes();
        b.len() > 2 && b[0] == b'-' && b[1] != b'-'
    };
    if !args.iter().skip(1).any(single_dash_word) {
        return args;
    }
    let long = |c: &clap::Command, name: &str| {
        c.get_arguments()
            .find(|a| a.get_long() == Some(name))
            .map(|a| a.get_action().takes_values())
    };
    let mut out = Vec::with_capacity(args.len());
    let mut sub: Option<clap::Command> = None;
    let mut expects_value = false;
    let mut done = false;
    for (i, arg) in args.into_iter().enumerate() {
        let text = arg.to_string_lossy().into_owned();
        if i == 0 || done || expects_value {
            expects_value = false;
            out.push(arg);
            continue;
        }
        if text == "--" {
            done = true;
            out.push(arg);
            continue;
        }
        let single = text
            .strip_prefix('-')
            .filter(|r| r.len() > 1 && !r.starts_with('-'));
        let flag = single.or_else(|| text.strip_prefix("--"));
        match flag {
            Some(rest) => {
                let name = rest.split('=').next().unwrap_or(rest);
                let takes = sub
                    .as_ref()
                    .and_then(|c| long(c, name))
                    .or_else(|| long(cmd, name));
                expects_value = takes == Some(true) && !rest.contains('=');
                match (single, takes) {
                    (Some(_), Some(_)) => {
                        // The argument's own bytes: a path in it need not be UTF-8.
                        let mut long = std::ffi::OsString::from("-");
                        long.push(&arg);
                        out.push(long);
                    }
                    _ => out.push(arg),
                }
            }
            None if sub.is_none() && !text.starts_with('-') => {
                // Its arguments are deferred (`Command`): built here on a copy.
                sub = cmd.find_subcommand(&text).map(|c| {
                    let mut c = c.clone();
                    c.build();
                    c
                });
                done = sub.is_none();
                out.push(arg);
            }
            None => {
                // A short flag (its value may follow), or a positional argument of the
                // command, after which come its process's arguments.
                let short = text.strip_prefix('-').and_then(|r| {
                    let mut chars = r.chars();
                    chars.next().filter(|_| chars.next().is_none())
                });
                match short {
                    Some(c) => {
                        expects_value = sub
                            .iter()
                            .chain([cmd])
                            .flat_map(|c| c.get_arguments())
                            .find(|a| a.get_short() == Some(c))
                            .is_some_and(|a| a.get_action().takes_values());
                    }
                    None => done = !text.starts_with('-'),
                }
                out.push(arg);
            }
        }
    }
    out
}

fn parse() -> Result<Cli, i32> {
    let cmd = Cli::command();
    let args = go_style_flags(&cmd, std::env::args_os().collect());
    let mut matches = cmd
        .try_get_matches_from(&args)
        .map_err(|plain| usage_error(plain, &args))?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| {
        let _ = e.print();
        e.exit_code()
    })
}

/// Prints what clap had to say about `args` (help, a usage error) in runc's layout; returns
/// the exit status. Off the start path: no caller that gets it right comes here.
#[cold]
#[inline(never)]
fn usage_error(plain: clap::Error, args: &[std::ffi::OsString]) -> i32 {
    // The dress changes what clap prints, not what it accepts: the same words fail the same
    // way on the dressed command, which says so in runc's layout.
    let e = dressed(Cli::command(), args.first())
        .try_get_matches_from(args)
        .err()
        .unwrap_or(plain);
    // OS strings, as read: a word that is not UTF-8 (a path, say) must not abort hull before
    // it prints the usage error.
    let asks_help = args.iter().any(|a| a == "-h" || a == "--help");
    if e.kind() == clap::error::ErrorKind::InvalidSubcommand && asks_help {
        if let Some(clap::error::ContextValue::String(name)) =
            e.get(clap::error::ContextKind::InvalidSubcommand)
        {
            eprintln!("No help topic for '{name}'");
            return 3;
        }
    }
    let code = e.exit_code();
    let _ = e.print();
    code
}

/// Parses the command line, runs the command, and returns the process exit status.
pub fn main() -> i32 {
    crate::process::as_rust_starts();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    if let Err(e) = logging::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!(
            "opening --log {:?}: {e}",
            cli.log.as_deref().unwrap_or(std::path::Path::new(""))
        );
        return 1;
    }
    if cli.version {
        print!("{}", version());
        return 0;
    }
    let Some(command) = cli.command else {
        eprintln!("hull: a command is required; see hull --help");
        return 1;
    };
    let unprivileged = !nix::unistd::geteuid().is_root();
    let in_userns = crate::userns::running_in_user_namespace();
    let g = Global {
        root_given: cli.root.is_some(),
        root: cli
            .root
            .unwrap_or_else(|| default_root(unprivileged, in_userns)),
        systemd_cgroup: cli.systemd_cgroup,
        criu: cli.criu,
        rootless: cli.rootless.0.unwrap_or(unprivileged || in_userns),
        unprivileged,
        in_userns,
    };
    // exec reports its own failures as 255, so they differ from the process's statuses.
    let failure = if matches!(command, Command::Exec(_)) {
        255
    } else {
        1
    };
    match dispatch(&g, command) {
        Ok(code) => code,
        Err(e) => {
            logging::error(&error_line(&e));
            failure
        }
    }
}

fn dispatch(g: &Global, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Create(a) => lifecycle::create::create(g, &a.options()).map(|()| 0),
        Command::Start { container_id } => lifecycle::start::start(g, &container_id).map(|()| 0),
        Command::Run {
            create,
            detach,
            keep,
        } => lifecycle::run::run(g, &create.options(), detach, keep),
        Command::Exec(a) => lifecycle::exec::exec(
            g,
            &lifecycle::exec::ExecOptions {
                id: a.container_id,
                process: a.process,
                command: a.command,
                tty: a.tty,
                detach: a.detach,
                console_socket: a.console_socket,
                pid_file: a.pid_file,
                pidfd_socket: a.pidfd_socket,
                cwd: a.cwd,
                env: a.env,
                user: a.user,
                additional_gids: a.additional_gids,
                caps: a.cap,
                no_new_privs: a.no_new_privs,
                preserve_fds: a.preserve_fds,
                cgroup: a.cgroup,
                ignore_paused: a.ignore_paused,
                apparmor: a.apparmor,
                process_label: a.process_label,
            },
        ),
        Command::Checkpoint(a) => {
            let a = *a;
            let o = lifecycle::checkpoint::CheckpointOptions {
                id: a.container_id,
                criu: a.criu.options(),
                parent_path: a.parent_path,
                leave_running: a.leave_running,
                tcp_skip_in_flight: a.tcp_skip_in_flight,
                link_remap: a.link_remap,
                pre_dump: a.pre_dump,
                page_server: a.page_server,
                status_fd: a.status_fd,
            };
            lifecycle::checkpoint::checkpoint(g, &o).map(|()| 0)
        }
        Command::Restore(a) => {
            let a = *a;
            let o = lifecycle::restore::RestoreOptions {
                id: a.container_id,
                bundle: a.bundle,
                criu: a.criu.options(),
                console_socket: a.console_socket,
                detach: a.detach,
                pid_file: a.pid_file,
                no_subreaper: a.no_subreaper,
                lsm_profile: a.lsm_profile,
                lsm_mount_context: a.lsm_mount_context,
            };
            lifecycle::restore::restore(g, &o)
        }
        Command::Pause { container_id } => lifecycle::pause::pause(g, &container_id).map(|()| 0),
        Command::Resume { container_id } => lifecycle::pause::resume(g, &container_id).map(|()| 0),
        Command::Ps {
            format,
            container_id,
            ps_args,
        } => {
            let json = matches!(format, ListFormat::Json);
            print!("{}", lifecycle::ps::ps(g, &container_id, json, &ps_args)?);
            Ok(0)
        }
        Command::Events {
            stats,
            interval,
            container_id,
        } => {
            let interval = lifecycle::events::parse_duration(&interval)?;
            lifecycle::events::events(g, &container_id, stats, interval).map(|()| 0)
        }
        Command::Update(a) => {
            let o = lifecycle::update::UpdateOptions {
                resources: a.resources,
                blkio_weight: a.blkio_weight,
                cpu_period: a.cpu_period,
                cpu_quota: a.cpu_quota,
                cpu_share: a.cpu_share,
                cpu_rt_period: a.cpu_rt_period,
                cpu_rt_runtime: a.cpu_rt_runtime,
                cpu_burst: a.cpu_burst,
                cpu_idle: a.cpu_idle,
                cpuset_cpus: a.cpuset_cpus,
                cpuset_mems: a.cpuset_mems,
                memory: a.memory,
                memory_reservation: a.memory_reservation,
                memory_swap: a.memory_swap,
                pids_limit: a.pids_limit,
            };
            lifecycle::update::update(g, &a.container_id, &o).map(|()| 0)
        }
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&lifecycle::features::features())?
            );
            Ok(0)
        }
        Command::State { container_id } => {
            println!("{}", lifecycle::state::state(g, &container_id)?);
            Ok(0)
        }
        Command::Kill {
            all,
            container_id,
            signal,
        } => lifecycle::kill::kill(g, &container_id, &signal, all).map(|()| 0),
        Command::Delete {
            force,
            container_id,
        } => lifecycle::delete::delete(g, &container_id, force).map(|()| 0),
        Command::List { format, quiet } => {
            let f = match format {
                ListFormat::Table => list::Format::Table,
                ListFormat::Json => list::Format::Json,
            };
            print!("{}", list::list(g, f, quiet)?);
            Ok(0)
        }
        Command::Spec { bundle, rootless } => lifecycle::spec::spec(&bundle, rootless).map(|()| 0),
    }
}

/// The error and its causes on one line, skipping a cause whose text the message already
/// carries (typed errors often print their source themselves).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line = format!("{line}: {text}");
        }
    }
    line
}

/// runc's layout: version, commit, spec (callers read the spec line).
pub fn version() -> String {
    format!(
        "hull version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("HULL_COMMIT"),
        crate::state::OCI_VERSION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(args: &[&str]) -> Vec<String> {
        go_style_flags(&Cli::command(), args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn go_style_long_flags_are_taken_up_to_the_process_arguments() {
        assert_eq!(
            normalized(&[
                "hull",
                "restore",
                "--image-path",
                "/i",
                "-no-subreaper",
                "-b",
                "/b",
                "c1"
            ]),
            [
                "hull",
                "restore",
                "--image-path",
                "/i",
                "--no-subreaper",
                "-b",
                "/b",
                "c1"
            ]
        );
        assert_eq!(
            normalized(&["hull", "-root", "/r", "state", "c1"]),
            ["hull", "--root", "/r", "state", "c1"]
        );
        let exec = ["hull", "exec", "-e", "A=1", "c1", "sh", "-tty", "-la"];
        assert_eq!(normalized(&exec), exec);
        let update = ["hull", "update", "--cpu-quota", "-1", "c1"];
        assert_eq!(normalized(&update), update);
        let unknown = ["hull", "run", "-nosuchflag", "c1"];
        assert_eq!(normalized(&unknown), unknown);
    }
}
