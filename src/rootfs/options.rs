//! Mount options of runtime-spec: which become mount(2) flags, which propagation changes, which
//! recursive attributes (mount_setattr), and which pass through to the filesystem as data.
//! Pure, so it is unit-tested and fuzzed without privileges.

use nix::mount::MsFlags;

/// nix 0.29 lacks MS_NOSYMFOLLOW (Linux 5.10).
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;
pub const ATTR_ATIME_MASK: u64 = 0x70;
pub const ATTR_RELATIME: u64 = 0x0;
pub const ATTR_NOATIME: u64 = 0x10;
pub const ATTR_STRICTATIME: u64 = 0x20;
pub const ATTR_NODIRATIME: u64 = 0x80;
pub const ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// Attribute changes for mount_setattr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    pub set: u64,
    pub clear: u64,
}

impl Attrs {
    fn apply(&mut self, set: u64, clear: u64) {
        self.set = (self.set & !clear) | set;
        self.clear = (self.clear & !set) | clear;
    }

    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for mount(2) (MS_BIND, MS_REC and MS_REMOUNT included).
    pub flags: MsFlags,
    /// Flags explicitly turned off (`rw`, `suid`, ...), needed when a bind mount is adjusted.
    pub cleared: MsFlags,
    /// Propagation change applied after the mount (MS_SHARED etc., with MS_REC for r*).
    pub propagation: MsFlags,
    /// `rro`, `rnosuid`, ...: applied to the whole mount tree.
    pub recursive: Attrs,
    /// Options the kernel flags do not cover, handed to the filesystem (`size=`, `mode=`, ...).
    pub data: Vec<String>,
    /// `idmap` (Some(false)) or `ridmap` (Some(true), the whole tree): an idmapped bind mount.
    pub idmap: Option<bool>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("mount option {0:?} is not supported by hull")]
pub struct UnsupportedOption(pub String);

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: MsFlags::empty(),
            recursive: Attrs::default(),
            data: Vec::new(),
            idmap: None,
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// The comma-joined data string for mount(2), or None when empty.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// The per-mount flags of a bind mount as mount_setattr attributes: set and explicitly
    /// cleared, so that `rw` on a bind of a read-only source really clears it.
    pub fn bind_attrs(&self) -> Attrs {
        let mut a = Attrs::default();
        for (flag, attr) in [
            (MsFlags::MS_RDONLY, ATTR_RDONLY),
            (MsFlags::MS_NOSUID, ATTR_NOSUID),
            (MsFlags::MS_NODEV, ATTR_NODEV),
            (MsFlags::MS_NOEXEC, ATTR_NOEXEC),
            (MsFlags::MS_NODIRATIME, ATTR_NODIRATIME),
            (MS_NOSYMFOLLOW, ATTR_NOSYMFOLLOW),
        ] {
            if self.flags.contains(flag) {
                a.apply(attr, 0);
            } else if self.cleared.contains(flag) {
                a.apply(0, attr);
            }
        }
        let atime = [
            (MsFlags::MS_NOATIME, ATTR_NOATIME),
            (MsFlags::MS_STRICTATIME, ATTR_STRICTATIME),
            (MsFlags::MS_RELATIME, ATTR_RELATIME),
        ]
        .into_iter()
        .find(|(f, _)| self.flags.contains(*f));
        if let Some((_, attr)) = atime {
            a.set |= attr;
            a.clear |= ATTR_ATIME_MASK;
        }
        a
    }
}

/// Parses a mount's options in order; a later option overrides an earlier one.
pub fn parse(options: &[String]) -> Result<MountOptions, UnsupportedOption> {
    let mut o = MountOptions::default();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "nosymfollow" => (MS_NOSYMFOLLOW, MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MS_NOSYMFOLLOW),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "acl" => (MsFlags::MS_POSIXACL, MsFlags::empty()),
            "noacl" => (MsFlags::empty(), MsFlags::MS_POSIXACL),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            other => {
                if let Some(p) = propagation(other) {
                    o.propagation = p;
                    continue;
                }
                if let Some((set, clear)) = recursive_attr(other) {
                    o.recursive.apply(set, clear);
                    continue;
                }
                if matches!(other, "idmap" | "ridmap") {
                    o.idmap = Some(other == "ridmap");
                    continue;
                }
                // runc's tmpcopyup and crun's idmap=uids=...;gids=... forms.
                if other == "tmpcopyup" || other.starts_with("idmap=") {
                    return Err(UnsupportedOption(other.into()));
                }
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags = (o.flags - clear) | set;
        o.cleared = (o.cleared - set) | clear;
    }
    Ok(o)
}

fn propagation(opt: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

fn recursive_attr(opt: &str) -> Option<(u64, u64)> {
    Some(match opt {
        "rro" => (ATTR_RDONLY, 0),
        "rrw" => (0, ATTR_RDONLY),
        "rnosuid" => (ATTR_NOSUID, 0),
        "rsuid" => (0, ATTR_NOSUID),
        "rnodev" => (ATTR_NODEV, 0),
        "rdev" => (0, ATTR_NODEV),
        "rnoexec" => (ATTR_NOEXEC, 0),
        "rexec" => (0, ATTR_NOEXEC),
        "rnodiratime" => (ATTR_NODIRATIME, 0),
        "rdiratime" => (0, ATTR_NODIRATIME),
        "rnosymfollow" => (ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, ATTR_NOSYMFOLLOW),
        "rrelatime" => (ATTR_RELATIME, ATTR_ATIME_MASK),
        "rnoatime" => (ATTR_NOATIME, ATTR_ATIME_MASK),
        "rstrictatime" => (ATTR_STRICTATIME, ATTR_ATIME_MASK),
        // The kernel's default access-time mode is relatime: undoing any other mode means it.
        "ratime" | "rnorelatime" | "rnostrictatime" => (ATTR_RELATIME, ATTR_ATIME_MASK),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = p(&["nosuid", "ro", "mode=755", "size=65536k", "rshared"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_RDONLY);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, MsFlags::MS_SHARED | MsFlags::MS_REC);
    }

    #[test]
    fn later_options_win() {
        let o = p(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
        assert_eq!(
            o.bind_attrs(),
            Attrs {
                set: 0,
                clear: ATTR_RDONLY
            }
        );
    }

    #[test]
    fn rbind_and_recursive_attrs() {
        let o = p(&["rbind", "rro", "rnosuid"]);
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC));
        assert_eq!(o.recursive.set, ATTR_RDONLY | ATTR_NOSUID);
        let o = p(&["rnoatime"]);
        assert_eq!(
            o.recursive,
            Attrs {
                set: ATTR_NOATIME,
                clear: ATTR_ATIME_MASK
            }
        );
    }

    #[test]
    fn bind_attrs_carry_atime_mask() {
        let a = p(&["bind", "noatime", "nodev"]).bind_attrs();
        assert_eq!(a.set, ATTR_NOATIME | ATTR_NODEV);
        assert_eq!(a.clear, ATTR_ATIME_MASK);
    }

    #[test]
    fn idmap_options_and_the_forms_hull_lacks() {
        assert_eq!(
            parse(&["bind".into(), "idmap".into()]).unwrap().idmap,
            Some(false)
        );
        assert_eq!(parse(&["ridmap".into()]).unwrap().idmap, Some(true));
        assert!(parse(&["idmap=uids=0-1-1".to_string()]).is_err());
    }
}
