//! Regenerates `src/hot-text.order`, the functions hull's linker places first (see hull's
//! build.rs): links the shipped hull with a linker map, single-steps it with ptrace through
//! `run`, `create`, `state`, `start`, `kill` and `delete` of the bench's `runc spec` bundle
//! (following every process it clones until that process execs the container's program), and
//! names the functions it ran, in the order they first ran, from the map's `.text*` input
//! sections. Single-stepping is slow (about a minute per command) but exact: a sampling
//! profiler misses functions that run once, and those are most of a start.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::bundle::Bundles;
use crate::proc;
use crate::runtime::Runtime;
use integration::{unique, TempDir};

/// Where build.rs reads the list.
const ORDER_FILE: &str = "src/hot-text.order";

/// Builds hull with a map, traces the common commands and writes the order file.
pub fn regenerate(repo: &Path) -> Result<(), String> {
    proc::become_subreaper()?;
    let work = TempDir::new("hull-hot-text");
    let map = work.path.join("hull.map");
    let hull = build_with_map(repo, &map)?;
    let rt = Runtime::new("hull", hull)?;
    // The bench's bundle: written by runc's `spec` when runc is there, as users' are.
    let runc = crate::which("runc")
        .map(|bin| Runtime::new("runc", bin))
        .transpose()?;
    let bundles = Bundles::make(repo, runc.as_ref().unwrap_or(&rt))?;
    let traces = trace_commands(&rt, &bundles, &work.path)?;
    let sections = text_sections(&map)?;
    let mut names = Vec::new();
    let mut seen = HashSet::new();
    let mut bytes = 0;
    for trace in &traces {
        for vaddr in trace {
            if let Some((start, size, name)) = section_at(&sections, *vaddr) {
                if seen.insert(*start) {
                    names.push(name.as_str());
                    bytes += size;
                }
            }
        }
    }
    let path = repo.join(ORDER_FILE);
    let mut out = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    for n in &names {
        writeln!(out, "{n}").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!(
        "{}: {} functions, {} KiB of text ({} KiB in the binary)",
        path.display(),
        names.len(),
        bytes / 1024,
        sections.iter().map(|s| s.1).sum::<u64>() / 1024
    );
    Ok(())
}

/// `cargo rustc` of the shipped hull with `-Wl,-Map`: the same objects and link as `cargo build
/// --release` (the link is deterministic), plus the map that names each function's section.
fn build_with_map(repo: &Path, map: &Path) -> Result<PathBuf, String> {
    println!("linking hull with a map (cargo rustc --release -p hull)...");
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "rustc",
            "--release",
            "--quiet",
            "-p",
            "hull",
            "--bin",
            "hull",
        ])
        .arg("--manifest-path")
        .arg(repo.join("Cargo.toml"))
        .arg("--")
        .arg("-C")
        .arg(format!("link-arg=-Wl,-Map={}", map.display()))
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !st.success() {
        return Err(format!("cargo rustc -p hull: {st}"));
    }
    Ok(crate::release_hull(repo))
}

/// Containers made while tracing, deleted whatever happens.
struct Ids<'a>(&'a Runtime, Vec<String>);

impl Drop for Ids<'_> {
    fn drop(&mut self) {
        for id in &self.1 {
            let _ = self
                .0
                .command(&["delete", "--force", id])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Traces each command in turn; returns each one's executed addresses in first-run order.
fn trace_commands(rt: &Runtime, bundles: &Bundles, dir: &Path) -> Result<Vec<Vec<u64>>, String> {
    let bundle = bundles.true_all.to_string_lossy().to_string();
    let sleeper = bundles.sleeper.to_string_lossy().to_string();
    let (ran, made, killed) = (unique("hot-run"), unique("hot-made"), unique("hot-kill"));
    let _ids = Ids(rt, vec![ran.clone(), made.clone(), killed.clone()]);
    let mut traces = Vec::new();
    let mut trace = |args: &[&str]| -> Result<(), String> {
        println!("tracing hull {}...", args.join(" "));
        traces.push(trace_one(rt, args, dir)?);
        Ok(())
    };
    trace(&["run", "--bundle", &bundle, &ran])?;
    trace(&["create", "--bundle", &bundle, &made])?;
    trace(&["state", &made])?;
    let pid = init_pid(rt, &made)?;
    trace(&["start", &made])?;
    proc::wait_exit(pid, Duration::from_secs(10))?;
    trace(&["delete", &made])?;
    rt.timed(&["run", "--detach", "--bundle", &sleeper, &killed])?;
    let pid = init_pid(rt, &killed)?;
    trace(&["kill", &killed, "KILL"])?;
    proc::wait_exit(pid, Duration::from_secs(10))?;
    trace(&["delete", &killed])?;
    Ok(traces)
}

fn init_pid(rt: &Runtime, id: &str) -> Result<i32, String> {
    let out = rt
        .command(&["state", id])
        .output()
        .map_err(|e| format!("state {id}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "state {id}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let state: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("state {id}: {e}"))?;
    state["pid"]
        .as_i64()
        .map(|p| p as i32)
        .ok_or(format!("state {id}: no pid"))
}

/// Runs `hull args` under a tracer process of its own (this binary's `--trace-one`): when
/// that process exits, the kernel detaches whatever it still traces, such as an init that
/// waits for `start`.
fn trace_one(rt: &Runtime, args: &[&str], dir: &Path) -> Result<Vec<u64>, String> {
    let out = dir.join("trace");
    let inner = rt.command(args);
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let st = Command::new(me)
        .arg("--trace-one")
        .arg(&out)
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("--trace-one: {e}"))?;
    if !st.success() {
        return Err(format!("tracing hull {}: {st}", args.join(" ")));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    text.lines()
        .map(|l| u64::from_str_radix(l, 16).map_err(|e| format!("{}: {l:?}: {e}", out.display())))
        .collect()
}

/// `--trace-one OUT BIN ARGS...`: single-steps BIN and every process it forks or clones,
/// writing each new address executed in BIN's text (as a link-time address, hex) to OUT;
/// returns BIN's exit status once BIN itself has exited, after detaching what it left.
#[cfg(target_arch = "x86_64")]
pub fn trace_one_main(args: &[String]) -> Result<i32, String> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let [out, bin, rest @ ..] = args else {
        return Err("--trace-one OUT BIN ARGS...".into());
    };
    let bin = std::fs::canonicalize(bin).map_err(|e| format!("{bin}: {e}"))?;
    let cstr = |b: &[u8]| CString::new(b).map_err(|e| e.to_string());
    let path = cstr(bin.as_os_str().as_bytes())?;
    let argv = std::iter::once(Ok(path.clone()))
        .chain(rest.iter().map(|a| cstr(a.as_bytes())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    // SAFETY: `--trace-one` runs before anything else, so this process is single-threaded and
    // the child may call anything; it only stops itself and execs.
    let main = unsafe { libc::fork() };
    if main < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if main == 0 {
        // SAFETY: async-signal-safe calls on memory prepared before the fork.
        unsafe {
            libc::raise(libc::SIGSTOP);
            libc::execv(path.as_ptr(), argv_ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    // Seized rather than PTRACE_TRACEME: only a seized tracee can be interrupted, and the
    // processes BIN leaves behind (an init blocked on its exec fifo) must be stopped to be
    // detached without a pending single-step trap, which would kill them.
    let opts = libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACEEXEC;
    let mut st = 0;
    // SAFETY: waitpid writes only to st; the ptrace requests and kill name our own child.
    unsafe {
        libc::waitpid(main, &mut st, libc::WUNTRACED);
        if libc::ptrace(libc::PTRACE_SEIZE, main, 0, opts) != 0 {
            return Err(format!("PTRACE_SEIZE: {}", std::io::Error::last_os_error()));
        }
        libc::kill(main, libc::SIGCONT);
    }
    let mut text: Option<(u64, u64, u64)> = None;
    let mut live = HashSet::from([main]);
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let code = loop {
        // SAFETY: waitpid writes only to st.
        let p = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
        if p < 0 {
            return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
        if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
            live.remove(&p);
            if p == main {
                break if libc::WIFEXITED(st) {
                    libc::WEXITSTATUS(st)
                } else {
                    128 + libc::WTERMSIG(st)
                };
            }
            continue;
        }
        live.insert(p);
        let sig = libc::WSTOPSIG(st);
        let event = st >> 16;
        if event == libc::PTRACE_EVENT_EXEC {
            if text.is_some() {
                // The container's program, not hull.
                // SAFETY: a ptrace request on our stopped tracee.
                unsafe { libc::ptrace(libc::PTRACE_DETACH, p, 0, 0) };
                live.remove(&p);
                continue;
            }
            text = Some(text_mapping(p, &bin)?);
        }
        let inject = if event == 0 && sig != libc::SIGTRAP && sig != libc::SIGSTOP {
            sig
        } else {
            0
        };
        if let Some((lo, hi, base)) = text {
            // SAFETY: user_regs_struct is plain data that PTRACE_GETREGS fills.
            let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
            // SAFETY: a ptrace request on our stopped tracee.
            let got = unsafe { libc::ptrace(libc::PTRACE_GETREGS, p, 0, &mut regs) } == 0;
            if got && (lo..hi).contains(&regs.rip) && seen.insert(regs.rip) {
                order.push(regs.rip - base);
            }
        }
        // SAFETY: as above.
        unsafe { libc::ptrace(libc::PTRACE_SINGLESTEP, p, 0, inject) };
    };
    for p in live {
        // SAFETY: ptrace requests on our seized tracee; waitpid writes only to st.
        unsafe {
            libc::ptrace(libc::PTRACE_INTERRUPT, p, 0, 0);
            if libc::waitpid(p, &mut st, libc::__WALL) == p && libc::WIFSTOPPED(st) {
                libc::ptrace(libc::PTRACE_DETACH, p, 0, 0);
            }
        }
    }
    let body: String = order.iter().map(|a| format!("{a:x}\n")).collect();
    std::fs::write(out, body).map_err(|e| format!("{out}: {e}"))?;
    Ok(code)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn trace_one_main(_: &[String]) -> Result<i32, String> {
    Err("--trace-one reads x86_64 registers; run it on x86_64".into())
}

/// BIN's executable mapping in process `pid` and its load base (the start of its mapping of
/// file offset 0), so that an address minus the base is the link-time address.
fn text_mapping(pid: libc::pid_t, bin: &Path) -> Result<(u64, u64, u64), String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| e.to_string())?;
    let (mut text, mut base) = (None, None);
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || Path::new(f[5]) != bin {
            continue;
        }
        let (a, b) = f[0].split_once('-').unwrap_or_default();
        let range = (
            u64::from_str_radix(a, 16).unwrap_or(0),
            u64::from_str_radix(b, 16).unwrap_or(0),
        );
        if f[2].chars().all(|c| c == '0') {
            base = Some(range.0);
        }
        if f[1].contains('x') {
            text = Some(range);
        }
    }
    match (text, base) {
        (Some((lo, hi)), Some(base)) => Ok((lo, hi, base)),
        _ => Err(format!("no text mapping of {} in {pid}", bin.display())),
    }
}

/// Every `.text*` input section of the map: (address, size, NAME), sorted by address. NAME is
/// what lld's ordering file takes: a Rust function's mangled name from its section's, and for
/// sections named otherwise (a static libc's `.text` or `.text.avx` of one object) the first
/// symbol the map lists in it.
fn text_sections(map: &Path) -> Result<Vec<(u64, u64, String)>, String> {
    let text = std::fs::read_to_string(map).map_err(|e| format!("{}: {e}", map.display()))?;
    let mut sections: Vec<(u64, u64, String)> = Vec::new();
    let mut unnamed: Option<(u64, u64)> = None;
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let (Some(addr), Some(size)) = (
            f.next().and_then(|a| u64::from_str_radix(a, 16).ok()),
            f.nth(1).and_then(|s| u64::from_str_radix(s, 16).ok()),
        ) else {
            continue;
        };
        let Some((_, section)) = l.split_once(":(") else {
            // A symbol line: it names the section just before it that had no name of its own.
            if let Some((start, len)) = unnamed.take().filter(|(start, _)| *start == addr) {
                if let Some(symbol) = f.nth(1) {
                    sections.push((start, len, symbol.to_string()));
                }
            }
            continue;
        };
        unnamed = None;
        let Some(section) = section.strip_suffix(')') else {
            continue;
        };
        if section != ".text" && !section.starts_with(".text.") {
            continue;
        }
        let mut name = section.strip_prefix(".text.").unwrap_or("");
        // LLVM's section prefixes for cold, hot and start-up code come before the name.
        for prefix in ["unlikely.", "hot.", "startup.", "exit.", "split."] {
            name = name.strip_prefix(prefix).unwrap_or(name);
        }
        if name.starts_with("_ZN") || name.starts_with("_R") {
            sections.push((addr, size, name.to_string()));
        } else if size > 0 {
            unnamed = Some((addr, size));
        }
    }
    sections.sort();
    if sections.is_empty() {
        return Err(format!("{}: no .text* sections", map.display()));
    }
    Ok(sections)
}

fn section_at(sections: &[(u64, u64, String)], addr: u64) -> Option<&(u64, u64, String)> {
    let i = sections.partition_point(|s| s.0 <= addr).checked_sub(1)?;
    let s = &sections[i];
    (addr < s.0 + s.1).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_names_the_section_that_holds_it_and_no_other() {
        let s = vec![
            (0x100, 0x10, "a".to_string()),
            (0x200, 0x8, "b".to_string()),
        ];
        assert_eq!(section_at(&s, 0x100).map(|s| s.2.as_str()), Some("a"));
        assert_eq!(section_at(&s, 0x10f).map(|s| s.2.as_str()), Some("a"));
        assert_eq!(section_at(&s, 0x110), None);
        assert_eq!(section_at(&s, 0x207).map(|s| s.2.as_str()), Some("b"));
        assert_eq!(section_at(&s, 0xff), None);
    }

    #[test]
    fn the_map_gives_each_text_section_its_address_size_and_the_name_lld_orders_it_by() {
        let dir = TempDir::new("hot-text-map");
        let map = dir.path.join("m");
        std::fs::write(
            &map,
            "             VMA              LMA     Size Align Out     In      Symbol\n\
             e3a12            e3a12        d     1         /x/h.rcgu.o:(.text.main)\n\
             e3a12            e3a12        d     1                 main\n\
             b354             b354       40     4         /x/h.rcgu.o:(.rodata._ZN1a1bE)\n\
             e3a00            e3a00       12    16         /x/h.rcgu.o:(.text._ZN1a1bE)\n\
             e3a00            e3a00       12     1                 a::b\n\
             e3a20            e3a20        8    16         /x/h.rcgu.o:(.text.unlikely._ZN1c1dE)\n\
             e3a40            e3a40       97    32         /l/libc.a(memchr-avx2.o):(.text.avx)\n\
             e3a40            e3a40       97     1                 __memchr_avx2\n\
             e3b00            e3b00       10    16         /l/libc.a(memcpy.o):(.text)\n\
             e3b10            e3b10        0     1                 memcpy_after_the_start\n",
        )
        .unwrap();
        assert_eq!(
            text_sections(&map).unwrap(),
            vec![
                (0xe3a00, 0x12, "_ZN1a1bE".to_string()),
                (0xe3a12, 0xd, "main".to_string()),
                (0xe3a20, 0x8, "_ZN1c1dE".to_string()),
                (0xe3a40, 0x97, "__memchr_avx2".to_string())
            ]
        );
    }
}
