//! The committed corpus of malicious layers (tests/corpus/*.tar, made by make.py): each
//! import either fails with one clear error or keeps everything inside the layer, and
//! nothing outside the data root is created or changed.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::Env;

/// (file, whether import succeeds because the entry is contained rather than rejected)
const CASES: &[(&str, bool)] = &[
    ("dotdot.tar", false),
    ("absolute-path.tar", true),
    ("absolute-symlink-parent.tar", true),
    ("relative-symlink-parent.tar", false),
    ("symlink-replaced-by-file.tar", true),
    ("hardlink-dotdot.tar", false),
    ("hardlink-through-symlink.tar", false),
    ("whiteout-dotdot.tar", false),
    ("symlink-chain.tar", false),
];

fn pwned() -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("wharf-pwned"))
        .collect();
    found.sort();
    found
}

#[test]
fn malicious_layers_stay_contained() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let passwd_links = std::fs::metadata("/etc/passwd").unwrap().nlink();
    let pwned_before = pwned();
    let env = Env::new();
    for (file, succeeds) in CASES {
        let path = corpus.join(file);
        let out = env.run(&[
            "import",
            path.to_str().unwrap(),
            &format!("corpus:{}", file.trim_end_matches(".tar")),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if *succeeds {
            assert!(out.status.success(), "{file}: {stderr}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{file}: {stderr}");
        }
        assert_eq!(pwned(), pwned_before, "{file} wrote outside its layer");
        assert_eq!(
            std::fs::metadata("/etc/passwd").unwrap().nlink(),
            passwd_links,
            "{file}"
        );
    }
    let listed = env.ok(&["images", "--format", "{{.Tag}}"]);
    let mut tags: Vec<&str> = listed.lines().collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            "absolute-path",
            "absolute-symlink-parent",
            "symlink-replaced-by-file"
        ]
    );
    let lower = env.ok(&[
        "image",
        "inspect",
        "-f",
        "{{.GraphDriver.Data.LowerDir}}",
        "corpus:absolute-symlink-parent",
    ]);
    assert!(Path::new(lower.trim())
        .join("tmp/wharf-pwned-abs-symlink")
        .is_file());
}
