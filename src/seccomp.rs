//! `linux.seccomp`: the OCI profile compiled to BPF with seccompiler in the parent (before any
//! process exists, so a bad profile leaves nothing behind), installed in the container with our
//! own seccomp(2) call, because seccompiler's installer always sets no_new_privs.
//!
//! seccompiler has one match action per filter, so a profile becomes a stack: one filter that
//! returns the default action for everything no rule matches, and one per other (action, errno)
//! whose rules return it. The kernel runs them all and keeps the strictest answer.
//!
//! SCMP_ACT_NOTIFY: seccompiler has no user-notification action, so that filter is compiled to
//! return SECCOMP_RET_TRACE and its return instructions are rewritten. It is installed with
//! SECCOMP_FILTER_FLAG_NEW_LISTENER; the listener goes to the seccomp agent at `listenerPath`
//! as runc sends it (one message: the container process state as JSON, the fd attached).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;

use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("installing the seccomp filter: {0}")]
    Install(Errno),
    #[error("seccomp agent at listenerPath {path:?}: {message}")]
    Agent { path: PathBuf, message: String },
}

/// A compiled profile, ready to install.
pub struct Program {
    filters: Vec<BpfProgram>,
    flags: libc::c_ulong,
    /// The filter that notifies, installed with a new listener.
    notify: Option<usize>,
    agent: Option<Agent>,
}

/// The seccomp agent of a profile with SCMP_ACT_NOTIFY rules.
#[derive(Debug, Clone)]
pub struct Agent {
    path: PathBuf,
    metadata: String,
}

/// What a rule returns.
#[derive(Debug, Clone, PartialEq)]
enum Act {
    Plain(SeccompAction),
    Notify,
}

impl Act {
    /// The action seccompiler compiles; a notifying filter's TRACE returns are rewritten.
    fn compiled(&self) -> SeccompAction {
        match self {
            Act::Plain(a) => a.clone(),
            Act::Notify => SeccompAction::Trace(0),
        }
    }
}

const ALLOW: Act = Act::Plain(SeccompAction::Allow);

#[cfg(target_arch = "x86_64")]
const HOST: (TargetArch, &str) = (TargetArch::x86_64, "SCMP_ARCH_X86_64");
#[cfg(target_arch = "aarch64")]
const HOST: (TargetArch, &str) = (TargetArch::aarch64, "SCMP_ARCH_AARCH64");
#[cfg(target_arch = "riscv64")]
const HOST: (TargetArch, &str) = (TargetArch::riscv64, "SCMP_ARCH_RISCV64");

/// The SCMP_ARCH name of the architecture hull was built for.
pub fn host_arch_name() -> &'static str {
    HOST.1
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Act {
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Act::Plain(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno),
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActNotify => return Act::Notify,
    })
}

/// Where seccompiler's program goes on after its architecture check (load arch, jump over the
/// kill, kill), which jumps to here: guards inserted there see every call of this architecture,
/// and nothing jumps across them.
const AFTER_ARCH_CHECK: usize = 3;

fn insn(code: u32, k: u32, jt: u8, jf: u8) -> seccompiler::sock_filter {
    seccompiler::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Three instructions: calls whose number passes `jump` (JGE or JGT) against `k` fail with
/// ENOSYS, as on a kernel without them.
fn enosys_if(jump: u32, k: u32) -> [seccompiler::sock_filter; 3] {
    [
        insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        insn(libc::BPF_JMP | jump | libc::BPF_K, k, 0, 1),
        insn(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            0,
            0,
        ),
    ]
}

/// The guards before a filter's rules. seccompiler checks the audit architecture, which kills
/// i386 calls, but not the x32 bit: x32 calls carry AUDIT_ARCH_X86_64 with numbers no rule
/// names, so a profile whose default is allow would let the x32 twin of every denied call
/// through; they fail with ENOSYS, as on a kernel built without the x32 ABI. With `newest`,
/// calls numbered above it (any the profile's author could not have known) fail with ENOSYS
/// too, so that programs fall back to older calls (glibc's clone3 -> clone) instead of failing
/// with EPERM, as runc's stub before libseccomp's filter does.
fn guards(newest: Option<u32>) -> Vec<seccompiler::sock_filter> {
    let mut v = Vec::new();
    if cfg!(target_arch = "x86_64") {
        const X32_SYSCALL_BIT: u32 = 0x4000_0000;
        v.extend(enosys_if(libc::BPF_JGE, X32_SYSCALL_BIT));
    }
    if let Some(newest) = newest {
        v.extend(enosys_if(libc::BPF_JGT, newest));
    }
    v
}

/// Whether syscalls newer than the profile fail with ENOSYS rather than the default action:
/// not when the default lets calls through (allow, log, or a tracer that can emulate them).
fn newer_fail_with_enosys(default: &Act) -> bool {
    !matches!(
        default,
        Act::Plain(SeccompAction::Allow | SeccompAction::Log | SeccompAction::Trace(_))
    )
}

/// Makes a filter compiled with `Act::Notify` return SECCOMP_RET_USER_NOTIF where it returned
/// SECCOMP_RET_TRACE (its only non-allow action).
fn to_user_notif(filter: &mut BpfProgram) {
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    for insn in filter.iter_mut() {
        if insn.code == RET_K && insn.k & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_TRACE {
            insn.k = libc::SECCOMP_RET_USER_NOTIF;
        }
    }
}

/// Whether a syscall name exists on some architecture: a name from another architecture is
/// skipped (profiles list them all), a name from none is an error.
fn known_elsewhere(name: &str) -> bool {
    use syscalls::*;
    aarch64::Sysno::from_str(name).is_ok()
        || arm::Sysno::from_str(name).is_ok()
        || loongarch64::Sysno::from_str(name).is_ok()
        || mips::Sysno::from_str(name).is_ok()
        || mips64::Sysno::from_str(name).is_ok()
        || powerpc::Sysno::from_str(name).is_ok()
        || powerpc64::Sysno::from_str(name).is_ok()
        || riscv32::Sysno::from_str(name).is_ok()
        || riscv64::Sysno::from_str(name).is_ok()
        || s390x::Sysno::from_str(name).is_ok()
        || sparc::Sysno::from_str(name).is_ok()
        || sparc64::Sysno::from_str(name).is_ok()
        || x86::Sysno::from_str(name).is_ok()
        || x86_64::Sysno::from_str(name).is_ok()
}

/// Compiles `linux.seccomp` for this host's architecture.
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, SeccompError> {
    let (arch, arch_name) = HOST;
    if let Some(arches) = profile.architectures() {
        let names: Vec<String> = arches.iter().map(arch_name_of).collect();
        if !arches.is_empty() && !names.iter().any(|n| n == arch_name) {
            return Err(invalid(
                "architectures",
                format!("{names:?} does not include this host's {arch_name}"),
            ));
        }
    }
    let default = action(profile.default_action(), profile.default_errno_ret());
    let sendmsg = syscalls::Sysno::sendmsg.id() as i64;
    let write = syscalls::Sysno::write.id() as i64;

    // Rules grouped by the action they return; `all` collects every rule for the default filter.
    let mut by_action: Vec<(Act, Rules)> = Vec::new();
    let mut all = Rules::new();
    // The highest syscall number the profile names.
    let mut newest = 0;
    for (i, sc) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}]");
        let act = action(sc.action(), sc.errno_ret());
        let mut conditions = Vec::new();
        let mut indexes = Vec::new();
        for (j, a) in sc.args().iter().flatten().enumerate() {
            let afield = format!("{field}.args[{j}]");
            let op = match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => SeccompCmpOp::Ne,
                LinuxSeccompOperator::ScmpCmpLt => SeccompCmpOp::Lt,
                LinuxSeccompOperator::ScmpCmpLe => SeccompCmpOp::Le,
                LinuxSeccompOperator::ScmpCmpEq => SeccompCmpOp::Eq,
                LinuxSeccompOperator::ScmpCmpGe => SeccompCmpOp::Ge,
                LinuxSeccompOperator::ScmpCmpGt => SeccompCmpOp::Gt,
                LinuxSeccompOperator::ScmpCmpMaskedEq => SeccompCmpOp::MaskedEq(a.value()),
            };
            let value = match a.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => a.value_two().unwrap_or(0),
                _ => a.value(),
            };
            let index = u8::try_from(a.index())
                .ok()
                .filter(|i| *i < 6)
                .ok_or_else(|| invalid(&afield, format!("index {} is not 0-5", a.index())))?;
            indexes.push(index);
            conditions.push(
                SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
                    .map_err(|e| invalid(&afield, e.to_string()))?,
            );
        }
        // Conditions on one argument all hold only when they agree, so a profile that names
        // an argument twice means either value (libseccomp's old reading, which runc keeps):
        // each condition then becomes a rule of its own.
        let repeats = (1..indexes.len()).any(|i| indexes[..i].contains(&indexes[i]));
        let rules: Vec<SeccompRule> = if repeats {
            conditions.into_iter().map(|c| vec![c]).collect::<Vec<_>>()
        } else if conditions.is_empty() {
            Vec::new()
        } else {
            vec![conditions]
        }
        .into_iter()
        .map(|c| SeccompRule::new(c).map_err(|e| invalid(&field, e.to_string())))
        .collect::<Result<_, _>>()?;
        let group = match by_action.iter_mut().find(|(a, _)| *a == act) {
            Some((_, g)) => g,
            None => {
                by_action.push((act.clone(), BTreeMap::new()));
                &mut by_action.last_mut().expect("just pushed").1
            }
        };
        for name in sc.names() {
            let nr = match syscalls::Sysno::from_str(name) {
                Ok(nr) => nr.id() as i64,
                Err(_) if known_elsewhere(name) => continue,
                Err(_) => {
                    return Err(invalid(
                        format!("{field}.names"),
                        format!("unknown system call {name:?}"),
                    ))
                }
            };
            if act == Act::Notify && nr == sendmsg {
                return Err(invalid(
                    format!("{field}.names"),
                    "SCMP_ACT_NOTIFY on sendmsg would block hull handing the listener to the agent",
                ));
            }
            // runc refuses it too (its init reports through write); callers know its words.
            if act == Act::Notify && nr == write {
                return Err(invalid(
                    format!("{field}.names"),
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall",
                ));
            }
            add_rules(group, nr, &rules);
            add_rules(&mut all, nr, &rules);
            newest = newest.max(nr);
        }
    }

    if default == Act::Notify && !all.contains_key(&sendmsg) {
        return Err(invalid(
            "defaultAction",
            "SCMP_ACT_NOTIFY needs a rule for sendmsg: hull hands the listener to the agent with it",
        ));
    }

    let mut filters = Vec::new();
    let mut notify = None;
    let mut compile_one = |rules: Rules,
                           mismatch: &Act,
                           matched: &Act,
                           enosys_above: Option<u32>|
     -> Result<(), SeccompError> {
        let rules = rules
            .into_iter()
            .map(|(nr, r)| (nr, r.unwrap_or_default()))
            .collect();
        let mut filter: BpfProgram =
            SeccompFilter::new(rules, mismatch.compiled(), matched.compiled(), arch)
                .and_then(TryInto::try_into)
                .map_err(|e: seccompiler::BackendError| invalid("syscalls", e.to_string()))?;
        filter.splice(AFTER_ARCH_CHECK..AFTER_ARCH_CHECK, guards(enosys_above));
        if *mismatch == Act::Notify || *matched == Act::Notify {
            to_user_notif(&mut filter);
            notify = Some(filters.len());
        }
        filters.push(filter);
        Ok(())
    };
    if default != ALLOW {
        let enosys_above =
            (newer_fail_with_enosys(&default) && newest > 0).then_some(newest as u32);
        compile_one(all, &default, &ALLOW, enosys_above)?;
    }
    for (act, rules) in by_action {
        if act != ALLOW && act != default && !rules.is_empty() {
            compile_one(rules, &ALLOW, &act, None)?;
        }
    }

    let mut flags = 0;
    // As runc: without a flags list, SPEC_ALLOW, sparing the process the cost of the
    // speculative-store-bypass mitigation seccomp would otherwise force on it; an explicit
    // (even empty) list is taken as it is.
    if profile.flags().is_none() {
        flags |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    }
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            // Synchronising threads means nothing to a single-threaded init; runc leaves
            // it out too, and callers read the flags it reports.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 32,
        };
    }
    let agent = match (notify, profile.listener_path()) {
        (Some(_), Some(path)) if path.is_absolute() => Some(Agent {
            path: path.clone(),
            metadata: profile.listener_metadata().clone().unwrap_or_default(),
        }),
        (Some(_), Some(path)) => {
            return Err(invalid(
                "listenerPath",
                format!("{path:?} is not an absolute path"),
            ))
        }
        (Some(_), None) => {
            return Err(invalid(
                "listenerPath",
                "required when a rule uses SCMP_ACT_NOTIFY",
            ))
        }
        // Nothing will notify: no agent is needed, and runc ignores the path too.
        (None, _) => None,
    };
    let listener = if notify.is_some() {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        0
    };
    crate::logging::debug(&format!("seccomp filter flags: {}", flags | listener));
    Ok(Program {
        filters,
        flags,
        notify,
        agent,
    })
}

/// Rules per syscall number; None once an unconditional rule makes conditions irrelevant
/// (seccompiler reads an empty rule list as "always matches").
type Rules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

/// Adds a profile entry's rules for `nr`; no rules means the entry matches unconditionally.
fn add_rules(map: &mut Rules, nr: i64, rules: &[SeccompRule]) {
    let slot = map.entry(nr).or_insert_with(|| Some(Vec::new()));
    match slot.as_mut() {
        None => {}
        Some(_) if rules.is_empty() => *slot = None,
        Some(v) => v.extend_from_slice(rules),
    }
}

fn arch_name_of(a: &Arch) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{a:?}"))
}

impl Program {
    /// Installs the filters in the calling process; returns the user-notification listener
    /// when the profile has SCMP_ACT_NOTIFY rules. Without no_new_privs this needs
    /// CAP_SYS_ADMIN, which is why it runs before the capability drop in that case.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let mut listener = None;
        for (i, filter) in self.filters.iter().enumerate() {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            let notify = self.notify == Some(i);
            let flags = if notify {
                self.flags | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            } else {
                self.flags
            };
            // SAFETY: prog points at a live BPF program for the duration of the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    flags,
                    &prog as *const libc::sock_fprog,
                )
            };
            let r = Errno::result(r).map_err(SeccompError::Install)?;
            if notify {
                // SAFETY: with NEW_LISTENER, seccomp(2) returns a new fd that nothing else owns.
                listener = Some(unsafe { OwnedFd::from_raw_fd(r as i32) });
            }
        }
        Ok(listener)
    }

    /// The agent to hand the listener to, when the profile notifies.
    pub fn agent(&self) -> Option<&Agent> {
        self.agent.as_ref()
    }
}

impl Agent {
    /// Hands the listener of process `pid` to the agent, as runc does: a new connection to
    /// listenerPath and one message, runtime-spec's container process state (`state` is the
    /// container's state JSON) with the listener attached.
    pub fn send(&self, listener: OwnedFd, pid: i32, state: &[u8]) -> Result<(), SeccompError> {
        let fail = |message: String| SeccompError::Agent {
            path: self.path.clone(),
            message,
        };
        let state: serde_json::Value =
            serde_json::from_slice(state).map_err(|e| fail(e.to_string()))?;
        let message = serde_json::json!({
            "ociVersion": state["ociVersion"],
            "fds": ["seccompFd"],
            "pid": pid,
            "metadata": self.metadata,
            "state": state,
        });
        let socket = UnixStream::connect(&self.path).map_err(|e| {
            fail(format!(
                "failed to connect with seccomp agent specified in the seccomp profile: {e}"
            ))
        })?;
        crate::fdpass::send(
            socket.as_fd(),
            message.to_string().as_bytes(),
            listener.as_fd(),
        )
        .map_err(|e| fail(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    /// Installs `program` in a forked child (with no_new_privs, so unprivileged) and returns
    /// what each raw syscall returned there: the value, or minus the errno.
    fn results_under(program: &Program, calls: &[(libc::c_long, [libc::c_long; 3])]) -> Vec<i64> {
        let (read, write) = nix::unistd::pipe().unwrap();
        // SAFETY: the child makes only raw syscalls and _exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if program.install().is_err() {
                    libc::_exit(1);
                }
                for (nr, a) in calls {
                    let r = libc::syscall(*nr, a[0], a[1], a[2]) as i64;
                    let r = if r < 0 {
                        -(*libc::__errno_location() as i64)
                    } else {
                        r
                    };
                    libc::write(
                        std::os::fd::AsRawFd::as_raw_fd(&write),
                        &r as *const i64 as *const _,
                        8,
                    );
                }
                libc::_exit(0);
            },
            nix::unistd::ForkResult::Parent { child } => {
                drop(write);
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::fs::File::from(read), &mut bytes).unwrap();
                bytes
                    .chunks(8)
                    .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
                    .collect()
            }
        }
    }

    #[test]
    fn newer_syscalls_fail_with_enosys_and_repeated_arguments_mean_either() {
        let p = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["write", "exit", "exit_group", "getpid", "openat2"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getpgid"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 5000001, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 5000002, "op": "SCMP_CMP_EQ"}]}]}"#,
        ))
        .unwrap();
        let got = results_under(
            &p,
            &[
                (libc::SYS_getpgid, [5000001, 0, 0]),
                (libc::SYS_getpgid, [5000002, 0, 0]),
                (libc::SYS_getpgid, [0, 0, 0]),
                (libc::SYS_getppid, [0, 0, 0]),
                (1000, [0, 0, 0]),
            ],
        );
        // getpgid of a pid above any pid_max: the call was let through.
        assert_eq!(got[0], -(libc::ESRCH as i64));
        assert_eq!(got[1], -(libc::ESRCH as i64));
        assert_eq!(got[2], -(libc::EPERM as i64));
        assert_eq!(
            got[3],
            -(libc::EPERM as i64),
            "older than the profile: the default"
        );
        assert_eq!(got[4], -(libc::ENOSYS as i64), "newer than the profile");
    }

    #[test]
    fn an_allowing_default_lets_newer_syscalls_through_and_tsync_is_not_reported() {
        let p = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}"#,
        ))
        .unwrap();
        assert_eq!(p.flags, libc::SECCOMP_FILTER_FLAG_LOG);
        let got = results_under(&p, &[(libc::SYS_getppid, [0; 3]), (1000, [0; 3])]);
        assert_eq!(got, [-(libc::EPERM as i64), -(libc::ENOSYS as i64)]);
    }

    #[test]
    fn allowlist_compiles_to_one_filter() {
        let p = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
        ))
        .unwrap();
        assert_eq!(p.filters.len(), 1);
    }

    #[test]
    fn each_extra_action_gets_a_filter() {
        let p = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                {"names":["chdir"],"action":"SCMP_ACT_ERRNO","errnoRet":2},
                {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        ))
        .unwrap();
        assert_eq!(p.filters.len(), 2);
    }

    #[test]
    fn unknown_names_and_bad_args_are_errors() {
        let e = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["nosuchcall"],"action":"SCMP_ACT_ERRNO"}]}"#,
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("syscalls[0].names") && e.contains("nosuchcall"),
            "{e}"
        );
        let e = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("syscalls[0].args[0]"), "{e}");
    }

    #[test]
    fn notify_filter_returns_user_notif_and_needs_an_agent() {
        let p = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","listenerMetadata":"m",
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"},
                            {"names":["chdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        ))
        .unwrap();
        let n = p.notify.expect("a notifying filter");
        let rets = |f: &BpfProgram| -> Vec<u32> {
            f.iter()
                .filter(|i| i.code == (libc::BPF_RET | libc::BPF_K) as u16)
                .map(|i| i.k & libc::SECCOMP_RET_ACTION_FULL)
                .collect()
        };
        assert!(rets(&p.filters[n]).contains(&libc::SECCOMP_RET_USER_NOTIF));
        assert!(!rets(&p.filters[n]).contains(&libc::SECCOMP_RET_TRACE));
        for (i, f) in p.filters.iter().enumerate().filter(|(i, _)| *i != n) {
            assert!(
                !rets(f).contains(&libc::SECCOMP_RET_USER_NOTIF),
                "filter {i}"
            );
        }
        assert_eq!(p.agent().unwrap().metadata, "m");
        for (json, field) in [
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "listenerPath",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "SCMP_ACT_NOTIFY cannot be used for the write syscall",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"rel","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "listenerPath",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","syscalls":[{"names":["sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "syscalls[0].names",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/a","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
                "defaultAction",
            ),
        ] {
            let e = compile(&profile(json)).err().unwrap().to_string();
            assert!(e.contains(field), "{json}: {e}");
        }
        // A listenerPath with nothing to notify is ignored, as runc ignores it.
        let p = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        ))
        .unwrap();
        assert!(p.agent().is_none());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_calls_fail_with_enosys_after_the_arch_check() {
        let p = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        ))
        .unwrap();
        let f = &p.filters[0];
        assert_eq!(f[0].k, 4, "loads seccomp_data.arch");
        assert_eq!(f[2].k, libc::SECCOMP_RET_KILL_PROCESS);
        assert_eq!(
            (f[3].code, f[3].k),
            ((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 0)
        );
        assert_eq!((f[4].k, f[4].jt, f[4].jf), (0x4000_0000, 0, 1));
        assert_eq!(f[5].k, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    }

    #[test]
    fn other_architectures_names_are_skipped() {
        compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["arm_fadvise64_64","read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        ))
        .unwrap();
    }
}
