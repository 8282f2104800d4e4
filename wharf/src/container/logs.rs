//! Reading docker's json-file logs: whole files for `logs`, and new lines as they are
//! appended for `logs -f` and attached runs.

use std::fs::File;
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Follows a log file from an offset; a partially written last line waits for the next read.
pub struct Reader {
    file: File,
    pending: Vec<u8>,
}

impl Reader {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            pending: Vec::new(),
        })
    }

    /// Entries appended since the last call.
    pub fn read_new(&mut self) -> std::io::Result<Vec<Entry>> {
        self.file.read_to_end(&mut self.pending)?;
        let mut out = Vec::new();
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            // A torn line (the monitor killed mid-write) is skipped, as docker does.
            if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                out.push(e);
            }
        }
        Ok(out)
    }
}

/// Parses `--since`/`--until`: RFC 3339, a Unix timestamp, or a duration like `10m`
/// (relative to now), as docker accepts them. Returns Unix nanoseconds.
pub fn parse_time(s: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Some((secs * 1e9) as i64);
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let mult = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let back = chrono::Duration::nanoseconds((n * mult * 1e9) as i64);
    (now - back).timestamp_nanos_opt()
}

pub fn entry_nanos(e: &Entry) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&e.time)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_like_docker() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let ten_min = parse_time("10m", now).unwrap();
        assert_eq!(ten_min, parse_time("2026-01-01T00:00:00Z", now).unwrap());
        assert_eq!(parse_time("1.5", now), Some(1_500_000_000));
        assert_eq!(parse_time("soon", now), None);
    }

    #[test]
    fn torn_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(
            &p,
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n{\"log\"",
        )
        .unwrap();
        let mut r = Reader::open(&p).unwrap();
        assert_eq!(r.read_new().unwrap().len(), 1);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b":\"b\",\"stream\":\"stderr\",\"time\":\"t\"}\n")
            .unwrap();
        let e = r.read_new().unwrap();
        assert_eq!(e[0].log, "b");
        assert_eq!(e[0].stream, "stderr");
    }
}
