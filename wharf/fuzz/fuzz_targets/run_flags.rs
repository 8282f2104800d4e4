//! The values of `run`/`create` flags, each line of the input given to every parser the
//! flags use (-v, --mount, --tmpfs, --restart, --volumes-from, -m, --cpus, --stop-signal,
//! -e, -w, --cpuset-*, -p, --expose, --add-host, --security-opt, --env-file). Never
//! panics, whatever the text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf::bundle::seccomp;
use wharf::container::parse;
use wharf::network::{hosts, ports};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse::env_file(text);
    let mut published = ports::PortMap::new();
    for l in text.lines() {
        let _ = parse::volume(l);
        let _ = parse::mount(l);
        let _ = parse::tmpfs(l);
        let _ = parse::restart_policy(l);
        let _ = parse::volumes_from(l);
        let _ = parse::ram_in_bytes(l, "--memory");
        let _ = parse::nano_cpus(l);
        let _ = parse::signal(l);
        let _ = parse::env_var(l);
        let _ = parse::env_entry(l);
        let _ = parse::workdir(l);
        let _ = parse::cpuset(l, 2);
        let _ = parse::cpuset_mems(l, 1);
        let _ = ports::parse_publish(l, &mut published);
        let _ = ports::parse_expose(l);
        let _ = hosts::parse_add_host(l, Some("0.0.0.0"));
        // A seccomp profile path would be read from the host: only the other options.
        if !l.starts_with("seccomp") {
            let _ = seccomp::parse_security_opt(l);
        }
    }
});
