//! config.json load + validate: any bytes give a verdict, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hull::entry::load_config(data);
});
