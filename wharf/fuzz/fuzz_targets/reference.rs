//! Image reference parsing: never panics, and a parsed reference prints to a string that
//! parses back to the same reference.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf::image::reference::ImageRef;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = ImageRef::parse(s) {
        let again = ImageRef::parse(&r.to_string()).expect("a printed reference parses");
        assert_eq!(again, r);
        let familiar = ImageRef::parse(&r.familiar()).expect("the familiar form parses");
        assert_eq!(familiar, r);
    }
});
