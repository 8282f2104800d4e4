//! `diff` and `top`: looking into a container's filesystem changes and processes.

use std::path::Path;

use wharf::operations::container as op;

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    container: String,
}

pub fn diff(root: &Path, a: DiffArgs) -> anyhow::Result<()> {
    let changes = op::changes(root, &a.container).map_err(super::daemon_error)?;
    for ch in changes {
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
    let table = op::top(root, &a.container, &a.ps_options).map_err(super::daemon_error)?;
    print!("{table}");
    Ok(())
}
