//! `diff`: the changes in a container's upper layer against the image, in docker's
//! A/C/D form. A 0/0 character device is a whiteout (deleted); a path the image also has
//! is changed; anything else was added.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    /// 'A', 'C' or 'D'.
    pub kind: char,
}

/// Compares `upper` with the image's snapshot directories (`lowers`, any order).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> std::io::Result<Vec<Change>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(upper).min_depth(1) {
        let e = e.map_err(std::io::Error::other)?;
        let rel = e.path().strip_prefix(upper).unwrap_or(e.path());
        let meta = e.path().symlink_metadata()?;
        let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
        let in_image = lowers
            .iter()
            .any(|l| l.join(rel).symlink_metadata().is_ok());
        let kind = match (whiteout, in_image) {
            (true, _) => 'D',
            (false, true) => 'C',
            (false, false) => 'A',
        };
        out.push(Change {
            path: format!("/{}", rel.display()),
            kind,
        });
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_entries_classify() {
        let d = tempfile::tempdir().unwrap();
        let (upper, lower) = (d.path().join("u"), d.path().join("l"));
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/old"), "").unwrap();
        std::fs::write(upper.join("etc/new"), "").unwrap();
        std::fs::write(upper.join("etc/old"), "x").unwrap();
        let c = changes(&upper, &[lower]).unwrap();
        let got: Vec<String> = c.iter().map(|c| format!("{} {}", c.kind, c.path)).collect();
        assert_eq!(got, vec!["C /etc", "A /etc/new", "C /etc/old"]);
    }
}
