//! The init `run --init` puts at PID 1: a static executable built from `init/main.rs` by
//! build.rs and embedded here. It is written once per build under the data root
//! (`init/docker-init-<hash>`, by rename so a half-written file is never used) and
//! bind-mounted read-only at /sbin/docker-init, where docker puts its own.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::image::digest::Digest;

/// The init executable.
pub const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/wharf-init"));

/// Where the init appears inside a container.
pub const CONTAINER_PATH: &str = "/sbin/docker-init";

/// Writes the init under `root` unless this build's copy is there; returns its path.
pub fn install(root: &Path) -> std::io::Result<PathBuf> {
    let hash = Digest::of(BINARY).hex().to_string();
    let dir = root.join("init");
    let path = dir.join(format!("docker-init-{}", &hash[..16]));
    if path
        .metadata()
        .is_ok_and(|m| m.len() == BINARY.len() as u64)
    {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.write_all(BINARY)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A static executable has no PT_INTERP program header (type 3).
    #[test]
    fn init_is_a_static_executable() {
        assert_eq!(&BINARY[..4], b"\x7fELF");
        let u16_at = |o: usize| u16::from_le_bytes([BINARY[o], BINARY[o + 1]]) as usize;
        let phoff = u64::from_le_bytes(BINARY[32..40].try_into().unwrap()) as usize;
        let (phentsize, phnum) = (u16_at(54), u16_at(56));
        assert!(phnum > 0);
        for i in 0..phnum {
            let off = phoff + i * phentsize;
            let kind = u32::from_le_bytes(BINARY[off..off + 4].try_into().unwrap());
            assert_ne!(kind, 3, "the init asks for a dynamic loader");
        }
        let d = tempfile::tempdir().unwrap();
        let p = install(d.path()).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), BINARY);
        assert_eq!(install(d.path()).unwrap(), p);
    }
}
