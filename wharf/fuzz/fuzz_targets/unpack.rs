//! Layer unpacking: never panics, and whatever the input, nothing outside the layer
//! directory is created or changed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf::image::unpack::unpack_layer;

fuzz_target!(|data: &[u8]| {
    let sandbox = tempfile::tempdir().expect("tempdir");
    let layer = sandbox.path().join("layer");
    std::fs::create_dir(&layer).expect("layer dir");
    std::fs::write(sandbox.path().join("sentinel"), b"keep").expect("sentinel");
    let _ = unpack_layer(std::io::Cursor::new(data.to_vec()), &layer);
    let mut names: Vec<_> = std::fs::read_dir(sandbox.path())
        .expect("read sandbox")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["layer", "sentinel"]);
    assert_eq!(
        std::fs::read(sandbox.path().join("sentinel")).expect("sentinel"),
        b"keep"
    );
});
