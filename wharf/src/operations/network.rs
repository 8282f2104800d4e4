//! Networks as `docker network` and `/networks` handle them: create, list with docker's
//! filters, inspect, remove, prune, connect and disconnect a container.

use std::path::Path;

use serde_json::Value;

use super::OperationError;
use crate::container::lookup;
use crate::context::{Access, Context};
use crate::events::{self, Kind};
use crate::network::{self, CreateOptions, JoinOptions, NetworkError};
use crate::store::NetworkRow;

pub fn create(root: &Path, o: CreateOptions) -> Result<NetworkRow, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let n = network::create(&mut ctx.db, root, o)?;
    events::record(
        &ctx.db,
        Kind::Network,
        "create",
        &n.id,
        &[("name", &n.name), ("type", &n.driver)],
    );
    Ok(n)
}

/// The networks `filters` keep, sorted by name.
pub fn list(root: &Path, filters: &[String]) -> Result<Vec<NetworkRow>, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let mut list = network::filtered(&mut ctx.db, root, filters)?;
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// docker's inspect object of the network `name` (name, id or id prefix).
pub fn inspect(root: &Path, name: &str) -> Result<Value, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let n = network::find(&mut ctx.db, root, name)?;
    Ok(network::inspect_json(root, &ctx.db, &n)?)
}

pub fn remove(root: &Path, name: &str) -> Result<NetworkRow, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let n = network::remove(&mut ctx.db, root, name)?;
    events::record(
        &ctx.db,
        Kind::Network,
        "destroy",
        &n.id,
        &[("name", &n.name), ("type", &n.driver)],
    );
    Ok(n)
}

/// Removes unused networks (and what killed wharfs left); their names.
pub fn prune(root: &Path) -> Result<Vec<String>, OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    network::sweep(root, &mut ctx.db)?;
    Ok(network::prune(&mut ctx.db, root)?)
}

pub fn connect(
    root: &Path,
    net: &str,
    container: &str,
    o: &JoinOptions,
) -> Result<(), OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, container)?;
    network::connect(root, &mut ctx.db, net, &c, o)?;
    let n = network::find(&mut ctx.db, root, net)?;
    events::record(
        &ctx.db,
        Kind::Network,
        "connect",
        &n.id,
        &[("container", &c.id), ("name", &n.name), ("type", &n.driver)],
    );
    Ok(())
}

/// Disconnects; with `force` a container that is not connected is not an error.
pub fn disconnect(
    root: &Path,
    net: &str,
    container: &str,
    force: bool,
) -> Result<(), OperationError> {
    let mut ctx = Context::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, container)?;
    match network::disconnect(root, &mut ctx.db, net, &c) {
        Err(NetworkError::NotConnected { .. }) if force => Ok(()),
        r => {
            r?;
            if let Ok(n) = network::find(&mut ctx.db, root, net) {
                events::record(
                    &ctx.db,
                    Kind::Network,
                    "disconnect",
                    &n.id,
                    &[("container", &c.id), ("name", &n.name), ("type", &n.driver)],
                );
            }
            Ok(())
        }
    }
}
