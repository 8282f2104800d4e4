//! Mount options of runtime-spec: which become mount(2) flags, which propagation changes, which
//! recursive attributes (mount_setattr), and which pass through to the filesystem as data.
//! Pure, so it is unit-tested and fuzzed without privileges.

use nix::mount::MsFlags;

/// nix 0.29 lacks MS_NOSYMFOLLOW (Linux 5.10).
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// The access-time modes, of which a mount has exactly one.
const ATIME_MODES: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);
const ATIME_FLAGS: MsFlags = ATIME_MODES.union(MsFlags::MS_NODIRATIME);
/// The per-mount flags the kernel locks on a mount inherited into another user namespace
/// (MNT_LOCK_*): such a mount may not lose them.
pub const LOCKABLE: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOSUID)
    .union(ATIME_FLAGS);

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
    /// `tmpcopyup`: a tmpfs starts with a copy of the directory it covers.
    pub tmpcopyup: bool,
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
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// The flags of the remount that gives a bind mount its options, or None when no option
    /// was given (the bind then keeps its source's flags). Set like `mount --bind -o`, but
    /// unconditionally: flags not asked for are cleared, save the access-time mode, which the
    /// kernel keeps when none is named (util-linux#2433 discusses mount(8)'s difference).
    pub fn bind_remount_flags(&self) -> Option<MsFlags> {
        let own = self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        (!own.is_empty() || !self.cleared.is_empty())
            .then(|| own | MsFlags::MS_BIND | MsFlags::MS_REMOUNT)
    }

    /// After the remount of `bind_remount_flags` failed over a source with `source_flags`
    /// (locked ones, in a user namespace): the flags of a second remount that keeps the
    /// source's lockable flags, or why the request cannot be met. Asking to clear a locked
    /// flag, or for an access-time setting other than the locked one, is an error rather
    /// than a mount that silently differs from the request.
    pub fn locked_retry(&self, remount: MsFlags, source_flags: MsFlags) -> Result<MsFlags, String> {
        let cannot_clear = source_flags & self.cleared & LOCKABLE;
        if !cannot_clear.is_empty() {
            return Err(format!("cannot clear locked flags {}", names(cannot_clear)));
        }
        let asked = self.flags & ATIME_FLAGS;
        if !asked.is_empty() && asked != source_flags & ATIME_FLAGS {
            return Err(format!(
                "cannot change locked atime flags {}",
                names(source_flags & ATIME_FLAGS)
            ));
        }
        Ok(remount | (source_flags & LOCKABLE))
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

/// A mount's flags as statfs(2) reports them. MS_STRICTATIME is not a stored flag: a mount with
/// no other access-time mode is strictatime.
pub fn from_statfs(f_flags: u64) -> MsFlags {
    let mut flags = MsFlags::empty();
    for (st, ms) in [
        (libc::ST_RDONLY, MsFlags::MS_RDONLY),
        (libc::ST_NOSUID, MsFlags::MS_NOSUID),
        (libc::ST_NODEV, MsFlags::MS_NODEV),
        (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
        (libc::ST_MANDLOCK, MsFlags::MS_MANDLOCK),
        (libc::ST_NOATIME, MsFlags::MS_NOATIME),
        (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (libc::ST_RELATIME, MsFlags::MS_RELATIME),
        (0x2000, MS_NOSYMFOLLOW),
    ] {
        if f_flags & st != 0 {
            flags |= ms;
        }
    }
    if (flags & ATIME_MODES).is_empty() {
        flags |= MsFlags::MS_STRICTATIME;
    }
    flags
}

/// Flags by their option names, for error messages.
fn names(flags: MsFlags) -> String {
    [
        (MsFlags::MS_RDONLY, "ro"),
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
        (MsFlags::MS_NOATIME, "noatime"),
        (MsFlags::MS_NODIRATIME, "nodiratime"),
        (MsFlags::MS_RELATIME, "relatime"),
        (MsFlags::MS_STRICTATIME, "strictatime"),
    ]
    .iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join(",")
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
                if other == "tmpcopyup" {
                    o.tmpcopyup = true;
                    continue;
                }
                // crun's idmap=uids=...;gids=... form.
                if other.starts_with("idmap=") {
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
    fn bind_remount_only_when_options_are_given() {
        assert_eq!(p(&["bind"]).bind_remount_flags(), None);
        assert_eq!(p(&["rbind", "rprivate"]).bind_remount_flags(), None);
        let dev = p(&["bind", "dev"]).bind_remount_flags().unwrap();
        assert_eq!(dev, MsFlags::MS_BIND | MsFlags::MS_REMOUNT);
        let ro = p(&["rbind", "ro"]).bind_remount_flags().unwrap();
        assert_eq!(
            ro,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY
        );
    }

    #[test]
    fn locked_flags_are_kept_unless_clearing_them_was_asked() {
        let src = MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME;
        let o = p(&["bind", "nosuid"]);
        let first = o.bind_remount_flags().unwrap();
        let retry = o.locked_retry(first, src).unwrap();
        assert!(retry.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID));
        let o = p(&["bind", "rw"]);
        let e = o.locked_retry(o.bind_remount_flags().unwrap(), src);
        assert_eq!(e.unwrap_err(), "cannot clear locked flags ro");
        let o = p(&["bind", "noatime"]);
        let e = o.locked_retry(o.bind_remount_flags().unwrap(), src);
        assert_eq!(e.unwrap_err(), "cannot change locked atime flags relatime");
    }

    #[test]
    fn statfs_flags_and_the_implied_strictatime() {
        let f = from_statfs(libc::ST_RDONLY | libc::ST_NOSUID);
        assert_eq!(
            f,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME
        );
        assert_eq!(from_statfs(libc::ST_NOATIME), MsFlags::MS_NOATIME);
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
