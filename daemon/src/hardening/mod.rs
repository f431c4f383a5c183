//! Process hardening, locked memory and raw descriptors: the workspace's
//! only `unsafe`, split by concern.
//!
//! | module | owns |
//! |---|---|
//! | `process` | no core dumps, no same-uid ptrace ([`harden_process`]); [`report`] of the live state for `status` |
//! | `locked` | the one mlocked, zeroed-on-drop page that holds the data key ([`LockedPage`]) |
//! | `child` | what a run's child and supervisor need: a controlling terminal, window size, passing and taking descriptors |
//! | `fds` | closing descriptors the daemon inherited by accident ([`close_inherited_fds`]) |
//! | `launchd` | macOS socket activation (`launch_activate_socket`), called by `activation` |
//!
//! Invariants:
//! - Nothing here fails hard on hardening: where the OS refuses, we warn
//!   once and carry on, because a daemon that will not start protects
//!   nothing (`status` reports the real state).
//! - `mlockall` is never used: under a normal user's `RLIMIT_MEMLOCK` it would
//!   make the 64 MiB Argon2 step fail. Only the key page is locked.
//! - Every `unsafe` block has a `// SAFETY:` note.

mod child;
mod fds;
#[cfg(target_os = "macos")]
mod launchd;
mod locked;
mod process;

pub use child::{controlling_tty, inherit_fd_as, set_window_size, take_inherited_fd, take_stdio};
pub use fds::close_inherited_fds;
#[cfg(target_os = "macos")]
pub use launchd::launchd_socket;
pub use locked::{LockedPage, PAGE};
pub use process::{Report, harden_process, report};
