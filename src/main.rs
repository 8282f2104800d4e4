//! The hull binary: all behaviour lives in the library; this only turns its result into the
//! process exit status.

fn main() {
    std::process::exit(hull::cli::main());
}
