//! The hull binary: all behaviour lives in the library; this only turns its result into the
//! process exit status.
//!
//! Rust's own start-up is skipped (`no_main`): to place the main thread's stack-overflow
//! guard it parses /proc/self/maps, a tenth of the instructions of `hull --version`, on every
//! start of a program that each container runs three times. The rest of what it does hull
//! needs, and `cli::main` does it first (`process::as_rust_starts`).
// The test harness of `cargo test --bins` brings its own main.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    std::process::exit(hull::cli::main());
}
