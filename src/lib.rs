//! hull: a low-level OCI runtime with runc's command-line contract.
//!
//! The binary (`main.rs`) parses the command line and hands each subcommand to `lifecycle`; the
//! modules below own one piece of kernel work each. Everything is `pub(crate)` except the entry
//! points that the binary, fuzz targets and benches need.

pub mod cli;
pub mod logging;

mod capabilities;
mod cgroups;
mod criu;
mod fdpass;
mod hooks;
mod keyring;
mod lifecycle;
mod loopback;
mod math;
mod namespaces;
mod process;
mod procfile;
pub mod pstable;
mod rlimits;
pub(crate) mod rootfs;
mod sched;
mod seccomp;
pub mod spec;
mod state;
mod syscall;
mod sysctl;
mod tty;
mod userns;

/// Whether `path` is the one entry a `--root` keeps once its containers are gone: the empty
/// directory the next container takes (the `state` module says why). Tests that check that
/// nothing was left behind allow it.
pub fn is_spare_state_dir(path: &std::path::Path) -> bool {
    path.file_name() == Some(std::ffi::OsStr::new(state::SPARE)) && state::is_empty_dir(path)
}

/// Entry points for fuzz targets and benches: the pure functions that read untrusted input.
/// Each returns whether the input was accepted; none may panic.
pub mod entry {
    use std::path::Path;

    /// Parses and validates a config.json as `create` does (the rootfs is taken as `/`).
    pub fn load_config(bytes: &[u8]) -> bool {
        let config = Path::new("/fuzz/config.json");
        crate::spec::parse(config, bytes)
            .and_then(|spec| crate::spec::validate(config, Path::new("/"), &spec))
            .is_ok()
    }

    /// Parses mount options and derives the bind-mount attributes, as the rootfs set-up does.
    pub fn mount_options(options: &[String]) -> bool {
        crate::rootfs::options::parse(options)
            .map(|o| (o.bind_attrs(), o.data_string()))
            .is_ok()
    }

    /// Compiles a `linux.seccomp` profile to BPF.
    pub fn seccomp_profile(bytes: &[u8]) -> bool {
        serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(bytes)
            .ok()
            .is_some_and(|p| crate::seccomp::compile(&p).is_ok())
    }
}
