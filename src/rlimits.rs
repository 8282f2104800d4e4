//! Per-process limits set by the container's init before it drops privileges: rlimits and
//! oom_score_adj.

use nix::errno::Errno;
use oci_spec::runtime::{PosixRlimitType, Process};

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("process.rlimits: {kind:?} soft {soft} hard {hard}: {source}")]
    Rlimit {
        kind: PosixRlimitType,
        soft: u64,
        hard: u64,
        source: Errno,
    },
    #[error("process.oomScoreAdj: writing {value}: {source}")]
    Oom { value: i32, source: std::io::Error },
}

fn resource(kind: PosixRlimitType) -> libc::__rlimit_resource_t {
    match kind {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn apply(process: &Process) -> Result<(), LimitError> {
    if let Some(value) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", value.to_string())
            .map_err(|source| LimitError::Oom { value, source })?;
    }
    for rl in process.rlimits().iter().flatten() {
        let limit = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit reads a live struct.
        Errno::result(unsafe { libc::setrlimit(resource(rl.typ()), &limit) }).map_err(
            |source| LimitError::Rlimit {
                kind: rl.typ(),
                soft: rl.soft(),
                hard: rl.hard(),
                source,
            },
        )?;
    }
    Ok(())
}
