//! The bundle: loads `config.json` (oci-spec), resolves the rootfs, and validates every field hull
//! relies on before any side effect, so that bad input fails with the file, field and value and
//! leaves nothing behind.

mod default;
mod default_seccomp;
pub(crate) mod validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use default::default_spec;
pub use validate::validate;

/// An error in a bundle, always naming the file and, where there is one, the field and value.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {field}: {message}")]
    Parse {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// A loaded and validated bundle.
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// config.json as read, kept so the state directory gets the exact bytes.
    pub raw: Vec<u8>,
}

impl Bundle {
    /// Loads `<dir>/config.json` and validates it. `dir` is made absolute first, because the
    /// state and hooks record it.
    pub fn load(dir: &Path) -> Result<Bundle, SpecError> {
        let dir = std::path::absolute(dir).map_err(|source| SpecError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let config = dir.join("config.json");
        let bytes = std::fs::read(&config).map_err(|source| SpecError::Read {
            path: config.clone(),
            source,
        })?;
        let spec = parse(&config, &bytes)?;
        let rootfs = validate(&config, &dir, &spec)?;
        Ok(Bundle {
            dir,
            rootfs,
            spec,
            raw: bytes,
        })
    }
}

/// Parses config.json bytes, reporting the JSON path of the offending field on error.
pub fn parse(config: &Path, bytes: &[u8]) -> Result<Spec, SpecError> {
    parse_json(config, bytes)
}

/// Parses any runtime-spec JSON document (a config, a process.json), naming the file and the
/// JSON path of the offending field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    config: &Path,
    bytes: &[u8],
) -> Result<T, SpecError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        SpecError::Parse {
            path: config.to_path_buf(),
            field: if field == "." || field == "?" {
                "(document)".into()
            } else {
                field
            },
            message: e.into_inner().to_string(),
        }
    })
}
