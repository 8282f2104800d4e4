//! `-u user[:group]` resolved in the image's /etc/passwd and /etc/group, read through
//! `openat2(RESOLVE_IN_ROOT)` so an image's symlinks cannot point the lookup at the host.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Reads a file inside `root`; a missing or unreadable file reads as empty, as docker
/// treats an image without /etc/passwd.
fn read_in_root(root: &Path, path: &str) -> String {
    let Ok(dir) = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return String::new();
    };
    // SAFETY: `open` returned a fresh descriptor that nothing else owns.
    let dir = unsafe { OwnedFd::from_raw_fd(dir) };
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let Ok(fd) = openat2(dir.as_raw_fd(), path, how) else {
        return String::new();
    };
    // SAFETY: as above.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

struct Entry<'a> {
    name: &'a str,
    id: u32,
    gid_or_members: &'a str,
}

fn parse_passwd(s: &str) -> Vec<Entry<'_>> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Entry {
                name: f.first()?,
                id: f.get(2)?.parse().ok()?,
                gid_or_members: f.get(3)?,
            })
        })
        .collect()
}

/// Resolves `spec` (docker's `user`, `uid`, `user:group`, `uid:gid`) against the rootfs.
pub fn resolve(root: &Path, spec: &str) -> Result<Resolved, UserError> {
    let passwd = read_in_root(root, "etc/passwd");
    let group = read_in_root(root, "etc/group");
    resolve_in(&passwd, &group, spec)
}

fn resolve_in(passwd: &str, group: &str, spec: &str) -> Result<Resolved, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = parse_passwd(passwd);
    let groups = parse_passwd(group);
    let user = if user.is_empty() { "0" } else { user };
    let found = users
        .iter()
        .find(|e| e.name == user)
        .or_else(|| users.iter().find(|e| user.parse() == Ok(e.id)));
    let (uid, mut gid, name) = match (found, user.parse::<u32>()) {
        (Some(e), _) => (e.id, e.gid_or_members.parse().unwrap_or(0), Some(e.name)),
        (None, Ok(uid)) => (uid, 0, None),
        (None, Err(_)) => return Err(UserError::NoUser(user.to_string())),
    };
    if let Some(g) = grp {
        gid = match groups.iter().find(|e| e.name == g) {
            Some(e) => e.id,
            None => g.parse().map_err(|_| UserError::NoGroup(g.to_string()))?,
        };
    }
    // Supplementary groups, as docker sets them: the groups listing the user as a member
    // (unless a group was named), and always the primary group.
    let mut additional_gids: Vec<u32> = match name {
        Some(n) if grp.is_none() => groups
            .iter()
            .filter(|e| e.gid_or_members.split(',').any(|m| m == n) && e.id != gid)
            .map(|e| e.id)
            .collect(),
        _ => vec![],
    };
    additional_gids.push(gid);
    Ok(Resolved {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nbob:x:1000:100::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:\nwheel:x:10:bob\nnogroup:x:65534:\n";

    #[test]
    fn users_resolve_like_docker() {
        let r = |s| resolve_in(PASSWD, GROUP, s);
        assert_eq!(r("").unwrap().uid, 0);
        assert_eq!(
            r("bob").unwrap(),
            Resolved {
                uid: 1000,
                gid: 100,
                additional_gids: vec![10, 100]
            }
        );
        assert_eq!(r("nobody:wheel").unwrap().gid, 10);
        assert_eq!(
            r("1234").unwrap(),
            Resolved {
                uid: 1234,
                gid: 0,
                additional_gids: vec![0]
            }
        );
        assert_eq!(r("1234:55").unwrap().additional_gids, vec![55]);
        assert_eq!(r("bob:wheel").unwrap().additional_gids, vec![10]);
        assert_eq!(r("alice"), Err(UserError::NoUser("alice".into())));
        assert_eq!(r("bob:nope"), Err(UserError::NoGroup("nope".into())));
    }
}
