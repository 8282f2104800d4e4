//! What a long-lived, mostly idle process (a container's monitor) gives back to the
//! kernel once it has been idle a while: the pages of clean file mappings (its program's
//! text, read-only data, shared libraries), which page faults filled in whole page-cache
//! folios at start-up though the idle loop needs few of them, and the free memory malloc
//! holds. The file pages stay in the page cache: what the loop uses again comes back as a
//! minor fault, and other processes of the same program keep theirs. Also the main
//! thread's stack below the idle loop: start-up went deeper than the loop does.

/// Unmaps the pages of every private, read-only file mapping that holds no copied page
/// (a relocated RELRO segment does, and dropping it would undo the relocations), and
/// returns malloc's free memory.
pub fn shed() {
    if let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") {
        shed_stack(&smaps);
        for (start, len) in clean_file_mappings(&smaps) {
            let Some(at) = std::ptr::NonNull::new(start as *mut std::ffi::c_void) else {
                continue;
            };
            // SAFETY: the range is a read-only private file mapping without anonymous
            // (copied) pages, so dropping its pages loses nothing: each refaults from the
            // file as it was.
            let _ = unsafe {
                nix::sys::mman::madvise(at, len, nix::sys::mman::MmapAdvise::MADV_DONTNEED)
            };
        }
    }
    // Last, once the smaps text (tens of KiB) is freed too.
    // SAFETY: malloc_trim only returns memory malloc holds free.
    unsafe { libc::malloc_trim(0) };
}

/// What `shed_stack` leaves below the frame it is called from: room for the calls it makes.
const STACK_KEPT: usize = 16 * 1024;

/// Drops the pages of the `[stack]` mapping more than `STACK_KEPT` below this frame. Nothing
/// live is there (the stack grows down): a later call that goes that deep gets zeroed pages.
#[inline(never)]
fn shed_stack(smaps: &str) {
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as usize;
    let Some((start, top)) = smaps
        .lines()
        .filter_map(mapping)
        .find(|m| m.path == "[stack]")
        .map(|m| (m.start, m.end))
    else {
        return;
    };
    // Another thread's stack is elsewhere: the main thread's is live all the way down.
    if !(start..top).contains(&sp) {
        return;
    }
    let end = sp.saturating_sub(STACK_KEPT) & !(page - 1);
    let Some(at) = std::ptr::NonNull::new(start as *mut std::ffi::c_void) else {
        return;
    };
    if end > start {
        // SAFETY: the range lies below the live frames (see STACK_KEPT); its contents are dead.
        let _ = unsafe {
            nix::sys::mman::madvise(at, end - start, nix::sys::mman::MmapAdvise::MADV_DONTNEED)
        };
    }
}

/// The header line of one mapping in /proc/PID/smaps: `start-end perms offset dev inode path`.
struct Mapping<'a> {
    start: usize,
    end: usize,
    perms: &'a str,
    inode: &'a str,
    path: &'a str,
}

/// The mapping a header line of smaps describes; None for the other lines.
fn mapping(line: &str) -> Option<Mapping<'_>> {
    let mut words = line.split_whitespace();
    let (a, b) = words.next()?.split_once('-')?;
    let (start, end) = (
        usize::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(b, 16).ok()?,
    );
    let perms = words.next()?;
    let inode = words.nth(2)?;
    Some(Mapping {
        start,
        end,
        perms,
        inode,
        path: words.next().unwrap_or(""),
    })
}

/// (start, length) of each mapping in `smaps` that is private, not writable, backed by a
/// file and has no anonymous pages.
fn clean_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(m) = mapping(line) {
            let clean_file = m.perms.starts_with('r')
                && !m.perms.contains('w')
                && m.perms.ends_with('p')
                && m.inode != "0"
                && m.path.starts_with('/');
            current = clean_file.then_some((m.start, m.end - m.start));
        } else if let Some(anon) = line.strip_prefix("Anonymous:") {
            if let Some(m) = current.take() {
                if anon.split_whitespace().next() == Some("0") {
                    out.push(m);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings_are_picked() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:01 1234 /usr/bin/wharf
Rss: 400 kB
Anonymous: 0 kB
55d0a0100000-55d0a0900000 r-xp 00100000 fe:01 1234 /usr/bin/wharf
Anonymous: 0 kB
55d0a0900000-55d0a0a00000 r--p 00900000 fe:01 1234 /usr/bin/wharf
Anonymous: 380 kB
55d0a0a00000-55d0a0a10000 rw-p 00a00000 fe:01 1234 /usr/bin/wharf
Anonymous: 64 kB
55d0a1000000-55d0a1100000 rw-p 00000000 00:00 0 [heap]
Anonymous: 776 kB
7f0000000000-7f0000001000 r-xp 00000000 00:00 0 [vdso]
Anonymous: 0 kB
7f0000100000-7f0000200000 r--s 00000000 fe:01 99 /tmp/shared
Anonymous: 0 kB
";
        assert_eq!(
            clean_file_mappings(smaps),
            [(0x55d0a0000000, 0x100000), (0x55d0a0100000, 0x800000)]
        );
    }

    #[test]
    fn shedding_keeps_the_process_working() {
        let before = "text".repeat(3);
        shed();
        assert_eq!(before, "texttexttext");
        assert!(
            !clean_file_mappings(&std::fs::read_to_string("/proc/self/smaps").unwrap()).is_empty()
        );
    }
}
