//! wharf: a daemonless Docker-like frontend. This crate holds images, their storage and
//! the formatting of docker-shaped output; `main.rs` turns it into the `wharf` command.

pub mod context;
pub mod credentials;
pub mod format;
pub mod image;
pub mod inspect;
pub mod snapshot;
pub mod store;
