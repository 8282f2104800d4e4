//! The seccomp profile `hull spec` writes: the behaviour of docker's and containerd's default
//! profile for a container without CAP_SYS_ADMIN. Everything is allowed except the system calls
//! that reach beyond the container (kernel modules, mounts, namespaces, keyrings, clocks,
//! ...); ptrace and process_vm_readv/writev are allowed, as docker allows them on kernels
//! since 4.8 (the pid namespace and the capability set bound what they reach); personality is limited to the harmless personas; clone may
//! not create namespaces; clone3 reports ENOSYS so that libcs fall back to clone, whose flags
//! the filter can see; AF_VSOCK sockets are refused.

use serde_json::{json, Value};

/// System calls the default profile refuses (EPERM), as docker's does for a default container.
const BLOCKED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "chroot",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "io_pgetevents",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pidfd_getfd",
    "pivot_root",
    "process_madvise",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vm86",
    "vm86old",
    "clone",
    "clone3",
    "personality",
    "socket",
];

/// CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP.
const CLONE_NAMESPACES: u64 = 0x7E02_0000;

pub fn default_profile() -> Value {
    let allowed: Vec<&str> = syscalls::Sysno::iter()
        .map(|s| s.name())
        .filter(|n| !BLOCKED.contains(n))
        .collect();
    let mut syscalls = vec![json!({"names": allowed, "action": "SCMP_ACT_ALLOW"})];
    for persona in [0x0u64, 0x0008, 0x20000, 0x20008, 0xffff_ffff] {
        syscalls.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]}));
    }
    syscalls.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": CLONE_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
    syscalls
        .push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}));
    syscalls.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": libc::AF_VSOCK, "op": "SCMP_CMP_NE"}]}));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": [crate::seccomp::host_arch_name()],
        "syscalls": syscalls
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_blocks_the_dangerous_calls() {
        let v = default_profile();
        let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v.clone()).unwrap();
        crate::seccomp::compile(&profile).unwrap();
        let allowed = v["syscalls"][0]["names"].as_array().unwrap();
        for name in ["mount", "unshare", "setns", "keyctl", "bpf", "clone"] {
            assert!(
                !allowed.iter().any(|n| n == name),
                "{name} allowed unconditionally"
            );
        }
        for name in [
            "read", "write", "execve", "openat", "futex", "fork", "ptrace",
        ] {
            assert!(allowed.iter().any(|n| n == name), "{name} not allowed");
        }
    }
}
