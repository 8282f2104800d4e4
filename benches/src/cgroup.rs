//! crun 1.8.1 refuses this machine's hybrid cgroup layout while cgroup2 has a controller
//! (hugetlb); mounting hugetlb as a v1 hierarchy empties cgroup2's controllers and lets it run.
//! That changes the host for every runtime, so it is done only when needed, for the bench
//! alone, reported in the output, and always undone by a Drop guard.

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

const UNIFIED_CONTROLLERS: &str = "/sys/fs/cgroup/unified/cgroup.controllers";
const HUGETLB: &str = "/sys/fs/cgroup/hugetlb";

/// Undoes the hugetlb v1 mount on drop.
pub struct HugetlbV1 {
    created_dir: bool,
}

/// Mounts hugetlb as v1 if cgroup2 holds controllers in a hybrid layout, or if an earlier
/// bench's hierarchy outlived its unmount (crun then takes the layout for v1 and, with nothing
/// mounted at /sys/fs/cgroup/hugetlb, writes plain directories and `cgroup.procs` files into
/// the tmpfs there); None when the layout needs no change.
pub fn ensure_hugetlb_v1() -> Result<Option<HugetlbV1>, String> {
    let controllers = std::fs::read_to_string(UNIFIED_CONTROLLERS).unwrap_or_default();
    let on_unified = controllers.split_whitespace().any(|c| c == "hugetlb");
    let lingering = hugetlb_on_v1() && !mounted(HUGETLB);
    if !on_unified && !lingering {
        return Ok(None);
    }
    let created_dir = !Path::new(HUGETLB).exists();
    std::fs::create_dir_all(HUGETLB).map_err(|e| format!("mkdir {HUGETLB}: {e}"))?;
    let guard = HugetlbV1 { created_dir };
    mount_hugetlb()?;
    Ok(Some(guard))
}

/// Whether `dir` is a mount point (on another device than its parent).
fn mounted(dir: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = Path::new(dir).parent().unwrap_or(Path::new("/"));
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev(),
        _ => false,
    }
}

fn mount_hugetlb() -> Result<(), String> {
    let (src, target, fstype, data) = (
        CString::new("cgroup").unwrap_or_default(),
        CString::new(HUGETLB).unwrap_or_default(),
        CString::new("cgroup").unwrap_or_default(),
        CString::new("hugetlb").unwrap_or_default(),
    );
    // SAFETY: valid NUL-terminated strings for a plain cgroup v1 mount.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "mount hugetlb v1: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn umount_hugetlb() {
    if let Ok(t) = CString::new(HUGETLB) {
        // SAFETY: a valid path; failure (nothing mounted) is harmless here.
        unsafe { libc::umount2(t.as_ptr(), 0) };
    }
}

/// Whether /proc/cgroups still places hugetlb on a v1 hierarchy (non-zero hierarchy id).
fn hugetlb_on_v1() -> bool {
    std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"hugetlb")).then(|| f.get(1).map(|h| *h != "0"))
        })
        .any(|v| v == Some(true))
}

/// Removes the empty cgroups the containers left in the hierarchy we mounted: a v1 hierarchy
/// with children outlives its unmount, which would keep hugetlb off cgroup2.
fn remove_child_cgroups(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_child_cgroups(&e.path());
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// Polls for the hierarchy to be gone: the kernel destroys it asynchronously after unmount.
fn wait_hugetlb_off_v1(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while hugetlb_on_v1() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

impl Drop for HugetlbV1 {
    fn drop(&mut self) {
        remove_child_cgroups(Path::new(HUGETLB));
        umount_hugetlb();
        // MACHINE.md: the hierarchy can outlive the unmount while the containers' removed
        // cgroups are still referenced; another mount and unmount cycle, once they are
        // released, lets it go and brings hugetlb back to cgroup2.
        // After the hull bench's containers five one-second cycles were not always enough.
        let mut restored = wait_hugetlb_off_v1(Duration::from_secs(1));
        for _ in 0..30 {
            if restored || mount_hugetlb().is_err() {
                break;
            }
            remove_child_cgroups(Path::new(HUGETLB));
            umount_hugetlb();
            restored = wait_hugetlb_off_v1(Duration::from_secs(1));
        }
        if self.created_dir {
            let _ = std::fs::remove_dir(HUGETLB);
        }
        if !restored {
            // The mount point may be gone (removed above): the command makes it again.
            let rmdir = if self.created_dir {
                format!(" && rmdir {HUGETLB}")
            } else {
                String::new()
            };
            eprintln!(
                "warning: hugetlb is still on a v1 hierarchy (see /proc/cgroups); undo with \
                 `mkdir -p {HUGETLB} && mount -t cgroup -o hugetlb cgroup {HUGETLB} && \
                 umount {HUGETLB}{rmdir}`"
            );
        }
    }
}
