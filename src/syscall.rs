//! Thin, safe wrappers of the Linux system calls that nix 0.29 does not cover (clone3 in fork
//! mode, pidfds, close_range, the new mount API: fsopen and fsmount, open_tree, mount_setattr,
//! move_mount). Each returns nix's
//! `Errno` so callers handle them like any other nix call.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

/// An errno as runc prints it (`operation not permitted`): the C library's text, lower-cased
/// at the start, since callers match runc's (Go's) words.
pub fn errno_text(e: Errno) -> String {
    lower_first(e.desc())
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or(String::new(), |c| {
        c.to_lowercase().chain(chars).collect::<String>()
    })
}

/// How a process killed by `sig` reads in runc's (Go's) words: `signal: bad system call`.
pub fn signal_text(sig: nix::sys::signal::Signal) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string, read at once.
    let desc = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(sig as libc::c_int)) };
    format!("signal: {}", lower_first(&desc.to_string_lossy()))
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3's flag (Linux 5.7) that starts the child in the cgroup2 directory `CloneArgs::cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks with `flags` (CLONE_NEW* namespaces) applied to the child, like fork(2) but able to
/// create every namespace in the same call, and with `cgroup` (a cgroup2 directory) the child
/// is born in that cgroup. Returns None in the child.
///
/// The caller must be single-threaded: as with fork, only the calling thread exists in the child.
pub fn clone_fork(flags: u64, cgroup: Option<BorrowedFd>) -> Result<Option<Pid>, Errno> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without a stack behaves like fork: the child continues on a copy of this
    // stack. hull is single-threaded, so no lock can be held by a thread that does not exist in
    // the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(ret)? {
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// A pidfd: refers to one process for its whole life, so signals and waits never hit a reused pid.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall with integer arguments.
    let fd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) })?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `sig` through a pidfd.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain syscall; a null siginfo means "as kill(2)".
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Waits until the process behind `pidfd` exits; false when `timeout` passed first.
pub fn pidfd_wait_exit(pidfd: &OwnedFd, timeout: Option<Duration>) -> Result<bool, Errno> {
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(pidfd),
        PollFlags::POLLIN,
    )];
    let timeout = match timeout {
        None => PollTimeout::NONE,
        Some(t) => PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX),
    };
    loop {
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Marks every fd from `first` upward close-on-exec, so nothing the runtime inherited or opened
/// leaks into the container (CVE-2024-21626).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    close_range(first, u32::MAX, true)
}

/// close_range(2), or where a seccomp profile that predates it refuses it (docker's 19.03
/// default, with the filter already on: EPERM, ENOSYS or the profile's defaultErrnoRet), the
/// same one fd at a time with fcntl or close, which every profile that lets a process run
/// allows. The kernel itself fails the call only for bad arguments (EINVAL).
fn close_range(first: u32, last: u32, cloexec: bool) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    let flags = if cloexec { CLOSE_RANGE_CLOEXEC } else { 0 };
    // SAFETY: plain syscall with integer arguments.
    match Errno::result(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) }) {
        Ok(_) => Ok(()),
        Err(e) if e != Errno::EINVAL => {
            // Nothing can be open at or above the fd limit.
            let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_or(1 << 20, |(soft, _)| soft.min(1 << 20)) as u32;
            for fd in first..=last.min(limit.saturating_sub(1)) {
                // SAFETY: fcntl/close of an fd number; EBADF for one not open is fine.
                unsafe {
                    if cloexec {
                        libc::fcntl(fd as RawFd, libc::F_SETFD, libc::FD_CLOEXEC);
                    } else {
                        libc::close(fd as RawFd);
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Closes every fd from `first` upward except those in `keep`: what a created container's init
/// holds while it waits for `start` must be only what it needs (runc's fd-leak check).
pub fn close_from_except(first: u32, keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|fd| u32::try_from(*fd).ok())
        .filter(|fd| *fd >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = first;
    for k in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if k > from {
            close_range(from, k - 1, false)?;
        }
        from = k.saturating_add(1);
    }
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets and clears mount attributes (MOUNT_ATTR_*) on the mount at `fd`, recursively when
/// `recursive`: the only way to make a whole rbind tree read-only or nosuid.
pub fn mount_setattr(fd: RawFd, recursive: bool, set: u64, clear: u64) -> Result<(), Errno> {
    setattr(fd, recursive, set, clear, 0, 0)
}

/// mount_setattr that also makes the mount a slave: it still receives mounts from its peers,
/// and sends none back.
pub fn mount_setattr_slave(fd: RawFd, set: u64, clear: u64) -> Result<(), Errno> {
    setattr(fd, false, set, clear, 0, libc::MS_SLAVE)
}

/// A new mount of a filesystem of type `fstype` with `options` (key, value), not attached
/// anywhere yet (fsopen, fsconfig, fsmount), with the mount attributes `attrs`.
pub fn new_mount(fstype: &str, options: &[(&str, &str)], attrs: u64) -> Result<OwnedFd, Errno> {
    const FSOPEN_CLOEXEC: u32 = 1;
    const FSCONFIG_SET_STRING: u32 = 1;
    const FSCONFIG_CMD_CREATE: u32 = 6;
    const FSMOUNT_CLOEXEC: u32 = 1;
    let c = |s: &str| std::ffi::CString::new(s).map_err(|_| Errno::EINVAL);
    let fstype = c(fstype)?;
    // SAFETY: fsopen with a valid C string; the result is a new fd.
    let context =
        Errno::result(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fsopen returned a new fd that nothing else owns.
    let context = unsafe { OwnedFd::from_raw_fd(context as RawFd) };
    for (key, value) in options {
        let (key, value) = (c(key)?, c(value)?);
        // SAFETY: valid C strings; the fd is the context's.
        Errno::result(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        })?;
    }
    // SAFETY: the create command takes no key or value.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: fsmount of a created context; the result is a new fd.
    let mount = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            context.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attrs,
        )
    })?;
    // SAFETY: fsmount returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(mount as RawFd) })
}

/// A detached copy of the mount at `path` (the whole tree below it when `recursive`), to be
/// attached with `move_mount`; a clone of a shared mount is one of its peers until told
/// otherwise.
pub fn open_tree_clone(path: &std::path::Path, recursive: bool) -> Result<OwnedFd, Errno> {
    const OPEN_TREE_CLONE: u32 = 1;
    const AT_RECURSIVE: u32 = 0x8000;
    let path =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree with a valid C string; the result is a new fd.
    let fd = Errno::result(unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags)
    })?;
    // SAFETY: open_tree returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// mount_setattr with MOUNT_ATTR_IDMAP (in `set`) and the user namespace that maps the ids.
pub fn mount_setattr_idmap(
    fd: RawFd,
    recursive: bool,
    set: u64,
    userns: &OwnedFd,
) -> Result<(), Errno> {
    setattr(fd, recursive, set, 0, userns.as_raw_fd() as u64, 0)
}

/// Attaches the detached mount `from` (an open_tree clone) at the directory `to`.
pub fn move_mount(from: RawFd, to: RawFd) -> Result<(), Errno> {
    attach(from, to, c"")
}

/// Attaches the detached mount `from` at `name` in the directory `dir`, without opening it.
pub fn move_mount_into(from: RawFd, dir: RawFd, name: &std::ffi::OsStr) -> Result<(), Errno> {
    let name = std::ffi::CString::new(name.as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    attach(from, dir, &name)
}

fn attach(from: RawFd, to: RawFd, to_path: &std::ffi::CStr) -> Result<(), Errno> {
    const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    let to_empty = if to_path.is_empty() {
        MOVE_MOUNT_T_EMPTY_PATH
    } else {
        0
    };
    // SAFETY: both paths are valid C strings; the fds are the caller's.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            to,
            to_path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | to_empty,
        )
    })
    .map(drop)
}

fn setattr(
    fd: RawFd,
    recursive: bool,
    set: u64,
    clear: u64,
    userns_fd: u64,
    propagation: u64,
) -> Result<(), Errno> {
    const AT_EMPTY_PATH: u32 = 0x1000;
    const AT_RECURSIVE: u32 = 0x8000;
    let mut attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation,
        userns_fd,
    };
    let flags = AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: the path is a valid empty C string, attr lives across the call.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}
