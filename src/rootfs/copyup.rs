//! `tmpcopyup` (runc's mount option): a tmpfs mounted over a directory starts with a copy of
//! what it covers, owners, modes and symlinks included, so that an image's files stay visible
//! while writes go to memory.

use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

/// Copies the tree below `from` into `to` (both directories), never following a symlink.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let md = std::fs::symlink_metadata(&src)?;
        let ft = md.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            // Device nodes, fifos and sockets: the same node again.
            let dst_c =
                std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dst.as_os_str()))?;
            // SAFETY: mknod with a valid C string and the source's mode and device number.
            let r = unsafe { libc::mknod(dst_c.as_ptr(), md.mode(), md.rdev()) };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        lchown(&dst, Some(md.uid()), Some(md.gid()))?;
        if !ft.is_symlink() {
            // After the chown, which clears set-id bits; explicit, so no umask applies.
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        }
    }
    Ok(())
}
