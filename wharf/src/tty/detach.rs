//! docker's detach keys (`--detach-keys`, default `ctrl-p,ctrl-q`): parsing and a matcher
//! that holds back a partial sequence and lets it through when the sequence breaks.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DetachKeysError {
    #[error("Unknown character: '{0}'")]
    Unknown(String),
}

pub const DEFAULT: &str = "ctrl-p,ctrl-q";

/// `a`, `ctrl-a`..`ctrl-z`, `ctrl-@`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`,
/// separated by commas.
pub fn parse(s: &str) -> Result<Vec<u8>, DetachKeysError> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let bad = || DetachKeysError::Unknown(key.to_string());
        match key.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let b = c.as_bytes()[0];
                out.push(match b {
                    b'a'..=b'z' => b - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(bad()),
                });
            }
            None if key.len() == 1 => out.push(key.as_bytes()[0]),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// Scans input for the detach sequence.
pub struct Matcher {
    keys: Vec<u8>,
    matched: usize,
}

impl Matcher {
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the sequence is complete (the bytes before it
    /// are still to be passed on).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = usize::from(b == self.keys[0]);
            if self.matched == 0 {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_like_docker() {
        assert_eq!(parse(DEFAULT).unwrap(), vec![16, 17]);
        assert_eq!(
            parse("ctrl-a,x,ctrl-@,ctrl-_").unwrap(),
            vec![1, b'x', 0, 31]
        );
        assert_eq!(
            parse("ctrl-1").unwrap_err().to_string(),
            "Unknown character: 'ctrl-1'"
        );
        assert!(parse("ab").is_err());
    }

    #[test]
    fn matcher_holds_partial_sequences() {
        let mut m = Matcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(m.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(m.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(m.feed(b"\x11rest"), (vec![], true));
        let mut none = Matcher::new(vec![]);
        assert_eq!(none.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
