//! wharf's container init for `run --init`, bind-mounted read-only at /sbin/docker-init
//! and run as PID 1: `docker-init [--] COMMAND [ARG...]`. It starts COMMAND, forwards
//! every signal it receives to it, reaps every process that is reparented to it (PID 1's
//! job, which most programs do not do), and exits with COMMAND's status (128+N when a
//! signal N killed it). Built static by wharf's build.rs; it uses only std and the C
//! library's signal and wait calls, declared below.

use std::ffi::c_int;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// glibc's `sigset_t` (1024 bits).
#[repr(C)]
struct SigSet([u64; 16]);

/// glibc's `siginfo_t` (128 bytes); only the signal number is read.
#[repr(C)]
struct SigInfo {
    signo: c_int,
    rest: [c_int; 31],
}

extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut SigInfo) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
}

const SIG_SETMASK: c_int = 2;
const SIGCHLD: c_int = 17;
const WNOHANG: c_int = 1;

fn main() {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("docker-init: usage: docker-init [--] COMMAND [ARG...]");
        std::process::exit(1);
    }
    let mut all = SigSet([0; 16]);
    // SAFETY: plain libc calls on a local, correctly sized sigset_t.
    unsafe {
        sigfillset(&mut all);
        sigprocmask(SIG_SETMASK, &all, std::ptr::null_mut());
    }
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..]);
    // SAFETY: only sigemptyset and sigprocmask, both async-signal-safe, run between fork
    // and exec: the command starts with no signal blocked.
    unsafe {
        cmd.pre_exec(|| {
            let mut none = SigSet([0; 16]);
            sigemptyset(&mut none);
            sigprocmask(SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c.id() as c_int,
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            eprintln!("docker-init: exec {:?} failed: {e}", args[0]);
            std::process::exit(code);
        }
    };
    loop {
        let mut info = SigInfo {
            signo: 0,
            rest: [0; 31],
        };
        // SAFETY: waits for one of the blocked signals into a local siginfo_t.
        let sig = unsafe { sigwaitinfo(&all, &mut info) };
        if sig < 0 {
            continue;
        }
        if sig != SIGCHLD {
            // SAFETY: kill(2) of our own child.
            unsafe { kill(child, sig) };
            continue;
        }
        loop {
            let mut status: c_int = 0;
            // SAFETY: reaps any exited child into a local status word.
            let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                let code = if status & 0x7f == 0 {
                    (status >> 8) & 0xff
                } else {
                    128 + (status & 0x7f)
                };
                std::process::exit(code);
            }
        }
    }
}
