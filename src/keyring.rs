//! The session keyring: each container joins a fresh one (unless `--no-new-keyring`), so keys of
//! the host's session are not reachable from inside.

use std::ffi::CString;

use nix::errno::Errno;

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
const KEYCTL_SETPERM: libc::c_int = 5;
/// Possessor: all; user: view+read+search+link; group and other: none.
const PERM: u32 = 0x3f1f_0000;

#[derive(Debug, thiserror::Error)]
#[error("joining a new session keyring: {0}")]
pub struct KeyringError(Errno);

pub fn join_new(id: &str) -> Result<(), KeyringError> {
    let name = CString::new(format!("_ses.{id}")).expect("container IDs have no NUL");
    // SAFETY: keyctl with a live C string.
    let key =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    match Errno::result(key) {
        // Kernels without keyrings have nothing to isolate.
        Err(Errno::ENOSYS) => return Ok(()),
        Err(e) => return Err(KeyringError(e)),
        Ok(_) => {}
    }
    // SAFETY: keyctl with integer arguments.
    Errno::result(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, key, PERM) })
        .map(drop)
        .map_err(KeyringError)
}
