//! `spec`: writes the default config.json into a bundle directory, refusing to overwrite one.

use std::path::Path;

use anyhow::{bail, Context as _};

pub fn spec(bundle: &Path, rootless: bool) -> anyhow::Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let ids = rootless.then(|| {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    });
    let json = serde_json::to_string_pretty(&crate::spec::default_spec(ids))?;
    std::fs::write(&path, json + "\n").with_context(|| format!("writing {path:?}"))
}
