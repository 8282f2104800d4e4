//! Parsing of docker's option values: sizes (`--memory 512m`), CPU counts, restart
//! policies, `-v` and `--mount` specifications and env files, with docker's messages.

use super::{Mount, RestartPolicy};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("invalid argument {value:?} for \"{flag}\" flag: {reason}")]
    Flag {
        value: String,
        flag: &'static str,
        reason: String,
    },
    #[error("invalid restart policy format: {0}")]
    Restart(String),
    #[error("{0}")]
    VolumesFrom(String),
    #[error("invalid volume specification: '{0}'")]
    Volume(String),
    /// A volume name docker's local driver refuses, in the driver's words.
    #[error("{0}")]
    VolumeName(String),
    #[error("invalid argument {value:?} for \"--mount\" flag: {reason}")]
    Mount { value: String, reason: String },
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {0}")]
    BindSource(String),
    #[error("Invalid signal: {0}")]
    Signal(String),
    #[error("invalid {flag}: unknown capability: \"{cap}\"")]
    Capability { flag: &'static str, cap: String },
    #[error("invalid mount path: '{0}' mount path must be absolute")]
    RelativeMountPath(String),
    #[error("invalid environment variable: {0}")]
    Env(String),
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    Workdir(String),
    #[error("Invalid value {0} for cpuset mems")]
    CpusetMems(String),
    #[error("Invalid value {0} for cpuset cpus")]
    Cpuset(String),
}

/// docker's `units.RAMInBytes`: a number with an optional b/k/m/g/t/p unit (binary).
pub fn ram_in_bytes(s: &str, flag: &'static str) -> Result<i64, ParseError> {
    let err = || ParseError::Flag {
        value: s.to_string(),
        flag,
        reason: format!("invalid size: '{s}'"),
    };
    let lower = s.trim().to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let n: f64 = num.parse().map_err(|_| err())?;
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(err()),
    };
    Ok((n * mult) as i64)
}

/// docker's signal names: `KILL`, `SIGKILL`, `sigkill` or a number; returns the number.
pub fn signal(s: &str) -> Result<i32, ParseError> {
    let bad = || ParseError::Signal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n).ok_or_else(bad);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = |base: i32, off: &str| off.parse::<i32>().ok().map(|o| base + o);
    let realtime = match name {
        "RTMIN" => Some(libc::SIGRTMIN()),
        "RTMAX" => Some(libc::SIGRTMAX()),
        _ => name
            .strip_prefix("RTMIN+")
            .and_then(|o| rt(libc::SIGRTMIN(), o))
            .or_else(|| {
                name.strip_prefix("RTMAX-")
                    .and_then(|o| rt(libc::SIGRTMAX(), &format!("-{o}")))
            }),
    };
    if let Some(n) = realtime.filter(|n| (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(n)) {
        return Ok(n);
    }
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| bad())
}

/// `--cap-add`/`--cap-drop` entries: a known capability name (any case, `CAP_` optional)
/// or `ALL`.
pub fn capabilities(list: &[String], flag: &'static str) -> Result<(), ParseError> {
    for c in list {
        let cap = crate::bundle::normalize_cap(c);
        let known =
            cap == "ALL" || crate::bundle::defaults::ALL_CAPABILITIES.contains(&cap.as_str());
        if !known {
            return Err(ParseError::Capability { flag, cap });
        }
    }
    Ok(())
}

/// `-e` and env-file entries: a name is required.
pub fn env_var(e: &str) -> Result<(), ParseError> {
    if e.split('=').next().unwrap_or_default().is_empty() {
        return Err(ParseError::Env(e.to_string()));
    }
    Ok(())
}

/// `-w`: absolute, as docker requires.
pub fn workdir(w: &str) -> Result<(), ParseError> {
    if w.starts_with('/') {
        Ok(())
    } else {
        Err(ParseError::Workdir(w.to_string()))
    }
}

/// `--cpuset-cpus 0-2,4`: the CPUs listed must exist on this host.
pub fn cpuset(list: &str, online: usize) -> Result<(), ParseError> {
    id_list(list, online, "--cpuset-cpus", "CPUs")
        .map_err(|e| e.unwrap_or_else(|| ParseError::Cpuset(list.to_string())))
}

/// `--cpuset-mems 0`: the memory nodes listed must exist on this host.
pub fn cpuset_mems(list: &str, nodes: usize) -> Result<(), ParseError> {
    id_list(list, nodes, "--cpuset-mems", "memory nodes")
        .map_err(|e| e.unwrap_or_else(|| ParseError::CpusetMems(list.to_string())))
}

/// A kernel id list (`0-2,4`) whose ids are below `available`; Err(None) when it does
/// not parse.
fn id_list(
    list: &str,
    available: usize,
    flag: &'static str,
    noun: &str,
) -> Result<(), Option<ParseError>> {
    let mut highest = 0;
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (
            a.trim().parse().map_err(|_| None)?,
            b.trim().parse().map_err(|_| None)?,
        );
        if a > b {
            return Err(None);
        }
        highest = highest.max(b);
    }
    if highest >= available {
        return Err(Some(ParseError::Flag {
            value: list.to_string(),
            flag,
            reason: format!(
                "Requested {noun} are not available - requested {list}, available: 0-{}",
                available.saturating_sub(1)
            ),
        }));
    }
    Ok(())
}

/// `--cpus 1.5` as nano CPUs.
pub fn nano_cpus(s: &str) -> Result<i64, ParseError> {
    let v: f64 = s.parse().map_err(|_| ParseError::Flag {
        value: s.to_string(),
        flag: "--cpus",
        reason: "failed to parse as a rational number".into(),
    })?;
    Ok((v * 1e9) as i64)
}

/// The API's form of a restart policy: a name and a maximum retry count (0: none).
pub fn restart_policy_parts(name: &str, count: i64) -> Result<RestartPolicy, ParseError> {
    match count {
        n if n > 0 => restart_policy(&format!("{name}:{n}")),
        _ => restart_policy(name),
    }
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<RestartPolicy, ParseError> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let maximum_retry_count = match (name, count) {
        ("no" | "always" | "unless-stopped", None) | ("on-failure", None) => 0,
        ("on-failure", Some(c)) => c.parse().map_err(|_| ParseError::Restart(s.to_string()))?,
        ("no" | "always" | "unless-stopped", Some(_)) => {
            return Err(ParseError::Restart(format!(
                "maximum retry count cannot be used with restart policy '{name}'"
            )))
        }
        _ => return Err(ParseError::Restart(s.to_string())),
    };
    Ok(RestartPolicy {
        name: name.to_string(),
        maximum_retry_count,
    })
}

/// `-v /host:/ctr[:MODE]` (a bind; a missing host directory is created, as docker does),
/// `--volumes-from CONTAINER[:MODE]`: the container and whether its mounts may stay writable.
/// MODE is `ro` or `rw` (with docker's SELinux `z`/`Z`, which change nothing here); docker
/// refuses propagation and copy modes here, and so does wharf.
pub fn volumes_from(spec: &str) -> Result<(&str, bool), ParseError> {
    if spec.is_empty() {
        return Err(ParseError::VolumesFrom(
            "volumes-from specification cannot be an empty string".into(),
        ));
    }
    let (name, mode) = spec.split_once(':').unwrap_or((spec, "rw"));
    let mut rw = true;
    for m in mode.split(',') {
        match m {
            "ro" => rw = false,
            "rw" | "z" | "Z" => {}
            _ => return Err(ParseError::VolumesFrom(format!("invalid mode: {mode}"))),
        }
    }
    Ok((name, rw))
}

/// `-v NAME:/ctr[:MODE]` (a named volume, made on first use) or `-v /ctr` (an anonymous
/// volume). MODE is a comma list of `ro`/`rw`, `nocopy` (volumes only), docker's SELinux
/// `z`/`Z` (accepted and without effect here, as on any host without SELinux) and a
/// propagation (binds only).
pub fn volume(spec: &str) -> Result<Mount, ParseError> {
    let bad = || ParseError::Volume(spec.to_string());
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad()),
    };
    if parts.len() > 1 && src.is_empty() {
        return Err(ParseError::Volume(format!(
            "{spec}: empty section between colons"
        )));
    }
    if !dst.starts_with('/') || dst == "/" {
        return Err(bad());
    }
    let bind = src.starts_with('/');
    let mut rw = None;
    let mut nocopy = false;
    let mut propagation = None;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" | "rw" if rw.is_none() => rw = Some(m == "rw"),
            "nocopy" if !bind && !nocopy => nocopy = true,
            "z" | "Z" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                if bind && propagation.is_none() =>
            {
                propagation = Some(m)
            }
            _ => return Err(ParseError::Volume(format!("{spec}: invalid mode: {mode}"))),
        }
    }
    if bind {
        return Ok(Mount {
            kind: "bind".into(),
            source: src.to_string(),
            destination: dst.to_string(),
            mode: mode.to_string(),
            rw: rw.unwrap_or(true),
            propagation: propagation.unwrap_or("rprivate").into(),
            ..Default::default()
        });
    }
    if !src.is_empty() {
        crate::volume::validate(src).map_err(|e| ParseError::VolumeName(e.to_string()))?;
    }
    Ok(Mount {
        kind: "volume".into(),
        name: src.to_string(),
        destination: dst.to_string(),
        mode: mode.to_string(),
        rw: rw.unwrap_or(true),
        nocopy,
        ..Default::default()
    })
}

/// `--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,bind-propagation=..]
/// [,volume-nocopy][,tmpfs-size=..][,tmpfs-mode=..]`; a volume without a source is anonymous.
pub fn mount(spec: &str) -> Result<Mount, ParseError> {
    let bad = |reason: &str| ParseError::Mount {
        value: spec.to_string(),
        reason: reason.to_string(),
    };
    let mut m = Mount {
        kind: "volume".into(),
        rw: true,
        ..Default::default()
    };
    let mut tmpfs_opts = Vec::new();
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => m.kind = v.to_string(),
            "source" | "src" => m.source = v.to_string(),
            "target" | "destination" | "dst" => m.destination = v.to_string(),
            "readonly" | "ro" => m.rw = !matches!(v, "" | "1" | "true"),
            "tmpfs-size" => tmpfs_opts.push(format!(
                "size={}",
                ram_in_bytes(v, "--mount").map_err(|_| bad("invalid tmpfs-size"))?
            )),
            "tmpfs-mode" => tmpfs_opts.push(format!("mode={v}")),
            "bind-propagation" => {
                if !matches!(
                    v,
                    "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                ) {
                    return Err(bad(&format!("invalid propagation mode: {v}")));
                }
                m.propagation = v.to_string()
            }
            "volume-nocopy" => m.nocopy = matches!(v, "" | "1" | "true"),
            "volume-driver" if v == "local" => {}
            _ => return Err(bad(&format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if m.destination.is_empty() {
        return Err(bad("target is required"));
    }
    if !m.destination.starts_with('/') {
        return Err(ParseError::RelativeMountPath(m.destination));
    }
    match m.kind.as_str() {
        "bind" => {
            if m.source.is_empty() {
                return Err(bad("source is required when specifying bind mount"));
            }
            if !std::path::Path::new(&m.source).exists() {
                return Err(ParseError::BindSource(m.source));
            }
            if m.propagation.is_empty() {
                m.propagation = "rprivate".into();
            }
        }
        "volume" => {
            if !m.source.is_empty() {
                crate::volume::validate(&m.source).map_err(|e| bad(&e.to_string()))?;
            }
            m.name = std::mem::take(&mut m.source);
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(bad("source is not supported for tmpfs mounts"));
            }
            if !m.rw {
                tmpfs_opts.push("ro".into());
            }
            m.mode = tmpfs_opts.join(",");
        }
        other => return Err(bad(&format!("mount type {other:?} is not supported"))),
    }
    Ok(m)
}

/// `--tmpfs /path[:options]`.
pub fn tmpfs(spec: &str) -> Result<Mount, ParseError> {
    let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !dst.starts_with('/') {
        return Err(ParseError::RelativeMountPath(dst.to_string()));
    }
    Ok(Mount {
        kind: "tmpfs".into(),
        destination: dst.to_string(),
        mode: opts.to_string(),
        rw: !opts.split(',').any(|o| o == "ro"),
        ..Default::default()
    })
}

/// The lines of an env file: `KEY=VALUE`, or a bare `KEY` taken from our environment;
/// blank lines and `#` comments are skipped.
pub fn env_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(env_entry)
        .collect()
}

/// docker's ReplaceOrAppendEnvValues: `e` replaces the entry of the same name in place, or
/// is appended.
pub fn set_env(env: &mut Vec<String>, e: &str) {
    let key = |v: &str| v.split_once('=').map_or(v, |(k, _)| k).to_string();
    match env.iter_mut().find(|x| key(x) == key(e)) {
        Some(x) => *x = e.to_string(),
        None => env.push(e.to_string()),
    }
}

/// `-e KEY=VALUE` as is; `-e KEY` takes KEY from wharf's environment, or is dropped.
pub fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_policies_and_mounts_parse_like_docker() {
        assert_eq!(ram_in_bytes("512m", "--memory").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("1g", "--memory").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("100", "--memory").unwrap(), 100);
        assert_eq!(ram_in_bytes("6MB", "--memory").unwrap(), 6 << 20);
        assert_eq!(
            ram_in_bytes("12qb", "-m, --memory")
                .unwrap_err()
                .to_string(),
            "invalid argument \"12qb\" for \"-m, --memory\" flag: invalid size: '12qb'"
        );
        assert_eq!(nano_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(
            restart_policy("on-failure:3").unwrap().maximum_retry_count,
            3
        );
        assert_eq!(restart_policy("always").unwrap().name, "always");
        assert!(restart_policy("sometimes").is_err());
        assert!(restart_policy("always:2").is_err());
        let v = volume("/a:/b:ro").unwrap();
        assert!(!v.rw);
        let n = volume("named:/b:ro,nocopy").unwrap();
        assert_eq!(
            (n.kind.as_str(), n.name.as_str(), n.rw, n.nocopy),
            ("volume", "named", false, true)
        );
        let a = volume("/anon").unwrap();
        assert_eq!(
            (a.kind.as_str(), a.name.as_str(), a.destination.as_str()),
            ("volume", "", "/anon")
        );
        assert!(volume("/a:/b:nocopy").is_err());
        assert!(volume("x:/b").is_err());
        assert!(volume(":/b").is_err());
        assert!(volume("/foo:rw").is_err());
        assert!(volume("named:/b:ro,rw").is_err());
        let m = mount("type=volume,target=/d,volume-nocopy").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.name.as_str(), m.nocopy),
            ("volume", "", true)
        );
        assert_eq!(mount("type=volume,src=v1,dst=/d,ro").unwrap().name, "v1");
        assert!(matches!(
            mount("type=bind,source=/nonexistent-wharf,target=/x"),
            Err(ParseError::BindSource(_))
        ));
        assert_eq!(volumes_from("data").unwrap(), ("data", true));
        assert_eq!(volumes_from("data:ro").unwrap(), ("data", false));
        assert_eq!(volumes_from("data:rw,z").unwrap(), ("data", true));
        assert_eq!(
            volumes_from("data:rshared").unwrap_err().to_string(),
            "invalid mode: rshared"
        );
        assert!(volumes_from("data:nocopy").is_err());
        assert!(volumes_from("").is_err());
        let t = mount("type=tmpfs,target=/t,tmpfs-size=1m").unwrap();
        assert_eq!(t.mode, "size=1048576");
        assert_eq!(env_file("# c\nA=1\n\nB=2 3\n"), vec!["A=1", "B=2 3"]);
        let ro = mount("type=tmpfs,target=/t,readonly").unwrap();
        assert_eq!((ro.rw, ro.mode.as_str()), (false, "ro"));
        assert!(tmpfs("rel").is_err());
        assert!(!tmpfs("/t:ro,size=1m").unwrap().rw);
    }

    #[test]
    fn signals_capabilities_and_values_are_checked_like_docker() {
        assert_eq!(signal("KILL").unwrap(), 9);
        assert_eq!(signal("sigterm").unwrap(), 15);
        assert_eq!(signal("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert_eq!(signal("10").unwrap(), 10);
        assert_eq!(
            signal("FOO").unwrap_err().to_string(),
            "Invalid signal: FOO"
        );
        assert!(signal("0").is_err());
        assert!(capabilities(&["net_admin".into(), "ALL".into()], "CapAdd").is_ok());
        assert_eq!(
            capabilities(&["BOGUS".into()], "CapAdd")
                .unwrap_err()
                .to_string(),
            "invalid CapAdd: unknown capability: \"CAP_BOGUS\""
        );
        assert!(env_var("=x").is_err() && env_var("A=").is_ok());
        let mut env = vec!["A=1".to_string(), "B=2".to_string()];
        set_env(&mut env, "A=3");
        set_env(&mut env, "C=4");
        assert_eq!(env, ["A=3", "B=2", "C=4"]);
        assert!(workdir("rel").is_err() && workdir("/abs").is_ok());
        assert!(cpuset("0-1", 2).is_ok());
        assert!(cpuset("99", 2).is_err() && cpuset("abc", 2).is_err() && cpuset("3-1", 8).is_err());
    }
}
