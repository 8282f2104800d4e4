//! Golden comparisons with runc: the JSON that callers parse (state, list, ps, events --stats,
//! features) has the same keys and types, and `--version` the same layout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use integration::{hull_bin, Bundle, TempDir};
use serde_json::Value;

/// The keys and types of a JSON value (array elements by their first one), to depth `depth`.
fn shape(v: &Value, depth: usize) -> Value {
    match v {
        Value::Object(m) if depth > 0 => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), shape(v, depth - 1)))
                .collect(),
        ),
        Value::Object(_) => "object".into(),
        Value::Array(a) => Value::Array(a.first().map(|x| shape(x, depth)).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

struct Side {
    bin: PathBuf,
    root: TempDir,
}

impl Side {
    /// Output goes through files: a created container keeps the runtime's stdio open.
    fn output(&self, args: &[&str]) -> std::process::Output {
        let (o, e) = (self.root.path.join("out"), self.root.path.join("err"));
        let status = Command::new(&self.bin)
            .arg("--root")
            .arg(&self.root.path)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        std::process::Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "{:?} {args:?}: {}",
            self.bin,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(self.run(args).trim()).unwrap()
    }
}

impl Drop for Side {
    /// Deletes whatever a failed test left in this side's private root.
    fn drop(&mut self) {
        let listed = self.output(&["list", "-q"]);
        for id in String::from_utf8_lossy(&listed.stdout).lines() {
            self.output(&["delete", "--force", id]);
        }
    }
}

fn sides() -> Option<(Side, Side)> {
    let runc = which("runc")?;
    Some((
        Side {
            bin: hull_bin(),
            root: TempDir::new("golden-hull"),
        },
        Side {
            bin: runc,
            root: TempDir::new("golden-runc"),
        },
    ))
}

fn which(name: &str) -> Option<PathBuf> {
    let found = std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists());
    if found.is_none() {
        integration::skip(&format!("{name} is not installed (apt-get install {name})"));
    }
    found
}

#[test]
fn state_list_ps_events_have_runcs_shape() {
    let Some((hull, runc)) = sides() else { return };
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["annotations"] = serde_json::json!({"org.example.key": "value"});
    b.save();
    let mut shapes: BTreeMap<&str, [Value; 2]> = BTreeMap::new();
    // Unique: the default cgroup path (runc's /<id>) is shared by every run on this host.
    let ids = [integration::unique("golden"), integration::unique("golden")];
    let ids = [ids[0].as_str(), ids[1].as_str()];
    for (side, id) in [(&hull, ids[0]), (&runc, ids[1])] {
        side.run(&["run", "-d", "--bundle", b.path_str(), id]);
    }
    for (i, (side, id)) in [(&hull, ids[0]), (&runc, ids[1])].into_iter().enumerate() {
        let state = side.json(&["state", id]);
        assert_eq!(state["status"], "running");
        assert_eq!(state["annotations"]["org.example.key"], "value");
        shapes
            .entry("state")
            .or_insert_with(|| [Value::Null, Value::Null])[i] = shape(&state, 3);
        shapes
            .entry("list")
            .or_insert_with(|| [Value::Null, Value::Null])[i] =
            shape(&side.json(&["list", "--format", "json"]), 3);
        shapes
            .entry("ps")
            .or_insert_with(|| [Value::Null, Value::Null])[i] =
            shape(&side.json(&["ps", "--format", "json", id]), 3);
        let mut events = side.json(&["events", "--stats", id]);
        // Values that exist only where a controller is configured differ by host, not runtime.
        for k in ["blkio", "hugetlb"] {
            events["data"][k] = Value::Null;
        }
        // Both omit a zero page cache, so its presence depends on the moment, not the runtime.
        events["data"]["memory"]
            .as_object_mut()
            .unwrap()
            .remove("cache");
        shapes
            .entry("events")
            .or_insert_with(|| [Value::Null, Value::Null])[i] = shape(&events, 3);
    }
    for (side, id) in [(&hull, ids[0]), (&runc, ids[1])] {
        side.run(&["delete", "--force", id]);
    }
    for (what, [h, r]) in shapes {
        assert_eq!(h, r, "{what}: hull's shape differs from runc's");
    }
}

#[test]
fn features_and_version_have_runcs_layout() {
    let Some((hull, runc)) = sides() else { return };
    let (h, r) = (hull.json(&["features"]), runc.json(&["features"]));
    // In order: serde_json keeps it here (preserve_order), as people read these top down.
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&h), keys(&r));
    for args in [&["spec"][..], &["spec", "--rootless"]] {
        let specs = [&hull, &runc].map(|side| {
            let dir = TempDir::new("spec");
            Command::new(&side.bin)
                .args(args)
                .current_dir(&dir.path)
                .status()
                .unwrap();
            let text = std::fs::read_to_string(dir.path.join("config.json")).unwrap();
            serde_json::from_str::<Value>(&text).unwrap()
        });
        for part in ["", "/process", "/linux"] {
            let [h, r] = specs.each_ref().map(|s| keys(s.pointer(part).unwrap()));
            assert_eq!(h, r, "{args:?}{part}: key order");
        }
    }
    for section in ["cgroup", "seccomp", "apparmor", "selinux"] {
        assert!(h["linux"][section].is_object(), "linux.{section}");
    }
    for (k, v) in h["annotations"].as_object().unwrap() {
        assert!(v.is_string(), "annotation {k} is not a string");
    }
    let hv = hull.run(&["--version"]);
    let rv = runc.run(&["--version"]);
    assert!(hv.lines().next().unwrap().starts_with("hull version "));
    assert!(rv.lines().next().unwrap().starts_with("runc version "));
    for v in [&hv, &rv] {
        assert!(v.lines().any(|l| l.starts_with("spec: ")), "{v}");
    }
}

#[test]
fn error_texts_callers_match_on() {
    let Some((hull, runc)) = sides() else { return };
    let b = Bundle::new(&["sleep", "60"]);
    b.save();
    for side in [&hull, &runc] {
        let err = |args: &[&str]| {
            let out = side.output(args);
            assert!(!out.status.success());
            String::from_utf8_lossy(&out.stderr).into_owned()
        };
        assert!(err(&["state", "missing"]).contains("container does not exist"));
        assert!(err(&["create", "--bundle", b.path_str(), "bad/id"])
            .contains("invalid container ID format"));
        let dup = integration::unique("dup");
        side.run(&["create", "--bundle", b.path_str(), &dup]);
        assert!(err(&["create", "--bundle", b.path_str(), &dup])
            .contains("container with given ID already exists"));
        side.run(&["delete", "--force", &dup]);
    }
}
