//! `compose`: the compose implementation people already use (docker-compose, found on
//! PATH) against an Engine API socket wharf serves for the command's time, as `podman
//! compose` does. The service ends with the command; the containers do not.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Exit;

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// docker-compose's own arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// The compose provider: `WHARF_COMPOSE_PROVIDER`, else docker-compose on PATH.
fn provider() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WHARF_COMPOSE_PROVIDER") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("docker-compose"))
            .find(|f| f.is_file())
    })
}

/// The service's process; ended (SIGTERM, then waited for) whatever happens.
struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

pub fn run(root: &Path, runtime: &str, a: Args) -> anyhow::Result<()> {
    let help = matches!(
        a.args.first().map(String::as_str),
        None | Some("-h" | "--help")
    );
    if help {
        println!("Usage: wharf compose [COMPOSE OPTIONS] COMMAND [ARGS...]\n");
        println!(
            "Runs the compose provider (docker-compose, or WHARF_COMPOSE_PROVIDER) against an"
        );
        println!(
            "Engine API socket wharf serves for the command's time. The provider's help follows.\n"
        );
    }
    let Some(compose) = provider() else {
        eprintln!("wharf compose: no compose provider found: install docker-compose (apt-get install docker-compose) or set WHARF_COMPOSE_PROVIDER");
        return Err(Exit(125).into());
    };
    if help {
        let status = Command::new(&compose).arg("--help").status()?;
        return if status.success() {
            Ok(())
        } else {
            Err(Exit(1).into())
        };
    }
    let run_dir = Path::new("/run/wharf");
    std::fs::create_dir_all(run_dir)?;
    let dir = tempfile::Builder::new()
        .prefix("compose-")
        .tempdir_in(run_dir)?;
    let socket = dir.path().join("api.sock");
    let service = Service(
        Command::new(std::env::current_exe()?)
            .arg("--data-root")
            .arg(root)
            .args(["--runtime", runtime, "system", "service", "--time", "0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if Instant::now() > deadline {
            anyhow::bail!(
                "wharf compose: the API service did not start on {}",
                socket.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new(&compose)
        .args(&a.args)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .env("DOCKER_BUILDKIT", "0")
        .status()?;
    drop(service);
    match status.code() {
        Some(0) => Ok(()),
        Some(c) => Err(Exit(c).into()),
        None => Err(Exit(1).into()),
    }
}
