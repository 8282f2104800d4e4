//! wharf: a daemonless Docker-like frontend. This crate holds images, their storage and
//! the formatting of docker-shaped output; `main.rs` turns it into the `wharf` command.

pub mod image;
