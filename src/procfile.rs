//! Reading the small text files of /proc. They report a size of 0, so `fs::read_to_string`
//! stats the file, then reads 32 bytes and doubles (eight reads for a mountinfo); a page
//! reads the usual one in one call and the end of file in a second.

use std::io::Read;
use std::path::Path;

/// The whole text of the /proc file at `path`.
pub fn read(path: impl AsRef<Path>) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_files_longer_than_a_page() {
        let dir = std::env::temp_dir().join(format!("hull-procfile-{}", std::process::id()));
        let text: String = (0..2000).map(|i| format!("{i}\n")).collect();
        std::fs::write(&dir, &text).unwrap();
        let read = super::read(&dir);
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(read.unwrap(), text);
        assert!(text.len() > 8192);
    }
}
