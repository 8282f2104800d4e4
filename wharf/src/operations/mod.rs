//! The operations both front doors call: `cli/` (flags in, text out) and `api/` (HTTP in,
//! JSON out). One function per docker operation, with typed requests and results, and
//! progress reported through callbacks; nothing here prints or parses flags. An operation
//! composes the parts (image store, registry, container records, monitor, runtime,
//! network), so a behaviour fixed here is fixed for both doors.

pub mod build;
pub mod container;
pub mod events;
pub mod exec;
pub mod image;
pub mod logs;
pub mod network;
pub mod system;
pub mod volume;

use crate::container::create::CreateError;
use crate::container::ops::OpsError;
use crate::container::ContainerError;
use crate::context::ContextError;
use crate::image::lookup::LookupError;
use crate::image::registry::RegistryError;
use crate::image::remove::RemoveError;
use crate::image::ImageError;
use crate::network::NetworkError;
use crate::store::StoreError;
use crate::volume::VolumeError;

#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// A value docker refuses (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The object is in a state that forbids the operation (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// What the request names does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The runtime could not start a process; `code` is docker's 125/126/127.
    #[error("{msg}")]
    Runtime { code: i32, msg: String },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] crate::image::archive::ArchiveError),
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Remove(#[from] crate::image::remove::RemoveError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Sys(#[from] nix::Error),
}

/// How docker's daemon classes an error: the HTTP status its API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400
    Invalid,
    /// 404
    NotFound,
    /// 403
    Forbidden,
    /// 409
    Conflict,
    /// 500
    Internal,
}

impl OperationError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Invalid,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Container(ContainerError::NotFound(_))
            | Self::Ops(OpsError::Container(ContainerError::NotFound(_)))
            | Self::Create(CreateError::Container(ContainerError::NotFound(_)))
            | Self::Lookup(LookupError::NotFound(_))
            | Self::Remove(RemoveError::Lookup(LookupError::NotFound(_)))
            | Self::Registry(RegistryError::NotFound(_))
            | Self::Network(NetworkError::NotFound(_))
            | Self::Create(CreateError::Network(NetworkError::NotFound(_)))
            | Self::Volume(VolumeError::NotFound(_)) => ErrorKind::NotFound,
            Self::Network(
                NetworkError::InUse { .. }
                | NetworkError::Predefined(_)
                | NetworkError::PredefinedConnect(_),
            ) => ErrorKind::Forbidden,
            Self::Container(ContainerError::Ambiguous(_))
            | Self::Lookup(LookupError::Reference(_))
            | Self::Create(
                CreateError::Invalid(_)
                | CreateError::Parse(_)
                | CreateError::Name(_)
                | CreateError::NoCommand,
            )
            | Self::Volume(VolumeError::InvalidName(_)) => ErrorKind::Invalid,
            Self::Ops(
                OpsError::RemoveRunning(_)
                | OpsError::NotRunning(_)
                | OpsError::NotPaused(_)
                | OpsError::AlreadyPaused(_),
            )
            | Self::Remove(RemoveError::MultipleRepos(_) | RemoveError::InUse { .. })
            | Self::Volume(VolumeError::InUse { .. })
            | Self::Network(NetworkError::Store(StoreError::NetworkExists(_)))
            | Self::Store(StoreError::NameInUse { .. } | StoreError::NetworkExists(_))
            | Self::Create(CreateError::Container(ContainerError::Store(
                StoreError::NameInUse { .. },
            ))) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }
}
