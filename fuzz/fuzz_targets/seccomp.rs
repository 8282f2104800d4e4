//! Seccomp profile compilation: any profile compiles or is refused, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hull::entry::seccomp_profile(data);
});
