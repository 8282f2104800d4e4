//! The last steps before exec, shared by a container's init and by `exec`: the working
//! directory (checked to be inside the root), seccomp and capabilities in runc's order around
//! the switch to the process's user, no_new_privs, the fds that may pass, the umask, execve.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, execve, getcwd, AccessFlags};
use oci_spec::runtime::{Linux, Process};

use super::channel::{Channel, InitFailure, Message, Step};
use crate::capabilities::{self, Plan};
use crate::sched;
use crate::seccomp::Program;
use crate::syscall;
use crate::syscall::errno_text;

/// A process ready to exec: everything that can fail has been checked, and the seccomp filter
/// is on.
pub struct Ready {
    exe: CString,
    args: Vec<CString>,
    env: Vec<CString>,
}

/// What the last steps work from: the process, the container's `linux` section (personality,
/// cpuset), and what the parent prepared.
pub struct Steps<'a> {
    pub process: &'a Process,
    pub linux: Option<&'a Linux>,
    pub caps: Option<&'a Plan>,
    pub seccomp: Option<&'a Program>,
    pub in_userns: bool,
    pub extra_env: &'a [String],
    pub preserve_fds: i32,
    /// An exec'd process, not the container's init (execCPUAffinity applies to it only).
    pub exec: bool,
}

/// Everything up to exec. Without no_new_privs the seccomp filter is installed while the
/// process still has CAP_SYS_ADMIN, before the capability drop; with it, last, as runc does:
/// before init reports ready, so that startContainer hooks run under the container's profile
/// and the runtime's remaining syscalls are runc's (a profile written for runc fits hull).
/// A seccomp listener goes to hull's parent side over `ch` the moment the filter is on.
pub fn prepare(steps: &Steps<'_>, ch: &Channel) -> Result<Ready, InitFailure> {
    let Steps {
        process,
        linux,
        caps,
        seccomp,
        in_userns,
        extra_env,
        preserve_fds,
        exec,
    } = *steps;
    let pass_listener = |listener: OwnedFd| {
        ch.send_fd(&Message::SeccompListener, listener.as_fd())
            .step("passing the seccomp listener")
    };
    enter_cwd(process.cwd()).step("process.cwd")?;
    // In the cgroup now: an exec'd process's final CPU list when given, else every CPU the
    // cpuset allows (before any seccomp filter, which might not allow the call).
    let final_cpus = process
        .exec_cpu_affinity()
        .as_ref()
        .filter(|_| exec)
        .and_then(|a| a.cpu_affinity_final().as_deref())
        .filter(|c| !c.is_empty());
    sched::set_affinity(final_cpus).step("process.execCPUAffinity")?;
    if let Some(p) = process.io_priority() {
        sched::set_io_priority(p).step("process.ioPriority")?;
    }
    if let Some(s) = process.scheduler() {
        let cpuset = linux
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.cpu().as_ref())
            .is_some_and(|c| c.cpus().as_ref().is_some_and(|c| !c.is_empty()));
        sched::set_scheduler(s, cpuset).step("process.scheduler")?;
    }
    if let Some(p) = linux.and_then(|l| l.memory_policy().as_ref()) {
        sched::set_memory_policy(p).step("linux.memoryPolicy")?;
    }
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        sched::set_personality(p).step("linux.personality")?;
    }
    let nnp = process.no_new_privileges() == Some(true);
    if !nnp {
        if let Some(s) = seccomp {
            // Handed over at once: until the agent holds it, a notified syscall of this
            // process (an openat, a close) would block it for good.
            if let Some(l) = s.install().step("seccomp")? {
                pass_listener(l)?;
            }
        }
    }
    if let Some(caps) = caps {
        caps.limit_bounding().step("capabilities")?;
    }
    stdio_to_user(process.user().uid()).step("process.user: stdio")?;
    let setgroups = !in_userns
        || crate::procfile::read("/proc/self/setgroups").map_or(true, |s| s.trim() == "allow");
    // Groups asked for that the kernel will not set are an error, not dropped (runc's rule).
    if let Some(gids) = process
        .user()
        .additional_gids()
        .as_ref()
        .filter(|g| !setgroups && !g.is_empty())
    {
        return Err(format!(
            "cannot set additional groups {gids:?} in a rootless container (setgroups is denied)"
        ))
        .step("process.user.additionalGids");
    }
    capabilities::switch_user(process.user(), setgroups).step("process.user")?;
    if let Some(caps) = caps {
        caps.apply().step("capabilities")?;
    }
    if nnp {
        // SAFETY: prctl with integer arguments.
        Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
            .step("noNewPrivileges")?;
    }
    exec_labels(process)?;
    let env = environment(process, extra_env)?;
    let exe = find_executable(process, &env)?;
    let args: Vec<CString> = process
        .args()
        .iter()
        .flatten()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .step("process.args")?;
    pass_only_preserved_fds(preserve_fds).step("closing fds")?;
    umask(Mode::from_bits_truncate(
        process.user().umask().unwrap_or(0o022),
    ));
    if let Some(s) = seccomp.filter(|_| nnp) {
        if let Some(l) = s.install().step("seccomp")? {
            pass_listener(l)?;
        }
    }
    Ok(Ready { exe, args, env })
}

impl Ready {
    /// The process's environment, as it will exec with it.
    pub fn env(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    /// Execs the process; returns only on failure.
    pub fn exec(self) -> InitFailure {
        super::reset_signals();
        let e = execve(&self.exe, &self.args, &self.env).unwrap_err();
        InitFailure {
            step: format!("exec {}", self.exe.to_string_lossy()),
            message: errno_text(e),
        }
    }
}

/// Gives the process's stdio (its terminal above all) to its user, as runc does, so that a
/// non-root process owns its tty (`stat $(tty)`); the group stays (devpts' `gid=5`). /dev/null
/// and what is already the user's are left alone, and so is what this process may not change
/// (owner unmapped in the user namespace, read-only /dev).
fn stdio_to_user(uid: u32) -> Result<(), Errno> {
    use nix::sys::stat::{fstat, SFlag};
    for fd in 0..=2 {
        let st = match fstat(fd) {
            Ok(st) => st,
            Err(Errno::EBADF) => continue,
            Err(e) => return Err(e),
        };
        let is_null = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && st.st_rdev == libc::makedev(1, 3);
        if st.st_uid == uid || is_null {
            continue;
        }
        match nix::unistd::fchown(fd, Some(nix::unistd::Uid::from_raw(uid)), None) {
            Ok(()) | Err(Errno::EPERM) | Err(Errno::EROFS) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The AppArmor profile and SELinux label the kernel applies at exec. Asked for on a host
/// without that LSM, it is an error: silently running unconfined would be worse.
fn exec_labels(process: &Process) -> Result<(), InitFailure> {
    let fail = |step: &str, message: String| InitFailure {
        step: step.into(),
        message,
    };
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        if !enabled {
            return Err(fail(
                "process.apparmorProfile",
                format!("{profile:?} requested but AppArmor is not enabled on this host"),
            ));
        }
        std::fs::write(
            "/proc/thread-self/attr/apparmor/exec",
            format!("exec {profile}"),
        )
        .map_err(|e| fail("process.apparmorProfile", format!("{profile:?}: {e}")))?;
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if !Path::new("/sys/fs/selinux/enforce").exists() {
            return Err(fail(
                "process.selinuxLabel",
                format!("{label:?} requested but SELinux is not enabled on this host"),
            ));
        }
        std::fs::write("/proc/thread-self/attr/exec", label)
            .map_err(|e| fail("process.selinuxLabel", format!("{label:?}: {e}")))?;
    }
    Ok(())
}

/// chdir into the working directory and check it is inside the new root: a cwd reached through
/// a leaked fd would be outside it (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<(), String> {
    chdir(cwd).map_err(|e| format!("{cwd:?}: {e}"))?;
    match getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(format!("{cwd:?} is outside the container's root")),
    }
}

/// The process's environment, plus HOME from the container's /etc/passwd (or `/`) when the
/// config sets none, as runc and crun add it.
fn environment(process: &Process, extra: &[String]) -> Result<Vec<CString>, InitFailure> {
    let given: Vec<&str> = process
        .env()
        .iter()
        .flatten()
        .chain(extra)
        .map(String::as_str)
        .collect();
    let mut env = dedup_env(&given).map_err(|message| InitFailure {
        step: "process.env".into(),
        message,
    })?;
    // A HOME that is unset or empty comes from passwd, as runc sets it.
    let home;
    if !env
        .iter()
        .any(|e| e.starts_with("HOME=") && e.len() > "HOME=".len())
    {
        env.retain(|e| *e != "HOME=");
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        home = format!("HOME={}", home_of(&passwd, process.user().uid()));
        env.push(&home);
    }
    env.into_iter()
        .map(CString::new)
        .collect::<Result<_, _>>()
        .step("process.env")
}

/// One entry per name, the last one given, where it stood (as runc and Go's os/exec do); an
/// entry without a name is an error.
fn dedup_env<'a>(env: &[&'a str]) -> Result<Vec<&'a str>, String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(env.len());
    for kv in env.iter().rev() {
        let key = match kv.split_once('=') {
            Some(("", _)) => {
                return Err(format!(
                    "invalid environment variable {kv:?}: name cannot be empty"
                ))
            }
            Some((key, _)) => key,
            None => return Err(format!("invalid environment variable {kv:?}: missing '='")),
        };
        if seen.insert(key) {
            out.push(*kv);
        }
    }
    out.reverse();
    Ok(out)
}

/// The home directory of `uid` in passwd text; `/` when it has none.
fn home_of(passwd: &str, uid: u32) -> &str {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5])
        .filter(|h| !h.is_empty())
        .unwrap_or("/")
}

/// Resolves args[0] as execve would through $PATH, so a missing program is an error reported
/// by the runtime rather than an exit status of the container. The texts are runc's (Go's
/// exec.LookPath and os.PathError): engines read them to exit 126 or 127 as docker does.
fn find_executable(process: &Process, env: &[CString]) -> Result<CString, InitFailure> {
    let name = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .ok_or_else(|| InitFailure {
            step: "process.args".into(),
            message: "no program to run".into(),
        })?;
    let path = env
        .iter()
        .filter_map(|e| e.to_str().ok())
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let found = look_path(name, path).map_err(|message| InitFailure {
        step: "process.args[0]".into(),
        message,
    })?;
    // An executable on a noexec mount passes the mode check; execve would refuse it. Checked
    // with the effective ids and capabilities, as execve will: access(2) would use the real
    // uid and ignore a CAP_DAC_OVERRIDE that lets a non-root process run a root-only program.
    nix::unistd::faccessat(
        None,
        &found,
        AccessFlags::X_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    )
    .map_err(|e| InitFailure {
        step: "process.args[0]".into(),
        message: format!("exec {}: {}", found.display(), errno_text(e)),
    })?;
    CString::new(found.into_os_string().into_encoded_bytes()).step("process.args[0]")
}

/// Go's exec.LookPath: a name with a slash is checked as it is, any other is searched for in
/// `path`. A candidate is a regular file with an execute bit.
fn look_path(name: &str, path: &str) -> Result<PathBuf, String> {
    let check = |p: &Path| -> Result<(), String> {
        let md = std::fs::metadata(p).map_err(|e| {
            let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
            format!("stat {}: {}", p.display(), errno_text(errno))
        })?;
        if !md.is_dir() && md.permissions().mode() & 0o111 != 0 {
            Ok(())
        } else {
            Err(errno_text(Errno::EACCES))
        }
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return check(&p)
            .map(|()| p)
            .map_err(|e| format!("exec: {name:?}: {e}"));
    }
    path.split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(name))
        .find(|p| check(p).is_ok())
        .ok_or_else(|| format!("exec: {name:?}: executable file not found in $PATH"))
}

/// fds 3..3+n stay open for the process, every other fd above 2 closes at exec.
fn pass_only_preserved_fds(n: i32) -> Result<(), Errno> {
    for fd in 3..3 + n {
        match fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())) {
            Ok(_) | Err(Errno::EBADF) => {}
            Err(e) => return Err(e),
        }
    }
    syscall::cloexec_from((3 + n) as u32)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn lookup_failures_read_as_runc_prints_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("plain"), "").unwrap();
        let d = dir.display();
        let path = d.to_string();
        assert_eq!(
            super::look_path("/no/such", &path).unwrap_err(),
            "exec: \"/no/such\": stat /no/such: no such file or directory"
        );
        assert_eq!(
            super::look_path("nosuch", &path).unwrap_err(),
            "exec: \"nosuch\": executable file not found in $PATH"
        );
        assert_eq!(
            super::look_path(&format!("{d}/sub"), &path).unwrap_err(),
            format!("exec: \"{d}/sub\": permission denied")
        );
        assert_eq!(
            super::look_path(&format!("{d}/plain"), &path).unwrap_err(),
            format!("exec: \"{d}/plain\": permission denied")
        );
        assert_eq!(
            super::look_path("sh", "/nonexistent:/bin").unwrap(),
            Path::new("/bin/sh")
        );
    }

    #[test]
    fn the_last_of_duplicate_env_names_wins_once() {
        assert_eq!(
            super::dedup_env(&["A=1", "B=2", "A=3", "C="]).unwrap(),
            ["B=2", "A=3", "C="]
        );
        assert!(super::dedup_env(&["=x"]).is_err());
        assert!(super::dedup_env(&["NOEQUALS"]).is_err());
    }

    #[test]
    fn home_comes_from_passwd_or_is_root() {
        let passwd =
            "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:100::/home/bob:/bin/sh\nnohome:x:7:7::::\n";
        assert_eq!(super::home_of(passwd, 0), "/root");
        assert_eq!(super::home_of(passwd, 1000), "/home/bob");
        assert_eq!(super::home_of(passwd, 7), "/");
        assert_eq!(super::home_of(passwd, 42), "/");
    }
}
