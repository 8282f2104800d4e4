//! Harness for hull's root integration suite: the runtime under test (hull, or runc/crun with
//! `REFERENCE=`), bundles built from Debian's busybox-static, and Drop guards that delete
//! containers, unmount and remove temporary directories even when a test fails.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique name for this test process.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub mod features;

/// Prints why a test (or a part of it) is skipped; the caller returns right after.
pub fn skip(reason: &str) {
    println!("SKIP: {reason}");
    let thread = std::thread::current();
    log_skip(thread.name().unwrap_or("main"), reason);
}

/// With `HULL_TEST_SKIP_LOG` set (as `.ci/test` does), appends `test: reason` there, so that the
/// summary counts and shows skips that cargo's own output hides in passing tests. One write of
/// the whole line to an O_APPEND file: tests running in parallel never interleave.
pub fn log_skip(test: &str, reason: &str) {
    use std::io::Write;
    let Some(log) = std::env::var_os("HULL_TEST_SKIP_LOG") else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = f.write_all(format!("{test}: {reason}\n").as_bytes());
    }
}

/// A directory removed on drop after unmounting anything below it, never crossing into another
/// filesystem (a leaked mount must not make cleanup walk into /sys or the host).
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

fn remove_same_fs(path: &Path, dev: u64) {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return;
    };
    if md.dev() != dev {
        return;
    }
    if md.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                remove_same_fs(&e.path(), dev);
            }
        }
        let _ = std::fs::remove_dir(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// Detaches (`umount -l`) every mount at or below `dir`, deepest first.
pub fn unmount_below(dir: &Path) {
    for m in mounts_below(dir) {
        let c = CString::new(m.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: umount2 with a valid C string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        unmount_below(&self.path);
        if let Ok(md) = std::fs::symlink_metadata(&self.path) {
            remove_same_fs(&self.path, md.dev());
        }
    }
}

/// The runtime under test: hull, or `REFERENCE=runc|crun|PATH` to prove the tests right.
pub struct Runtime {
    pub bin: PathBuf,
    pub reference: Option<String>,
    pub root: TempDir,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        let reference = std::env::var("REFERENCE").ok().filter(|r| !r.is_empty());
        let bin = match &reference {
            Some(r) => PathBuf::from(r),
            None => hull_bin(),
        };
        Runtime {
            bin,
            reference,
            root: TempDir::new("hull-root"),
        }
    }

    pub fn is_hull(&self) -> bool {
        self.reference.is_none()
    }

    /// A command with `--root` set to this runtime's private state root.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root.path);
        c
    }

    /// Runs the runtime and collects its output through files, not pipes: after `create` or
    /// `run -d` the container keeps the runtime's stdio open, so a pipe would never close.
    pub fn run(&self, args: &[&str]) -> Output {
        let name = unique("io");
        let (out_path, err_path) = (
            self.root.path.join(format!("{name}.out")),
            self.root.path.join(format!("{name}.err")),
        );
        let out = std::fs::File::create(&out_path).expect("stdout file");
        let err = std::fs::File::create(&err_path).expect("stderr file");
        let status = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .expect("run the runtime");
        let output = Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(out_path);
        let _ = std::fs::remove_file(err_path);
        output
    }

    /// Runs and requires success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{:?} {args:?} failed ({}): {}{}",
            self.bin,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state is JSON")
    }

    /// Waits (bounded) until the container's status is `want`.
    pub fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.state(id);
            if s["status"] == want || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The hull binary built in this workspace (`cargo build -p hull` first), or `$HULL_BIN`.
pub fn hull_bin() -> PathBuf {
    if let Ok(p) = std::env::var("HULL_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/hull");
    assert!(
        bin.exists(),
        "{bin:?} is missing: run `cargo build -p hull` before the integration suite"
    );
    bin
}

/// Deletes the container on drop, whatever the test did.
pub struct Container<'a> {
    pub rt: &'a Runtime,
    pub id: String,
}

impl<'a> Container<'a> {
    pub fn new(rt: &'a Runtime) -> Container<'a> {
        Container {
            rt,
            id: unique("t"),
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.rt.run(&["delete", "--force", &self.id]);
    }
}

/// Copies busybox into `dest` with one symlink per applet (the same as
/// bundle-fixtures/make-rootfs.sh, without a shell).
pub fn make_rootfs(dest: &Path) {
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("busybox-static is not installed (bundle-fixtures/make-rootfs.sh installs it)");
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "root",
        "home/user",
    ] {
        std::fs::create_dir_all(dest.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy(bb, dest.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dest.join("bin").join(applet));
        }
    }
    std::fs::write(
        dest.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(dest.join("etc/group"), "root:x:0:\nuser:x:1000:\n").expect("group");
}

/// A tarball of a fresh busybox rootfs (the image engines import), made in `dir`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    make_rootfs(&rootfs);
    let tar = dir.join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "tar of {rootfs:?}");
    tar
}

/// A bundle in a temporary directory with a fresh busybox rootfs and an editable config.
pub struct Bundle {
    pub dir: TempDir,
    pub config: Value,
}

impl Bundle {
    /// The default bundle: `args` in pid, ipc, uts, mount, network and cgroup namespaces with
    /// runc's default mounts, masks and capabilities, no terminal.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = TempDir::new("hull-bundle");
        make_rootfs(&dir.path.join("rootfs"));
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "testbox",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                               {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/scsi", "/proc/acpi"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        Bundle { dir, config }
    }

    pub fn path(&self) -> &Path {
        &self.dir.path
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path.join("rootfs")
    }

    pub fn path_str(&self) -> &str {
        self.dir.path.to_str().expect("utf-8 temp path")
    }

    pub fn save(&self) {
        std::fs::write(
            self.dir.path.join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("config"),
        )
        .expect("write config.json");
    }

    /// Sets the process's arguments (a `sh -c` script).
    pub fn script(&mut self, script: &str) -> &mut Self {
        self.config["process"]["args"] = json!(["sh", "-c", script]);
        self
    }
}

/// Gives `config` a user namespace of its own, container ids 0-65535 mapped to host 100000 on.
pub fn add_user_namespace(config: &mut Value) {
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "user"}));
    config["linux"]["uidMappings"] = map.clone();
    config["linux"]["gidMappings"] = map;
}

/// Runs `bundle` to completion in the foreground; returns (exit code, stdout, stderr).
pub fn run_bundle(rt: &Runtime, bundle: &Bundle) -> (i32, String, String) {
    bundle.save();
    let c = Container::new(rt);
    let out = rt.run(&["run", "--bundle", bundle.path_str(), &c.id]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a script in a default bundle adjusted by `edit`; asserts success and returns stdout.
pub fn run_script(rt: &Runtime, script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut b = Bundle::new(&[]);
    b.script(script);
    edit(&mut b.config);
    let (code, out, err) = run_bundle(rt, &b);
    assert_eq!(
        code, 0,
        "script {script:?} failed: stdout {out:?} stderr {err:?}"
    );
    out
}

/// Whether the hierarchy of a `/proc/PID/cgroup` line ("7:blkio:/x", "0::/x") is mounted here.
/// A v1 hierarchy outlives its unmount while it has cgroups (hugetlb, after the bench mounted
/// it for crun): it is still listed, but no runtime can make a cgroup in it.
pub fn hierarchy_mounted(cgroup_line: &str) -> bool {
    let controllers = cgroup_line.split(':').nth(1).unwrap_or_default();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split_once(" - ").map(|(_, fs)| fs))
        .any(|fs| {
            let mut f = fs.split(' ');
            match (f.next(), f.nth(1)) {
                (Some("cgroup2"), _) => controllers.is_empty(),
                // A controller (or name=) is in one hierarchy only: the mount whose options
                // name this line's controllers is that hierarchy's.
                (Some("cgroup"), Some(options)) => {
                    !controllers.is_empty()
                        && controllers
                            .split(',')
                            .all(|c| options.split(',').any(|o| o == c))
                }
                _ => false,
            }
        })
}

/// Skips (true, with the reason printed) while a v1 hierarchy is listed in /proc/self/cgroup
/// but mounted nowhere: containerd's cgroup library then fails to load a container's cgroups,
/// and reports no metrics and no OOM events, whichever runtime made them.
pub fn skip_if_a_hierarchy_lingers(what: &str) -> bool {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    match own.lines().find(|l| !hierarchy_mounted(l)) {
        Some(line) => {
            skip(&format!(
                "{what}: hierarchy {line:?} outlives its unmount (it still has cgroups), and the \
                 engine's cgroup library cannot load a container's cgroups meanwhile"
            ));
            true
        }
        None => false,
    }
}

/// The cgroup directories of a container path across this host's v1 hierarchies (or v2).
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    match std::fs::read_dir("/sys/fs/cgroup") {
        Ok(d) if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() => {
            d.flatten().map(|e| e.path().join(rel)).collect()
        }
        _ => vec![Path::new("/sys/fs/cgroup").join(rel)],
    }
}

/// Whether `dir` is on a cgroup filesystem (v1 or v2), not a plain directory.
fn on_cgroupfs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the zeroed struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a struct of the right type.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    matches!(
        st.f_type,
        libc::CGROUP_SUPER_MAGIC | libc::CGROUP2_SUPER_MAGIC
    )
}

/// Removes a cgroup and its sub-cgroups in every hierarchy, deepest first; a cgroup that still
/// has processes stays (rmdir refuses), so this never disturbs a user of it. Where a
/// controller is not mounted, /sys/fs/cgroup/NAME is a plain directory of the tmpfs, in which
/// podman (cgroupfs manager) still makes its parent and writes a `tasks` file: those
/// directories are removed with their files.
pub fn remove_empty_cgroups(path: &str) {
    fn remove(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&e.path());
                }
            }
        }
        if std::fs::remove_dir(dir).is_err() && dir.is_dir() && !on_cgroupfs(dir) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    for d in cgroup_dirs(path) {
        remove(&d);
    }
}

/// Receives one message with one fd (SCM_RIGHTS) on `conn`, as runtimes send a pty master, a
/// pidfd or a seccomp listener: the data and the fd.
pub fn recv_fd(conn: &std::os::unix::net::UnixStream) -> (Vec<u8>, std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; every pointer in it outlives the recvmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.as_mut_ptr().cast();
    msg.msg_controllen = space.len();
    // Close-on-exec at once: tests beside this one spawn children that must not inherit
    // a pty master, a pidfd or a seccomp listener of this test.
    // SAFETY: as above.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(
        n > 0,
        "recvmsg from the runtime: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel filled the control buffer; CMSG_FIRSTHDR/DATA walk inside it.
    let fd = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(!cmsg.is_null(), "the message carries an fd");
        assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const i32)
    };
    buf.truncate(n as usize);
    // SAFETY: SCM_RIGHTS installed this fd for us.
    (buf, unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// The container's cgroup directory for a v1 controller, from its init's /proc/<pid>/cgroup.
pub fn cgroup_dir(pid: i64, controller: &str) -> PathBuf {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cg
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_string())
        })
        .unwrap();
    PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}"))
}

/// A file of the container's cgroup for a v1 controller, trimmed.
pub fn cgroup_file(pid: i64, controller: &str, file: &str) -> String {
    let full = cgroup_dir(pid, controller).join(file);
    std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("{full:?}: {e}"))
        .trim()
        .to_string()
}

/// Waits for `child` at most `limit`; None (after SIGKILL, and no wait: a runtime stuck in the
/// kernel must not hang the test too) when it is still running then.
pub fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("waiting for the runtime") {
            return Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
