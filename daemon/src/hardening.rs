//! Process hardening and locked memory: the workspace's only `unsafe`.
//!
//! Owns: making the daemon non-dumpable (no core files, no same-uid ptrace
//! attach where the OS allows it), the one mlocked page that holds the
//! unlocked data key ([`LockedPage`]), the two terminal calls a
//! pseudo-terminal child needs ([`controlling_tty`], [`set_window_size`]),
//! and [`report`], the process's hardening as it is now (for `status`).
//!
//! Invariants:
//! - Nothing here fails hard: where the OS refuses, we warn once and carry on,
//!   because a daemon that will not start protects nothing.
//! - `mlockall` is never used: under a normal user's `RLIMIT_MEMLOCK` it would
//!   make the 64 MiB Argon2 step fail. Only the key page is locked.
//! - Every `unsafe` block has a `// SAFETY:` note.

use std::ptr::NonNull;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use zeroize::Zeroize;

/// Size of the locked page; the data key uses the first 32 bytes.
pub const PAGE: usize = 4096;

/// Turns off core dumps and debugger attach for this process.
pub fn harden_process() {
    if let Err(e) = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0) {
        tracing::warn!(error = %e, "cannot set RLIMIT_CORE to 0; a crash could write a core file");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "cannot clear PR_SET_DUMPABLE; same-uid processes may ptrace secretctld");
    }
    #[cfg(target_os = "macos")]
    deny_attach();
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
    tracing::warn!("no anti-ptrace protection on this platform");
}

/// The process's hardening as the OS sees it now, not as intended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Core dumps and same-uid ptrace allowed (Linux: PR_GET_DUMPABLE;
    /// macOS: PT_DENY_ATTACH not set).
    pub dumpable: bool,
    /// Soft RLIMIT_CORE in bytes (`u64::MAX`: unlimited).
    pub core_limit: u64,
    /// Bytes this process holds mlocked through [`LockedPage`]s now.
    pub locked_bytes: u64,
    /// False once the OS refused to mlock a page.
    pub mlock_ok: bool,
}

/// Reads the process's hardening state.
pub fn report() -> Report {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let dumpable = nix::sys::prctl::get_dumpable().unwrap_or(true);
    #[cfg(target_os = "macos")]
    let dumpable = !DENY_ATTACH_SET.load(Ordering::Relaxed);
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
    let dumpable = true;
    let core_limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE)
        .map(|(soft, _)| soft)
        .unwrap_or(u64::MAX);
    Report {
        dumpable,
        core_limit,
        locked_bytes: LOCKED_BYTES.load(Ordering::Relaxed) as u64,
        mlock_ok: !MLOCK_FAILED.load(Ordering::Relaxed),
    }
}

#[cfg(target_os = "macos")]
static DENY_ATTACH_SET: AtomicBool = AtomicBool::new(false);

#[cfg(target_os = "macos")]
fn deny_attach() {
    const PT_DENY_ATTACH: nix::libc::c_int = 31;
    // SAFETY: ptrace(PT_DENY_ATTACH) takes no pointers and only flags this
    // process; the other arguments are ignored by the kernel.
    let rc = unsafe { nix::libc::ptrace(PT_DENY_ATTACH, 0, std::ptr::null_mut(), 0) };
    if rc != 0 {
        tracing::warn!("cannot set PT_DENY_ATTACH; same-uid processes may attach a debugger");
    } else {
        DENY_ATTACH_SET.store(true, Ordering::Relaxed);
    }
}

/// One page-aligned page of memory, mlocked when the OS allows it and
/// zeroed before it is unlocked and freed.
pub struct LockedPage {
    page: Box<Page>,
    locked: bool,
}

#[repr(C, align(4096))]
struct Page([u8; PAGE]);

static MLOCK_WARNING: Once = Once::new();
/// Bytes held mlocked by live pages; reported by `status`.
static LOCKED_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Set when the OS refused an mlock.
static MLOCK_FAILED: AtomicBool = AtomicBool::new(false);

impl LockedPage {
    /// Allocates a zeroed page and tries to mlock it (warns once if not).
    pub fn new() -> Self {
        let mut page = Box::new(Page([0; PAGE]));
        let ptr = NonNull::from(&mut page.0).cast();
        // SAFETY: `ptr` points to a live, page-aligned allocation of exactly
        // PAGE bytes owned by `page`, which outlives the lock (munlock runs in
        // Drop before the Box is freed).
        let locked = match unsafe { nix::sys::mman::mlock(ptr, PAGE) } {
            Ok(()) => {
                LOCKED_BYTES.fetch_add(PAGE, Ordering::Relaxed);
                true
            }
            Err(e) => {
                MLOCK_FAILED.store(true, Ordering::Relaxed);
                MLOCK_WARNING.call_once(|| {
                    tracing::warn!(error = %e, "cannot mlock the key page (RLIMIT_MEMLOCK?); the key could be swapped out");
                });
                false
            }
        };
        LockedPage { page, locked }
    }

    /// The page's bytes.
    pub fn bytes(&self) -> &[u8; PAGE] {
        &self.page.0
    }

    /// The page's bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8; PAGE] {
        &mut self.page.0
    }

    /// Whether the OS agreed to lock the page in RAM.
    pub fn is_locked(&self) -> bool {
        self.locked
    }
}

impl Default for LockedPage {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for LockedPage {
    fn drop(&mut self) {
        self.page.0.zeroize();
        if self.locked {
            let ptr = NonNull::from(&mut self.page.0).cast();
            // SAFETY: same allocation that `new` locked; still alive here.
            let _ = unsafe { nix::sys::mman::munlock(ptr, PAGE) };
            LOCKED_BYTES.fetch_sub(PAGE, Ordering::Relaxed);
        }
    }
}

/// Makes the child started by `cmd` a session leader whose controlling
/// terminal is its stdin (a pty slave), so job control and `isatty` work.
pub fn controlling_tty(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child before exec and calls only
    // async-signal-safe functions (setsid, ioctl) without allocating.
    unsafe {
        cmd.pre_exec(|| {
            if nix::libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes the child of `cmd` inherit `fd` as descriptor `target` (without
/// close-on-exec), whatever number `fd` has in the parent.
pub fn inherit_fd_as(cmd: &mut std::process::Command, fd: std::os::fd::RawFd, target: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child before exec and calls only
    // async-signal-safe functions (dup2, fcntl) without allocating; `fd` is
    // open in the parent, and so in the child, until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if fd == target {
                let flags = nix::libc::fcntl(fd, nix::libc::F_GETFD);
                if flags == -1
                    || nix::libc::fcntl(fd, nix::libc::F_SETFD, flags & !nix::libc::FD_CLOEXEC)
                        == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
            } else if nix::libc::dup2(fd, target) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Takes ownership of descriptor `fd`, which this process inherited.
/// Fails if it is not open. Call once per descriptor, at start.
pub fn take_inherited_fd(fd: std::os::fd::RawFd) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above) and nothing else in this process
    // owns it: callers take each inherited descriptor once, before any other
    // code could have wrapped it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Takes ownership of stdin, stdout and stderr (to hand them to a child;
/// this process must not use `std::io::std*` afterwards).
pub fn take_stdio() -> std::io::Result<[std::os::fd::OwnedFd; 3]> {
    Ok([
        take_inherited_fd(0)?,
        take_inherited_fd(1)?,
        take_inherited_fd(2)?,
    ])
}

/// Sets the window size of the terminal behind `fd` (a pty master).
pub fn set_window_size(
    fd: std::os::fd::BorrowedFd<'_>,
    rows: u16,
    cols: u16,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let ws = nix::libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is a live descriptor borrowed for this call and `ws` a
    // valid winsize that outlives it; TIOCSWINSZ only reads it.
    let rc = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCSWINSZ as _, &ws) };
    if rc == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The listening socket launchd created for our `Sockets` entry `name`
/// (macOS socket activation), if launchd manages us.
#[cfg(target_os = "macos")]
pub fn launchd_socket(name: &str) -> std::io::Result<Option<std::os::unix::net::UnixListener>> {
    use std::os::fd::FromRawFd;
    unsafe extern "C" {
        fn launch_activate_socket(
            name: *const nix::libc::c_char,
            fds: *mut *mut nix::libc::c_int,
            cnt: *mut nix::libc::size_t,
        ) -> nix::libc::c_int;
    }
    let cname = std::ffi::CString::new(name)?;
    let mut fds: *mut nix::libc::c_int = std::ptr::null_mut();
    let mut cnt: nix::libc::size_t = 0;
    // SAFETY: `cname` is a valid C string for the call; launchd writes a
    // malloc'd array of `cnt` descriptors to `fds`, which we own afterwards.
    let rc = unsafe { launch_activate_socket(cname.as_ptr(), &mut fds, &mut cnt) };
    if rc != 0 {
        return if rc == nix::libc::ESRCH || rc == nix::libc::ENOENT {
            Ok(None)
        } else {
            Err(std::io::Error::from_raw_os_error(rc))
        };
    }
    let mut first = None;
    for i in 0..cnt {
        // SAFETY: `fds` holds `cnt` descriptors handed to us; each is taken
        // exactly once (the first kept, the rest closed on drop).
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(*fds.add(i)) };
        if first.is_none() {
            first = Some(std::os::unix::net::UnixListener::from(fd));
        }
    }
    // SAFETY: the array was allocated by launchd with malloc and is ours to free.
    unsafe { nix::libc::free(fds.cast()) };
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_aligned_and_zeroed() {
        let mut p = LockedPage::new();
        assert_eq!(p.bytes().as_ptr() as usize % PAGE, 0);
        assert!(p.bytes().iter().all(|b| *b == 0));
        p.bytes_mut()[0] = 7;
        assert_eq!(p.bytes()[0], 7);
    }

    /// A field of /proc/self/status in kB.
    #[cfg(target_os = "linux")]
    fn proc_status_kb(field: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    #[test]
    fn a_live_page_is_locked_and_counted() {
        let p = LockedPage::new();
        assert!(
            p.is_locked(),
            "mlock of one page failed: is RLIMIT_MEMLOCK below 4 KiB?"
        );
        let r = report();
        assert!(r.mlock_ok);
        // Other tests hold pages too: at least ours is counted.
        assert!(r.locked_bytes >= PAGE as u64, "{r:?}");
        #[cfg(target_os = "linux")]
        assert!(
            proc_status_kb("VmLck:") >= 4,
            "the kernel sees no locked page"
        );
        drop(p);
    }

    #[test]
    fn hardening_makes_the_process_undumpable_without_core_files() {
        // Start from a process that could dump core (as far as the hard
        // limit lets us), so the assertions see harden_process's work.
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_CORE).unwrap();
        setrlimit(Resource::RLIMIT_CORE, hard, hard).unwrap();
        harden_process();
        let r = report();
        assert_eq!(r.core_limit, 0, "{r:?}");
        assert_eq!(
            getrlimit(Resource::RLIMIT_CORE).unwrap(),
            (0, 0),
            "the hard limit must be 0 too, so a child cannot raise it"
        );
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
        assert!(!r.dumpable, "{r:?}");
    }
}
