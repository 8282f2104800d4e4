//! The two C math functions hull's code calls, `pow` and `log2` (libcgroups' conversion of
//! cpu shares to a cgroup v2 weight), defined here from the pure-Rust `libm` crate so that
//! nothing of glibc's libm is linked. When hull was linked dynamically, loading libm.so cost
//! every process about 300 KiB of resident pages; linked statically, glibc's `pow` and `log2`
//! would bring their ifunc resolvers, which a static binary runs at every start, and their
//! tables, for two functions used on one config field.

/// C's `double pow(double, double)`.
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// C's `double log2(double)`.
#[no_mangle]
pub extern "C" fn log2(x: f64) -> f64 {
    libm::log2(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow_and_log2_give_cs_results() {
        assert_eq!(log2(1024.0), 10.0);
        assert_eq!(log2(1.0), 0.0);
        assert_eq!(log2(3.0), 1.584962500721156);
        assert!(log2(-1.0).is_nan());
        assert_eq!(log2(0.0), f64::NEG_INFINITY);
        assert_eq!(pow(2.0, 10.0), 1024.0);
        assert_eq!(pow(10.0, 0.5), 3.1622776601683795);
        assert_eq!(pow(0.0, 0.0), 1.0);
        assert!(pow(-8.0, 1.0 / 3.0).is_nan());
    }
}
