//! The one page that holds the unlocked data key: page-aligned, mlocked
//! when the OS allows it, zeroed before it is unlocked and freed.

use std::ptr::NonNull;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use zeroize::Zeroize;

/// Size of the locked page; the data key uses the first 32 bytes.
pub const PAGE: usize = 4096;

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

/// Bytes live pages hold mlocked now.
pub(super) fn locked_bytes() -> u64 {
    LOCKED_BYTES.load(Ordering::Relaxed) as u64
}

/// Whether the OS ever refused an mlock.
pub(super) fn mlock_failed() -> bool {
    MLOCK_FAILED.load(Ordering::Relaxed)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardening::report;

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
}
