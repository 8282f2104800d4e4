//! `wharf-monitor`: the per-container monitor (`wharf::monitor`) as a program of its own,
//! which wharf starts for each container it runs, as podman starts conmon.
//!
//! It is not the `wharf` binary because a monitor lives as long as its container, one per
//! container: the linker keeps only what the monitor uses (no registry client, HTTP server,
//! builder or wharf's command line), so the relocated data each monitor holds privately is
//! 62 KiB instead of wharf's 373 KiB, and its program text is a quarter of wharf's.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use clap::Parser;

/// What the starter (`wharf::container::ops::start_monitor`) passes.
#[derive(Parser, Debug)]
#[command(name = "wharf-monitor", version)]
struct Args {
    /// wharf's data root
    #[arg(long)]
    data_root: PathBuf,
    /// Descriptor of the status pipe to the starter
    #[arg(long)]
    status_fd: Option<i32>,
    /// Hand our stdin to the container
    #[arg(long)]
    stdin: bool,
    /// Descriptor of the starter's attach socket
    #[arg(long)]
    attach_fd: Option<i32>,
    /// The container's ID
    id: String,
}

fn main() {
    wharf::monitor::restore_environment();
    let a = Args::parse();
    // SAFETY: the starter passed this descriptor to us for our exclusive use.
    let status = a.status_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: stdin is ours to give away; nothing else in the monitor reads it.
    let stdin = a.stdin.then(|| unsafe { OwnedFd::from_raw_fd(0) });
    // SAFETY: the starter passed this descriptor to us for our exclusive use.
    let client = a.attach_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let root = match std::path::absolute(&a.data_root) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wharf-monitor: data root {}: {e}", a.data_root.display());
            std::process::exit(1);
        }
    };
    wharf::monitor::run(&root, &a.id, status, stdin, client)
}
