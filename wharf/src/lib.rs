//! wharf: a daemonless Docker-like frontend. This crate holds images, their storage and
//! the formatting of docker-shaped output; `main.rs` turns it into the `wharf` command.

pub mod api;
pub mod attach;
pub mod build;
pub mod bundle;
pub mod container;
pub mod context;
pub mod credentials;
pub mod events;
pub mod fault;
pub mod footprint;
pub mod format;
pub mod healthcheck;
pub mod image;
pub mod init;
pub mod inspect;
pub mod monitor;
pub mod network;
pub mod operations;
pub mod runtime;
pub mod snapshot;
pub mod store;
pub mod tty;
pub mod volume;
