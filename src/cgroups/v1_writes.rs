//! The cgroup v1 limits hull writes itself instead of through libcgroups: the device rules, the
//! pids limit and the CPU weight that runc's, podman's and containerd's configs carry, and the
//! CFS and RT period pairs, whose order libcgroups does not get right. A container asking for
//! nothing else never builds libcgroups' v1 manager, which finds the hierarchies hull already
//! knows by reading mountinfo and /proc/self/cgroup once per controller: 560 system calls and
//! half of the instructions of a `run` of `runc spec`'s bundle.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{CgroupError, Hierarchy};

/// Device rules every container gets after its own, as runc appends them: the default nodes,
/// mknod of anything, and the terminals and tun that engines expect to work.
fn default_rules() -> impl Iterator<Item = String> {
    let nodes = crate::rootfs::DEFAULT_DEVICE_NODES
        .iter()
        .map(|(_, major, minor)| format!("c {major}:{minor} rwm"));
    let others = [
        "c *:* m",
        "b *:* m",
        // /dev/console, /dev/pts/*, /dev/ptmx, /dev/net/tun
        "c 5:1 rwm",
        "c 136:* rwm",
        "c 5:2 rwm",
        "c 10:200 rwm",
    ];
    nodes.chain(others.into_iter().map(str::to_string))
}

/// Writes what this module owns of `resources` into the cgroup at `rel` in each hierarchy, and
/// returns the rest, for libcgroups, or None when nothing is left that it would write.
pub(super) fn write<'a>(
    hierarchies: &[Hierarchy],
    rel: &Path,
    resources: Cow<'a, LinuxResources>,
) -> Result<Option<Cow<'a, LinuxResources>>, CgroupError> {
    let dir_of = |controller: &str| {
        hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.mount.join(rel))
    };
    let mut rest = resources;
    cpu_pairs(dir_of("cpu"), &mut rest)?;
    if let Some(dir) = dir_of("devices") {
        devices(&dir, rest.devices().as_deref().unwrap_or_default())?;
        rest.to_mut().set_devices(None);
    }
    if let (Some(pids), Some(dir)) = (*rest.pids(), dir_of("pids")) {
        let limit = match pids.limit() {
            n if n > 0 => n.to_string(),
            _ => "max".to_string(),
        };
        write_file(&dir, "pids.max", &limit, "pids")?;
        rest.to_mut().set_pids(None);
    }
    if let (Some(mut cpu), Some(dir)) = (rest.cpu().clone(), dir_of("cpu")) {
        if let Some(shares) = cpu.shares() {
            // 0 means "not given", as engines send it.
            if shares != 0 {
                write_file(&dir, "cpu.shares", &shares.to_string(), "cpu")?;
            }
            cpu.set_shares(None);
            rest.to_mut().set_cpu(Some(cpu));
        }
    }
    Ok((!nothing_left(&rest)).then_some(rest))
}

/// The rules in order, each to devices.allow or devices.deny, then the defaults. The kernel
/// takes each write to these files as one rule, so each file is opened once.
fn devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    use std::io::Write;
    let spec = rules.iter().map(|r| (r.allow(), r.to_string()));
    let (mut allow_file, mut deny_file) = (None, None);
    for (allow, rule) in spec.chain(default_rules().map(|r| (true, r))) {
        let (name, slot) = if allow {
            ("devices.allow", &mut allow_file)
        } else {
            ("devices.deny", &mut deny_file)
        };
        let path = dir.join(name);
        let file = match slot {
            Some(f) => f,
            None => slot.insert(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| failed(path.clone(), "devices", &rule, e))?,
            ),
        };
        file.write_all(rule.as_bytes())
            .map_err(|e| failed(path, "devices", &rule, e))?;
    }
    Ok(())
}

fn write_file(dir: &Path, file: &str, value: &str, section: &str) -> Result<(), CgroupError> {
    std::fs::write(dir.join(file), value).map_err(|e| failed(dir.join(file), section, value, e))
}

fn failed(path: PathBuf, section: &str, value: &str, e: std::io::Error) -> CgroupError {
    CgroupError::Op {
        path,
        what: "applying linux.resources",
        message: format!("{section}: writing {value:?}: {e}"),
    }
}

/// Whether libcgroups' v1 manager would write nothing for `rest`. Its device controller always
/// writes the defaults, which `write` has done.
fn nothing_left(rest: &LinuxResources) -> bool {
    let cpu_empty = rest.cpu().as_ref().is_none_or(|c| {
        c.shares().is_none()
            && c.quota().is_none()
            && c.burst().is_none()
            && c.period().is_none()
            && c.realtime_runtime().is_none()
            && c.realtime_period().is_none()
            && c.cpus().is_none()
            && c.mems().is_none()
            && c.idle().is_none()
    });
    cpu_empty
        && rest.devices().is_none()
        && rest.pids().is_none()
        && rest.memory().is_none()
        && rest.block_io().is_none()
        && rest.hugepage_limits().as_ref().is_none_or(Vec::is_empty)
        && rest.network().is_none()
        && rest.rdma().as_ref().is_none_or(|r| r.is_empty())
        && rest.unified().as_ref().is_none_or(|u| u.is_empty())
}

/// On v1, CFS period and quota, and RT period and runtime, depend on each other (and on the
/// parent's limits): the kernel refuses a new period that the old quota makes invalid.
/// When both of a pair are given, the period goes first and, if refused, after the other,
/// as runc writes them; the pair is then taken out of what libcgroups applies.
fn cpu_pairs(
    dir: Option<PathBuf>,
    resources: &mut Cow<'_, LinuxResources>,
) -> Result<(), CgroupError> {
    let Some(cpu) = resources.cpu().clone() else {
        return Ok(());
    };
    // 0 means "not given", as engines send it (docker's update fills every field).
    let given = |v: Option<i64>| v.filter(|v| *v != 0).map(|v| v.to_string());
    let pairs = [
        (
            given(cpu.period().map(|p| p as i64)),
            given(cpu.quota()),
            ("cpu.cfs_period_us", "cpu.cfs_quota_us"),
        ),
        (
            given(cpu.realtime_period().map(|p| p as i64)),
            given(cpu.realtime_runtime()),
            ("cpu.rt_period_us", "cpu.rt_runtime_us"),
        ),
    ];
    if !pairs.iter().any(|(a, b, _)| a.is_some() && b.is_some()) {
        return Ok(());
    }
    let Some(dir) = dir else { return Ok(()) };
    let write = |file: &str, value: &str| write_file(&dir, file, value, "cpu");
    let mut rest = cpu.clone();
    for (i, (period, other, (period_file, other_file))) in pairs.iter().enumerate() {
        let (Some(period), Some(other)) = (period, other) else {
            continue;
        };
        match std::fs::write(dir.join(period_file), period) {
            Ok(()) => write(other_file, other)?,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                write(other_file, other)?;
                write(period_file, period)?;
            }
            Err(e) => return Err(failed(dir.join(period_file), "cpu", period, e)),
        }
        if i == 0 {
            rest.set_period(None);
            rest.set_quota(None);
        } else {
            rest.set_realtime_period(None);
            rest.set_realtime_runtime(None);
        }
    }
    resources.to_mut().set_cpu(Some(rest));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder};

    fn fake_hierarchies(root: &Path) -> Vec<Hierarchy> {
        ["cpu", "devices", "pids", "memory"]
            .iter()
            .map(|c| {
                let mount = root.join(c);
                std::fs::create_dir_all(mount.join("c1")).unwrap();
                for f in ["devices.allow", "devices.deny"] {
                    std::fs::write(mount.join("c1").join(f), "").unwrap();
                }
                Hierarchy {
                    mount,
                    controllers: vec![c.to_string()],
                }
            })
            .collect()
    }

    #[test]
    fn devices_pids_and_shares_are_written_and_nothing_is_left() {
        let tmp = tempfile::tempdir().unwrap();
        let hs = fake_hierarchies(tmp.path());
        let mut r = LinuxResources::default();
        r.set_devices(Some(vec![
            oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
        ]));
        r.set_pids(Some(
            LinuxPidsBuilder::default().limit(2048).build().unwrap(),
        ));
        r.set_cpu(Some(
            LinuxCpuBuilder::default().shares(1024u64).build().unwrap(),
        ));
        let rest = write(&hs, Path::new("c1"), Cow::Borrowed(&r)).unwrap();
        assert!(rest.is_none());
        let read = |p: &str| std::fs::read_to_string(tmp.path().join(p)).unwrap();
        assert_eq!(read("pids/c1/pids.max"), "2048");
        assert_eq!(read("cpu/c1/cpu.shares"), "1024");
        // A plain file stands in for the kernel's: one write per rule, in order.
        assert_eq!(read("devices/c1/devices.deny"), "a *:* rwm");
        let allowed = read("devices/c1/devices.allow");
        assert!(allowed.starts_with("c 1:3 rwmc 1:5 rwm"), "{allowed}");
        assert!(allowed.ends_with("c 5:2 rwmc 10:200 rwm"), "{allowed}");
    }

    #[test]
    fn what_libcgroups_must_write_is_left_for_it() {
        let tmp = tempfile::tempdir().unwrap();
        let hs = fake_hierarchies(tmp.path());
        let mut r = LinuxResources::default();
        r.set_memory(Some(
            LinuxMemoryBuilder::default()
                .limit(1 << 30)
                .build()
                .unwrap(),
        ));
        r.set_cpu(Some(
            LinuxCpuBuilder::default()
                .shares(0u64)
                .cpus("0")
                .build()
                .unwrap(),
        ));
        let rest = write(&hs, Path::new("c1"), Cow::Borrowed(&r))
            .unwrap()
            .unwrap();
        assert!(rest.memory().is_some());
        let cpu = rest.cpu().clone().unwrap();
        assert_eq!((cpu.shares(), cpu.cpus().as_deref()), (None, Some("0")));
        assert!(!tmp.path().join("cpu/c1/cpu.shares").exists());
    }

    #[test]
    fn an_empty_cpu_section_needs_nothing() {
        let mut r = LinuxResources::default();
        r.set_cpu(Some(LinuxCpuBuilder::default().build().unwrap()));
        assert!(nothing_left(&r));
        r.set_block_io(Some(Default::default()));
        assert!(!nothing_left(&r));
    }

    #[test]
    fn default_rules_match_the_default_nodes() {
        let rules: Vec<String> = default_rules().collect();
        assert!(rules.contains(&"c 1:3 rwm".to_string()));
        assert!(rules.contains(&"c 5:0 rwm".to_string()));
        assert!(rules.contains(&"c 136:* rwm".to_string()));
    }
}
