//! `attach`: connects our terminal (or stdio) to a running container through its
//! monitor; the detach keys leave it running, otherwise we exit with its status.

use std::path::Path;

use wharf::attach::{self, ClientOptions, Outcome, Remote};
use wharf::container::{self, lookup, ops};
use wharf::context::Access;
use wharf::tty::detach;

use super::run::fail;
use super::Exit;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = detach::DEFAULT)]
    detach_keys: String,
    /// Do not attach STDIN
    #[arg(long)]
    no_stdin: bool,
    container: String,
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let keys = detach::parse(&a.detach_keys).map_err(fail)?;
    let c = {
        let ctx = super::open(root, Access::Shared)?;
        lookup::find(&ctx.db, &a.container).map_err(super::daemon_error)?
    };
    if !c.is_running() {
        return Err(super::daemon_error(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    let sock = attach::connect_to(&container::dir(root, &c.id)).map_err(fail)?;
    let opts = ClientOptions {
        stdin: c.spec.config.open_stdin && !a.no_stdin,
        tty: c.spec.config.tty,
        detach_keys: keys,
    };
    let mut proxy = |sig| super::run::proxy_signal(root, &c.id, sig);
    let proxy: Option<&mut dyn FnMut(_) -> _> = (!opts.tty).then_some(&mut proxy);
    if attach::run_client(&Remote::Monitor(sock), &opts, proxy)? == Outcome::Detached {
        // docker's client ends a detached attach with this error.
        eprintln!("read escape sequence");
        return Err(Exit(1).into());
    }
    let ctx = super::open(root, Access::Shared)?;
    match ops::wait(&ctx.db, &c)? {
        0 => Ok(()),
        code => Err(Exit(code).into()),
    }
}
