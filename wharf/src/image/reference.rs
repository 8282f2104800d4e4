//! Image references: docker's grammar and normalisation (`alpine` is
//! `docker.io/library/alpine:latest`) and the short "familiar" form docker prints.

use std::fmt;

/// Docker's default registry domain; part of the reference grammar, not a network address.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_PREFIX: &str = "library/";

/// Why a string is not an image reference. Messages follow docker's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefError {
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// The parser's reason, already in docker's words ("invalid reference format",
    /// "invalid tag format", ...), as docker prints it: without the input.
    #[error("{0}")]
    Invalid(String),
    #[error("refusing to create a tag with a digest reference")]
    DigestTag,
}

/// A normalised image reference: a registry domain, a repository path and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `input` like docker's `ParseNormalizedNamed` followed by `TagNameOnly`: a
    /// reference with neither tag nor digest gets `:latest`.
    pub fn parse(input: &str) -> Result<Self, RefError> {
        let name_end = input.find('@').unwrap_or(input.len());
        let name = strip_tag(&input[..name_end]);
        if is_full_hex(name) {
            return Err(RefError::HexName(name.to_string()));
        }
        if name.chars().any(|c| c.is_ascii_uppercase()) {
            // Docker reports the normalised path, e.g. `library/Alpine`.
            let path = match name.split_once('/') {
                Some((first, rest)) if names_a_domain(first) => rest.to_string(),
                Some(_) => name.to_string(),
                None => format!("{OFFICIAL_PREFIX}{name}"),
            };
            return Err(RefError::Uppercase(path));
        }
        let invalid = || RefError::Invalid("invalid reference format".into());
        let (named, digest) = match input.split_once('@') {
            Some((n, d)) if valid_digest(d) => (n, Some(d.to_string())),
            Some(_) => return Err(invalid()),
            None => (input, None),
        };
        let name = strip_tag(named);
        let tag = match &named[name.len()..] {
            "" => None,
            t => {
                let t = &t[1..];
                if !valid_tag(t) {
                    return Err(invalid());
                }
                Some(t.to_string())
            }
        };
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if names_a_domain(first) => {
                if !valid_domain(first) {
                    return Err(invalid());
                }
                let d = if first == "index.docker.io" {
                    DEFAULT_DOMAIN
                } else {
                    first
                };
                (d.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if !path.split('/').all(valid_path_component) {
            return Err(invalid());
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        // As docker's ParseNormalizedNamed: the limit is on the normalised name
        // (`docker.io/library/...`), so what is printed always parses again.
        if domain.len() + 1 + path.len() > 255 {
            return Err(RefError::Invalid(
                "invalid reference format: repository name must not be more than 255 characters"
                    .into(),
            ));
        }
        // docker's TagNameOnly: neither tag nor digest means `latest`.
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Self {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Parses a repository name with an optional tag (no digest), as `tag` and `import` take.
    pub fn parse_tagged(input: &str) -> Result<Self, RefError> {
        let r = Self::parse(input)?;
        if r.digest.is_some() {
            return Err(RefError::DigestTag);
        }
        Ok(r)
    }

    /// `domain/path`, e.g. `docker.io/library/alpine`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short repository name docker shows: `alpine`, `user/app`, `localhost:5000/x`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            // Like docker's FamiliarName: `library/` goes only when one component remains.
            // A 64-hex name alone would read as an image id, so it keeps `library/`.
            let short = match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') && !is_full_hex(rest) => rest,
                _ => &self.path,
            };
            // Unlike it, `docker.io/` stays when the short name would read as another
            // registry's (`docker.io/a.b/c` is not `a.b/c`).
            match short.split_once('/') {
                Some((first, _)) if names_a_domain(first) => self.repository(),
                _ => short.to_string(),
            }
        } else {
            self.repository()
        }
    }

    /// The familiar form with tag and digest: `alpine:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        push_suffix(&mut s, self);
        s
    }

    /// Same reference with only the tag kept: the key under which a tag is stored.
    pub fn tagged_name(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{}", self.repository(), t))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository();
        push_suffix(&mut s, self);
        f.write_str(&s)
    }
}

/// Whether the first component of a name is a registry's address rather than a path.
fn names_a_domain(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

fn push_suffix(s: &mut String, r: &ImageRef) {
    if let Some(t) = &r.tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = &r.digest {
        s.push('@');
        s.push_str(d);
    }
}

/// Removes a trailing `:tag` without mistaking a registry port for one.
fn strip_tag(name: &str) -> &str {
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

/// docker's grammar, by hand: the oci-spec parser compiles a Unicode regex on first use,
/// which cost every command that names an image about 45 ms.
///
/// path-component: `[a-z0-9]+` joined by `.`, `_`, `__` or any run of `-`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// domain: host components (`[A-Za-z0-9]` or `[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]`) joined by
/// `.`, or a bracketed IPv6 address, with an optional `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (h.starts_with('[') == h.ends_with(']')) => {
            (h, Some(p))
        }
        _ => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|x| x.is_ascii_digit())) {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// tag: `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

/// digest: an algorithm (`[A-Za-z][A-Za-z0-9]*` joined by `+._-`), `:`, and at least 32 hex
/// digits (exactly 64 for sha256).
fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['+', '.', '_', '-']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|x| x.is_ascii_hexdigit());
    alg_ok && hex_ok && (alg != "sha256" || hex.len() == 64)
}

fn is_full_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn the_length_limit_is_on_the_normalised_name() {
        // 237 + "docker.io/library/" (18) = 255: the longest official name.
        assert!(ImageRef::parse(&"a".repeat(237)).is_ok());
        assert!(ImageRef::parse(&"a".repeat(238)).is_err());
        assert!(ImageRef::parse(&format!("x/{}", "a".repeat(243))).is_ok());
        assert!(ImageRef::parse(&format!("x/{}", "a".repeat(244))).is_err());
    }

    #[test]
    fn normalises_like_docker() {
        let cases: &[(&str, &str, &str)] = &[
            ("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
            (
                "alpine:3.19",
                "docker.io/library/alpine:3.19",
                "alpine:3.19",
            ),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            // Found by the `reference` fuzz target: the short form must name the same image.
            (
                "docker.io/a.b/c",
                "docker.io/a.b/c:latest",
                "docker.io/a.b/c:latest",
            ),
            (
                &format!("library/{}", "b".repeat(64)),
                &format!("docker.io/library/{}:latest", "b".repeat(64)),
                &format!("library/{}:latest", "b".repeat(64)),
            ),
            (
                "docker.io/library/localhost/x",
                "docker.io/library/localhost/x:latest",
                "library/localhost/x:latest",
            ),
            (
                "docker.io/library/alpine:edge",
                "docker.io/library/alpine:edge",
                "alpine:edge",
            ),
            (
                "index.docker.io/library/alpine",
                "docker.io/library/alpine:latest",
                "alpine:latest",
            ),
            (
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            (
                "127.0.0.1:5000/a/b:v1",
                "127.0.0.1:5000/a/b:v1",
                "127.0.0.1:5000/a/b:v1",
            ),
            ("localhost/x:1", "localhost/x:1", "localhost/x:1"),
            (
                "test.com:tag",
                "docker.io/library/test.com:tag",
                "test.com:tag",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = ImageRef::parse(input).unwrap();
            assert_eq!(r.to_string(), *full, "{input}");
            assert_eq!(r.familiar(), *familiar, "{input}");
        }
    }

    #[test]
    fn digests_with_and_without_tag() {
        let r = ImageRef::parse(&format!("alpine@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.to_string(), format!("docker.io/library/alpine@{D}"));
        let r = ImageRef::parse(&format!("localhost:5000/a:v2@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("v2"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert!(ImageRef::parse_tagged(&format!("a@{D}")).is_err());
    }

    #[test]
    fn rejects_invalid_references() {
        assert_eq!(
            ImageRef::parse("Alpine").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Alpine) must be lowercase"
        );
        assert!(matches!(
            ImageRef::parse(&"a".repeat(64)),
            Err(RefError::HexName(_))
        ));
        for bad in [
            "",
            ":latest",
            "a:",
            "a b",
            "a//b",
            "-a",
            "a:tag:tag",
            "a@sha256:abc",
            "a@md5:0123",
            "a:/b",
            "/a",
            "a/",
            "a..b",
            "a-",
            "host:port/x",
            "[::1/x",
            "example.com:/x",
            "x:tag@sha256:0123",
            &format!("a:{}", "t".repeat(129)),
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn the_grammar_edges_docker_accepts() {
        for ok in [
            "a__b",
            "a---b",
            "ab_c/d-e",
            "a.b/c_d/e-f",
            "[::1]:5000/x",
            "my-registry.example:443/team/app:v1.2_3",
            "localhost/x",
            &format!("x:{}", "t".repeat(128)),
        ] {
            assert!(ImageRef::parse(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn uppercase_tag_is_allowed() {
        let r = ImageRef::parse("lowercase:Uppercase").unwrap();
        assert_eq!(r.tag.as_deref(), Some("Uppercase"));
    }
}
