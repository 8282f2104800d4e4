//! `diff` and `top`: looking into a container's filesystem changes and processes.

use std::path::{Path, PathBuf};

use wharf::container::{self, diff, lookup, ops, rootfs::Layout, top};
use wharf::context::Access;

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    container: String,
}

pub fn diff(root: &Path, a: DiffArgs) -> anyhow::Result<()> {
    let ctx = super::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, &a.container).map_err(super::daemon_error)?;
    let layout = Layout::new(&container::dir(root, &c.id));
    let lowers: Vec<PathBuf> = c
        .spec
        .layers
        .iter()
        .map(|l| root.join("snapshots").join(l))
        .collect();
    for ch in diff::changes(&layout.upper, &lowers)? {
        println!("{} {}", ch.kind, ch.path);
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    container: String,
    /// Options for ps(1), docker's default is -ef
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

pub fn top(root: &Path, a: TopArgs) -> anyhow::Result<()> {
    let ctx = super::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, &a.container).map_err(super::daemon_error)?;
    if !c.is_running() {
        anyhow::bail!(
            "Error response from daemon: container {} is not running",
            c.id
        );
    }
    let opts = if a.ps_options.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_options
    };
    let pids = ops::runtime(root, &c).pids(&c.id)?;
    print!("{}", top::run(&opts, &pids)?);
    Ok(())
}
