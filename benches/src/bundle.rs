//! The busybox bundles every runtime runs: one rootfs made by bundle-fixtures/make-rootfs.sh,
//! and one bundle directory per config, each written by `runc spec` (hull's when runc is
//! missing) and pointed at that rootfs by absolute path so all runtimes read the very same
//! files. The seccomp rows take the profile docker 20.10 generated
//! (bundle-fixtures/generated/docker.json), since runc's default config has none.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use integration::TempDir;

/// All bundles of one bench run, removed on drop.
pub struct Bundles {
    dir: TempDir,
    pub rootfs: PathBuf,
    /// `/bin/true` in pid, network, ipc, uts, mount and cgroup namespaces.
    pub true_all: PathBuf,
    /// The same without a new network namespace.
    pub true_no_net: PathBuf,
    /// A long `sleep` to exec into.
    pub sleeper: PathBuf,
    /// `/bin/true` without a network namespace and with only some defences, to price each:
    /// (row key, title, bundle).
    pub defences: Vec<(&'static str, String, PathBuf)>,
}

/// Which defences a defences bundle keeps: (key, seccomp profile, masked and read-only paths).
/// `defences_all` keeps both, like `true-no-net`.
pub const DEFENCES: [(&str, bool, bool); 4] = [
    ("defences_none", false, false),
    ("defences_seccomp", true, false),
    ("defences_paths", false, true),
    ("defences_all", true, true),
];

impl Bundles {
    pub fn make(repo: &Path, spec_tool: &crate::runtime::Runtime) -> Result<Bundles, String> {
        let dir = TempDir::new("hull-bench-bundles");
        let rootfs = dir.path.join("rootfs");
        let script = repo.join("bundle-fixtures/make-rootfs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&rootfs)
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "make-rootfs.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let template = dir.path.join("template");
        std::fs::create_dir_all(&template).map_err(|e| e.to_string())?;
        let tool = spec_tool.name;
        let out = Command::new(&spec_tool.bin)
            .args(["spec", "--bundle"])
            .arg(&template)
            .output()
            .map_err(|e| format!("{tool} spec: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{tool} spec failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let docker = repo.join("bundle-fixtures/generated/docker.json");
        let docker: Value = std::fs::read_to_string(&docker)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", docker.display()))?;
        let profile = &docker["linux"]["seccomp"];
        let text = std::fs::read_to_string(template.join("config.json"))
            .map_err(|e| format!("template config: {e}"))?;
        let base: Value = serde_json::from_str(&text).map_err(|e| format!("template: {e}"))?;
        let write = |name: &str, args: &[&str], net: bool| -> Result<PathBuf, String> {
            let b = dir.path.join(name);
            std::fs::create_dir_all(&b).map_err(|e| e.to_string())?;
            let cfg = customise(&base, &rootfs, args, net)?;
            let text = serde_json::to_string_pretty(&cfg).map_err(|e| e.to_string())?;
            std::fs::write(b.join("config.json"), text).map_err(|e| e.to_string())?;
            Ok(b)
        };
        let true_all = write("true-all", &["/bin/true"], true)?;
        let true_no_net = write("true-no-net", &["/bin/true"], false)?;
        let sleeper = write("sleeper", &["/bin/sleep", "3600"], true)?;
        let mut defences = Vec::new();
        for (key, seccomp, paths) in DEFENCES {
            let b = write(key, &["/bin/true"], false)?;
            let cfg_path = b.join("config.json");
            let text = std::fs::read_to_string(&cfg_path).map_err(|e| e.to_string())?;
            let cfg = keep_defences(
                serde_json::from_str(&text).map_err(|e| e.to_string())?,
                seccomp.then_some(profile),
                paths,
            );
            let text = serde_json::to_string_pretty(&cfg).map_err(|e| e.to_string())?;
            std::fs::write(&cfg_path, text).map_err(|e| e.to_string())?;
            let title = format!(
                "no netns, seccomp {}, masked paths {}",
                if seccomp { "on" } else { "off" },
                if paths { "on" } else { "off" }
            );
            defences.push((key, title, b));
        }
        Ok(Bundles {
            dir,
            rootfs,
            true_all,
            true_no_net,
            sleeper,
            defences,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir.path
    }
}

/// The spec's default with no terminal (nobody holds a console socket), the given args, the
/// shared rootfs, and the network namespace kept or dropped.
fn customise(base: &Value, rootfs: &Path, args: &[&str], net: bool) -> Result<Value, String> {
    let mut cfg = base.clone();
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(args);
    cfg["root"]["path"] = json!(rootfs);
    let ns = cfg["linux"]["namespaces"]
        .as_array_mut()
        .ok_or("the spec has no linux.namespaces")?;
    if !net {
        ns.retain(|n| n["type"] != "network");
    }
    Ok(cfg)
}

/// Gives a config the seccomp profile or none, and keeps or drops its masked and read-only
/// paths.
fn keep_defences(mut cfg: Value, seccomp: Option<&Value>, paths: bool) -> Value {
    if let Some(linux) = cfg["linux"].as_object_mut() {
        match seccomp {
            Some(profile) => linux.insert("seccomp".into(), profile.clone()),
            None => linux.remove("seccomp"),
        };
        if !paths {
            linux.remove("maskedPaths");
            linux.remove("readonlyPaths");
        }
    }
    cfg
}

/// The namespace types a bundle asks for, for the floor program to mirror.
pub fn namespaces(bundle: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(bundle.join("config.json")).map_err(|e| e.to_string())?;
    let cfg: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(cfg["linux"]["namespaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customise_drops_network_and_sets_args() {
        let base = json!({
            "process": {"terminal": true, "args": ["sh"]},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}
        });
        let c = customise(&base, Path::new("/r"), &["/bin/true"], false).unwrap();
        assert_eq!(c["process"]["terminal"], json!(false));
        assert_eq!(c["process"]["args"], json!(["/bin/true"]));
        assert_eq!(c["root"]["path"], json!("/r"));
        assert_eq!(c["linux"]["namespaces"], json!([{"type": "pid"}]));
    }

    #[test]
    fn keep_defences_sets_the_profile_and_drops_what_is_off() {
        let cfg = json!({"linux": {"seccomp": {"old": 1}, "maskedPaths": [], "readonlyPaths": [], "namespaces": []}});
        let none = keep_defences(cfg.clone(), None, false);
        assert_eq!(none["linux"], json!({"namespaces": []}));
        let profile = json!({"defaultAction": "SCMP_ACT_ERRNO"});
        let seccomp = keep_defences(cfg.clone(), Some(&profile), false);
        assert_eq!(
            seccomp["linux"],
            json!({"seccomp": profile, "namespaces": []})
        );
        let all = keep_defences(cfg.clone(), Some(&profile), true);
        assert_eq!(all["linux"]["maskedPaths"], json!([]));
        assert_eq!(all["linux"]["seccomp"], profile);
    }
}
