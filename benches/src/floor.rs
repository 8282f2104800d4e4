//! The physical floor: the least a runtime must do to run `/bin/true` "in a container" -
//! unshare the bundle's namespaces, fork (so the child is pid 1 of the new pid namespace),
//! bind the rootfs onto itself, pivot_root into it and exec - with none of the mounts,
//! cgroups, capabilities, seccomp or state files a runtime adds. It runs as a separate
//! process (this binary re-executed with `__floor`) so it is timed exactly like a runtime.

use std::ffi::CString;

/// The argument that selects the floor program instead of the benchmark.
pub const ARG: &str = "__floor";

/// Clone flags for OCI namespace type names; unknown names are an error, not a silent skip.
pub fn clone_flags(names: &[String]) -> Result<libc::c_int, String> {
    names.iter().try_fold(0, |acc, n| {
        let f = match n.as_str() {
            "pid" => libc::CLONE_NEWPID,
            "network" => libc::CLONE_NEWNET,
            "ipc" => libc::CLONE_NEWIPC,
            "uts" => libc::CLONE_NEWUTS,
            "mount" => libc::CLONE_NEWNS,
            "cgroup" => libc::CLONE_NEWCGROUP,
            "user" => libc::CLONE_NEWUSER,
            "time" => libc::CLONE_NEWTIME,
            other => return Err(format!("unknown namespace type {other}")),
        };
        Ok(acc | f)
    })
}

/// `__floor ROOTFS FLAGS`: never returns; exits with the container's status.
pub fn run(args: &[String]) -> ! {
    let code = match (args.first(), args.get(1).and_then(|f| f.parse().ok())) {
        (Some(rootfs), Some(flags)) => contain(rootfs, flags).unwrap_or_else(|e| {
            eprintln!("floor: {e}");
            125
        }),
        _ => {
            eprintln!("usage: {ARG} ROOTFS CLONE_FLAGS");
            125
        }
    };
    std::process::exit(code)
}

fn contain(rootfs: &str, flags: libc::c_int) -> Result<i32, String> {
    let c = |s: &str| CString::new(s).map_err(|e| e.to_string());
    let (root, dot, slash, tru) = (c(rootfs)?, c(".")?, c("/")?, c("/bin/true")?);
    let argv = [tru.as_ptr(), std::ptr::null()];
    // SAFETY: this process is single-threaded (a fresh exec of the bench binary), so unshare
    // and fork are sound; the child only makes syscalls on strings prepared above, then execs
    // or exits without unwinding.
    unsafe {
        if libc::unshare(flags) != 0 {
            return Err(format!("unshare: {}", std::io::Error::last_os_error()));
        }
        match libc::fork() {
            -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
            0 => {
                let null = std::ptr::null();
                let ok = libc::mount(
                    null,
                    slash.as_ptr(),
                    null,
                    libc::MS_REC | libc::MS_PRIVATE,
                    null.cast(),
                ) == 0
                    && libc::mount(
                        root.as_ptr(),
                        root.as_ptr(),
                        null,
                        libc::MS_BIND | libc::MS_REC,
                        null.cast(),
                    ) == 0
                    && libc::chdir(root.as_ptr()) == 0
                    && libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) == 0
                    && libc::umount2(dot.as_ptr(), libc::MNT_DETACH) == 0
                    && libc::chdir(slash.as_ptr()) == 0;
                if ok {
                    libc::execv(tru.as_ptr(), argv.as_ptr());
                }
                libc::_exit(126)
            }
            child => {
                let mut status = 0;
                if libc::waitpid(child, &mut status, 0) != child {
                    return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
                }
                Ok(if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_for_names() {
        let names = ["pid".to_string(), "mount".to_string()];
        assert_eq!(
            clone_flags(&names).unwrap(),
            libc::CLONE_NEWPID | libc::CLONE_NEWNS
        );
        assert!(clone_flags(&["bogus".to_string()]).is_err());
    }
}
