//! Crash injection: `WHARF_FAULT=STEP` (or `STEP#N`, the Nth time it is reached) makes
//! wharf kill itself with SIGKILL at that named step, as an OOM kill or a power cut would
//! stop it. Every step is declared once here with the commands that pass through it, so
//! the crash test enumerates them from this list and a new step is covered without
//! editing the test. Without the variable a step costs one lookup of a cached value.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The variable that arms a step.
pub const VAR: &str = "WHARF_FAULT";
/// A file created just before the kill, so a test knows the step was reached even in a
/// process it cannot wait for (the monitor).
pub const MARK_VAR: &str = "WHARF_FAULT_MARK";

macro_rules! steps {
    ($($variant:ident = $name:literal by [$($cmd:literal),+ $(,)?],)*) => {
        /// A named point of an operation where a crash leaves a distinct state.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Step { $($variant,)* }

        impl Step {
            pub const ALL: &'static [Step] = &[$(Step::$variant,)*];

            pub fn name(self) -> &'static str {
                match self { $(Step::$variant => $name,)* }
            }

            /// The commands that reach this step: `wharf` subcommands, and `monitor` or
            /// `monitor --rm` for the monitor of a container run without or with `--rm`.
            pub fn commands(self) -> &'static [&'static str] {
                match self { $(Step::$variant => &[$($cmd),+],)* }
            }
        }
    };
}

steps! {
    CreateDirPrepared = "create.dir-prepared" by ["create", "run"],
    CreateRootfsMounted = "create.rootfs-mounted" by ["create", "run"],
    CreateVolumesMade = "create.volumes-made" by ["create", "run"],
    CreateNetworkJoined = "create.network-joined" by ["create", "run"],
    CreateRecorded = "create.recorded" by ["create", "run"],
    StartMonitorSpawned = "start.monitor-spawned" by ["start", "run"],
    MonitorRootfsMounted = "monitor.rootfs-mounted" by ["monitor"],
    MonitorSandboxBuilt = "monitor.sandbox-built" by ["monitor"],
    MonitorRuntimeCreated = "monitor.runtime-created" by ["monitor"],
    MonitorRunning = "monitor.running" by ["monitor"],
    MonitorExited = "monitor.exited" by ["monitor"],
    MonitorNetworkDown = "monitor.network-down" by ["monitor"],
    MonitorExitRecorded = "monitor.exit-recorded" by ["monitor"],
    MonitorAutoRemoving = "monitor.auto-removing" by ["monitor --rm"],
    RmMarked = "rm.marked" by ["rm"],
    RmKilled = "rm.killed" by ["rm"],
    RmRuntimeDeleted = "rm.runtime-deleted" by ["rm"],
    RmNetworkReleased = "rm.network-released" by ["rm"],
    RmUnmounted = "rm.unmounted" by ["rm"],
    RmDirRemoved = "rm.dir-removed" by ["rm"],
    PullManifestFetched = "pull.manifest-fetched" by ["pull"],
    PullBlobStored = "pull.blob-stored" by ["pull"],
    PullBlobsDone = "pull.blobs-done" by ["pull"],
    ImageUnpacked = "image.unpacked" by ["pull", "load", "commit", "build"],
    ImageRecorded = "image.recorded" by ["pull", "load", "commit", "build"],
    PushBlobUploaded = "push.blob-uploaded" by ["push"],
    PushManifestPushed = "push.manifest-pushed" by ["push"],
    BuildContainerCreated = "build.container-created" by ["build"],
    BuildLayerWritten = "build.layer-written" by ["build"],
    BuildStepCommitted = "build.step-committed" by ["build"],
    CommitLayerWritten = "commit.layer-written" by ["commit"],
    LoadBlobsStored = "load.blobs-stored" by ["load"],
    VolumeDirMade = "volume.dir-made" by ["volume create"],
    VolumeRowRemoved = "volume.row-removed" by ["volume rm"],
    NetworkRecorded = "network.recorded" by ["network create"],
    NetworkTakenDown = "network.taken-down" by ["network rm"],
    NetworkJoined = "network.joined" by ["network connect"],
}

/// The armed step and after how many passes it fires, read once per process.
fn armed() -> Option<&'static (String, u32)> {
    static ARMED: OnceLock<Option<(String, u32)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var(VAR).ok()?;
            Some(match v.split_once('#') {
                Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
                None => (v, 1),
            })
        })
        .as_ref()
}

/// Reached `step`: dies here if it is the armed one.
pub fn at(step: Step) {
    static PASSES: AtomicU32 = AtomicU32::new(0);
    let Some((name, nth)) = armed() else {
        return;
    };
    if name == step.name() && PASSES.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
        if let Some(mark) = std::env::var_os(MARK_VAR) {
            let _ = std::fs::write(mark, step.name());
        }
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_unique_and_prefixed_by_their_operation() {
        let mut names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "a step name is declared twice");
        for s in Step::ALL {
            assert!(s.name().split_once('.').is_some(), "{}", s.name());
            assert!(!s.commands().is_empty());
        }
    }
}
