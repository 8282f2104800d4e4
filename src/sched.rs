//! What the container's process runs with besides its credentials: its CPU affinity
//! (`process.execCPUAffinity`, else every CPU its cpuset allows, whatever the caller's was),
//! CPU scheduler (`process.scheduler`), I/O priority (`process.ioPriority`), NUMA memory policy
//! (`linux.memoryPolicy`) and personality (`linux.personality`), set in the last steps before
//! exec for init and exec'd processes alike, as runc sets them.

use nix::errno::Errno;
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType,
    Scheduler,
};

/// The highest NUMA node number the kernel can have (MAX_NUMNODES with NODES_SHIFT 10).
const MAX_NODE: usize = 1023;

/// The numbers of a list of ranges as runtime-spec writes CPUs and nodes ("0-3,5"), each at most
/// `max`; `what` names them in the error.
fn parse_ranges(list: &str, max: usize, what: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("invalid {what} {part:?}"))
        };
        let (lo, hi) = (number(lo)?, number(hi)?);
        if lo > hi {
            return Err(format!("invalid {what} {part:?}"));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// The nodes of a memory policy.
pub fn parse_nodes(list: &str) -> Result<Vec<usize>, String> {
    parse_ranges(list, MAX_NODE, "memory policy node")
}

/// Checks a memory policy before anything is made: modes that take no nodes (default, local)
/// must name none, the others at least one.
pub fn check_memory_policy(p: &LinuxMemoryPolicy) -> Result<(), String> {
    let nodes = parse_nodes(p.nodes().as_deref().unwrap_or(""))?;
    let none = matches!(
        p.mode(),
        MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal
    );
    match (none, nodes.len()) {
        (true, n) if n > 0 => Err(format!("mode requires 0 nodes but got {n}")),
        (false, 0) => Err("mode requires at least one node".into()),
        _ => Ok(()),
    }
}

/// set_mempolicy(2) with the mode, its flags and a node mask.
pub fn set_memory_policy(p: &LinuxMemoryPolicy) -> Result<(), String> {
    let mode: libc::c_long = match p.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    let flags = p.flags().iter().flatten().fold(0, |f, flag| {
        f | match flag {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        }
    });
    let nodes = parse_nodes(p.nodes().as_deref().unwrap_or(""))?;
    let words = nodes.iter().max().map_or(0, |m| m / 64 + 1);
    let mut mask = vec![0 as libc::c_ulong; words];
    for n in nodes {
        mask[n / 64] |= 1 << (n % 64);
    }
    // The kernel reads maxnode - 1 bits.
    let maxnode = if words == 0 { 0 } else { words * 64 + 1 };
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: set_mempolicy reads `maxnode - 1` bits of a live mask (or none).
    Errno::result(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode | flags, ptr, maxnode) })
        .map(drop)
        .map_err(|e| format!("set_mempolicy: {e}"))
}

/// Runs this process on `cpus` ("0-3,7"), or with None on every CPU: the kernel keeps that
/// within the cgroup's cpuset, so a caller's own affinity (taskset) never leaks into the
/// container, as runc resets it.
pub fn set_affinity(cpus: Option<&str>) -> Result<(), String> {
    use nix::sched::{sched_setaffinity, CpuSet};
    let mut set = CpuSet::new();
    let wanted = match cpus {
        Some(list) => parse_ranges(list, CpuSet::count() - 1, "CPU list")?,
        None => (0..CpuSet::count()).collect(),
    };
    for cpu in wanted {
        set.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    }
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| format!("sched_setaffinity: {e}"))
}

/// sched_setattr(2)'s argument, in its first version's layout.
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// sched_setattr for this process. With a cpuset the kernel refuses deadline scheduling
/// (EPERM: the affinity must span every CPU), which runc reports in these words.
pub fn set_scheduler(s: &Scheduler, cpuset: bool) -> Result<(), String> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let flags = s.flags().iter().flatten().fold(0u64, |f, flag| {
        f | match flag {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: sched_setattr reads `size` bytes of a live, fully initialised struct.
    match Errno::result(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) }) {
        Ok(_) => Ok(()),
        Err(Errno::EPERM) if cpuset => {
            Err("process scheduler can't be used together with AllowedCPUs \
                 (linux.resources.cpu.cpus)"
                .into())
        }
        Err(e) => Err(format!("error setting scheduler: {e}")),
    }
}

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
