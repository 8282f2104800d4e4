//! Image references: docker's grammar and normalisation (`alpine` is
//! `docker.io/library/alpine:latest`) and the short "familiar" form docker prints.

use std::fmt;

use oci_spec::distribution::Reference;

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
                Some((first, rest))
                    if first.contains('.') || first.contains(':') || first == "localhost" =>
                {
                    rest.to_string()
                }
                Some(_) => name.to_string(),
                None => format!("{OFFICIAL_PREFIX}{name}"),
            };
            return Err(RefError::Uppercase(path));
        }
        let parsed = Reference::try_from(input).map_err(|e| RefError::Invalid(e.to_string()))?;
        Ok(Self {
            domain: parsed.registry().to_string(),
            path: parsed.repository().to_string(),
            tag: parsed.tag().map(str::to_string),
            digest: parsed.digest().map(str::to_string),
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
            match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
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

fn is_full_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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
            &format!("a:{}", "t".repeat(129)),
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn uppercase_tag_is_allowed() {
        let r = ImageRef::parse("lowercase:Uppercase").unwrap();
        assert_eq!(r.tag.as_deref(), Some("Uppercase"));
    }
}
