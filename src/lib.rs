//! hull: a low-level OCI runtime with runc's command-line contract.
//!
//! The binary (`main.rs`) parses the command line and hands each subcommand to `lifecycle`; the
//! modules below own one piece of kernel work each. Everything is `pub(crate)` except the entry
//! points that the binary, fuzz targets and benches need.

pub mod cli;
pub mod logging;

mod capabilities;
mod cgroups;
mod hooks;
mod keyring;
mod lifecycle;
mod namespaces;
mod process;
mod rlimits;
mod rootfs;
mod seccomp;
pub mod spec;
mod state;
mod syscall;
mod sysctl;
mod tty;
mod userns;
