//! What the container's process runs with besides its credentials: its I/O priority
//! (`process.ioPriority`) and its personality (`linux.personality`), set in the last steps
//! before exec for init and exec'd processes alike, as runc sets them.

use nix::errno::Errno;
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain,
};

/// `ioprio_set(IOPRIO_WHO_PROCESS, self, class << 13 | priority)`.
pub fn set_io_priority(p: &LinuxIOPriority) -> Result<(), String> {
    let class: i64 = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..8).contains(&p.priority()) {
        return Err(format!(
            "priority {} is out of range (0 to 7)",
            p.priority()
        ));
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: ioprio_set with integer arguments.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            class << 13 | p.priority(),
        )
    })
    .map(drop)
    .map_err(|e| format!("ioprio_set: {e}"))
}

/// personality(2) with the domain; runc ignores the flags (no kernel flag is in the spec's
/// list yet), and so does hull, with runc's warning.
pub fn set_personality(p: &LinuxPersonality) -> Result<(), String> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        crate::logging::warn("ignoring unsupported linux.personality.flags");
    }
    let persona: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality with an integer argument.
    Errno::result(unsafe { libc::personality(persona) })
        .map(drop)
        .map_err(|e| format!("personality: {e}"))
}
