//! The Engine API's container-create body (`POST /containers/create`): decoded into
//! create options or refused with a 400. Never panics, whatever the bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wharf::api::create::options(data, Some("fuzz".into()), "runc");
});
