//! Bad input: every bundle in bundle-fixtures/invalid must fail with one clear line naming
//! what is wrong, and leave nothing behind (state, mounts, cgroups, processes).

use std::path::{Path, PathBuf};

use integration::{cgroup_dirs, make_rootfs, mounts_below, Container, Runtime, TempDir};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundle-fixtures/invalid");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("bundle-fixtures/invalid")
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Processes whose root or cwd is inside `dir`.
fn processes_inside(dir: &Path) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            ["root", "cwd"]
                .iter()
                .any(|l| std::fs::read_link(e.path().join(l)).is_ok_and(|p| p.starts_with(dir)))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// One case per fixture: create fails with one line naming what is wrong and leaves nothing.
pub fn cases() -> Vec<(String, Box<dyn Fn()>)> {
    fixtures()
        .into_iter()
        .map(|fixture| {
            let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
            let case: Box<dyn Fn()> = Box::new(move || invalid_bundle(&fixture));
            (name, case)
        })
        .collect()
}

fn invalid_bundle(fixture: &Path) {
    let rt = Runtime::new();
    if !rt.is_hull() && fixture.join("reference-accepts").exists() {
        crate::skip("the reference runtime accepts it (see README)");
    }
    let bundle = TempDir::new("invalid");
    std::fs::copy(fixture.join("config.json"), bundle.path.join("config.json")).unwrap();
    make_rootfs(&bundle.path.join("rootfs"));
    let expected = std::fs::read_to_string(fixture.join("expected")).unwrap();
    let c = Container::new(&rt);
    let out = rt.run(&["create", "--bundle", bundle.path.to_str().unwrap(), &c.id]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut problems = Vec::new();
    if out.status.success() {
        problems.push("create succeeded".to_string());
    }
    if rt.is_hull() {
        if !err.contains(expected.trim()) {
            problems.push(format!("message {err:?} lacks {:?}", expected.trim()));
        }
        if err.trim().lines().count() != 1 {
            problems.push(format!("not exactly one line: {err:?}"));
        }
    }
    if rt.root.path.join(&c.id).exists() {
        problems.push("state directory left".into());
    }
    if !mounts_below(&bundle.path).is_empty() {
        problems.push(format!("mounts left: {:?}", mounts_below(&bundle.path)));
    }
    for d in cgroup_dirs(&format!("/{}", c.id)) {
        if d.exists() {
            problems.push(format!("cgroup left: {d:?}"));
        }
    }
    let procs = processes_inside(&bundle.path);
    if !procs.is_empty() {
        problems.push(format!("processes left: {procs:?}"));
    }
    assert!(
        problems.is_empty(),
        "{}: {}",
        err.trim(),
        problems.join("; ")
    );
}

pub fn missing_bundle_directory() {
    let rt = Runtime::new();
    let c = Container::new(&rt);
    let out = rt.run(&["create", "--bundle", "/no/such/bundle", &c.id]);
    assert!(!out.status.success());
    if rt.is_hull() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("/no/such/bundle/config.json"), "{err}");
    }
    assert!(!rt.root.path.join(&c.id).exists());
}
