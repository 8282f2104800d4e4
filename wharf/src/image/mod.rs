//! Images: references, the content store, layer unpacking, registries and archives.

pub mod compression;
pub mod digest;
pub mod reference;
pub mod store;
pub mod unpack;
