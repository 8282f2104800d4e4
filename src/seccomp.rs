//! `linux.seccomp`: the OCI profile compiled to BPF with seccompiler in the parent (before any
//! process exists, so a bad profile leaves nothing behind), installed in the container with our
//! own seccomp(2) call, because seccompiler's installer always sets no_new_privs.
//!
//! seccompiler has one match action per filter, so a profile becomes a stack: one filter that
//! returns the default action for everything no rule matches, and one per other (action, errno)
//! whose rules return it. The kernel runs them all and keeps the strictest answer.

use std::collections::BTreeMap;
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
}

/// A compiled profile, ready to install.
pub struct Program {
    filters: Vec<BpfProgram>,
    flags: libc::c_ulong,
}

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

fn action(
    field: &str,
    a: LinuxSeccompAction,
    errno: Option<u32>,
) -> Result<SeccompAction, SeccompError> {
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno),
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(invalid(
                field,
                "SCMP_ACT_NOTIFY is not supported by hull (no seccomp agent support)",
            ))
        }
    })
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
    let default = action(
        "defaultAction",
        profile.default_action(),
        profile.default_errno_ret(),
    )?;

    // Rules grouped by the action they return; `all` collects every rule for the default filter.
    let mut by_action: Vec<(SeccompAction, Rules)> = Vec::new();
    let mut all = Rules::new();
    for (i, sc) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}]");
        let act = action(&format!("{field}.action"), sc.action(), sc.errno_ret())?;
        let mut conditions = Vec::new();
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
            conditions.push(
                SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
                    .map_err(|e| invalid(&afield, e.to_string()))?,
            );
        }
        let rule = if conditions.is_empty() {
            None
        } else {
            Some(SeccompRule::new(conditions).map_err(|e| invalid(&field, e.to_string()))?)
        };
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
            add_rule(group, nr, &rule);
            add_rule(&mut all, nr, &rule);
        }
    }

    let mut filters = Vec::new();
    let compile_one = |rules: Rules, mismatch, matched| -> Result<BpfProgram, SeccompError> {
        let rules = rules
            .into_iter()
            .map(|(nr, r)| (nr, r.unwrap_or_default()))
            .collect();
        SeccompFilter::new(rules, mismatch, matched, arch)
            .and_then(TryInto::try_into)
            .map_err(|e: seccompiler::BackendError| invalid("syscalls", e.to_string()))
    };
    if default != SeccompAction::Allow {
        filters.push(compile_one(all, default.clone(), SeccompAction::Allow)?);
    }
    for (act, rules) in by_action {
        if act != SeccompAction::Allow && act != default && !rules.is_empty() {
            filters.push(compile_one(rules, SeccompAction::Allow, act)?);
        }
    }

    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 32,
        };
    }
    Ok(Program { filters, flags })
}

/// Rules per syscall number; None once an unconditional rule makes conditions irrelevant
/// (seccompiler reads an empty rule list as "always matches").
type Rules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn add_rule(map: &mut Rules, nr: i64, rule: &Option<SeccompRule>) {
    let slot = map.entry(nr).or_insert_with(|| Some(Vec::new()));
    match (slot.as_mut(), rule) {
        (None, _) => {}
        (Some(_), None) => *slot = None,
        (Some(v), Some(r)) => v.push(r.clone()),
    }
}

fn arch_name_of(a: &Arch) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{a:?}"))
}

impl Program {
    /// Installs the filters in the calling process. Without no_new_privs this needs
    /// CAP_SYS_ADMIN, which is why it runs before the capability drop in that case.
    pub fn install(&self) -> Result<(), SeccompError> {
        for filter in &self.filters {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: prog points at a live BPF program for the duration of the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    self.flags,
                    &prog as *const libc::sock_fprog,
                )
            };
            Errno::result(r).map_err(SeccompError::Install)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
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
    fn other_architectures_names_are_skipped() {
        compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["arm_fadvise64_64","read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        ))
        .unwrap();
    }
}
