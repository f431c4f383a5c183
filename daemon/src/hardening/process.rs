//! No core dumps and no same-uid debugger for this process, and a report
//! of that state as the OS sees it.

#[cfg(target_os = "macos")]
use std::sync::atomic::{AtomicBool, Ordering};

use super::locked;

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
        locked_bytes: locked::locked_bytes(),
        mlock_ok: !locked::mlock_failed(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
