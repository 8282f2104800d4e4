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

/// A Go duration (`1h30m`, `1.5s`, `-2m`) in nanoseconds (also HEALTHCHECK's flags).
pub fn go_duration(s: &str) -> Option<i64> {
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some((sign * total) as i64)
}

/// Parses `--since`/`--until` as docker does: a Go duration before now (`10m`, `1m30s`),
/// a Unix timestamp with optional fraction, RFC 3339 with a zone, or a date and time
/// without one (`2006-01-02`, `2006-01-02T15:04`, `2006-01-02T15:04:05[.fraction]`) in the
/// local time zone. Returns Unix nanoseconds.
pub fn parse_time(s: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    if let Some(d) = go_duration(s) {
        return (now - chrono::Duration::nanoseconds(d)).timestamp_nanos_opt();
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Some((secs * 1e9) as i64);
    }
    let local = |naive: chrono::NaiveDateTime| {
        naive
            .and_local_timezone(chrono::Local)
            .earliest()
            .and_then(|t| t.timestamp_nanos_opt())
    };
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return local(d.and_hms_opt(0, 0, 0)?);
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(local)
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
        assert_eq!(
            parse_time("1m30s", now).unwrap(),
            parse_time("2026-01-01T00:08:30Z", now).unwrap()
        );
        let local = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .unwrap()
                .and_local_timezone(chrono::Local)
                .unwrap()
                .timestamp_nanos_opt()
        };
        assert_eq!(parse_time("2026-11-25", now), local("2026-11-25T00:00:00"));
        assert_eq!(
            parse_time("2026-11-25T15:20", now),
            local("2026-11-25T15:20:00")
        );
        assert_eq!(
            parse_time("2026-11-25T15:20:56", now),
            local("2026-11-25T15:20:56")
        );
        assert_eq!(parse_time("1h-", now), None);
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
