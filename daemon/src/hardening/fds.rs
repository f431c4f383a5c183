//! Descriptors the daemon inherited by accident.
//!
//! Whatever started the daemon may have leaked descriptors to it without
//! close-on-exec (a shell's redirections, a terminal multiplexer, a test
//! harness). They would reach every run's supervisor and child, so the
//! daemon closes all of them at start, keeping stdio and the listening
//! sockets a service manager passed (`LISTEN_FDS`, from fd 3).

use std::os::fd::RawFd;

/// Closes every open descriptor numbered `first` or higher. Call first
/// thing, before any other thread or descriptor exists.
pub fn close_inherited_fds(first: RawFd) {
    for fd in open_fds().into_iter().filter(|fd| *fd >= first) {
        // SAFETY: nothing in this process owns these descriptors yet (this
        // runs before any other code opens or wraps one); closing an fd
        // that is already closed (the directory listing's own) is EBADF,
        // which is harmless.
        unsafe {
            nix::libc::close(fd);
        }
    }
}

/// The open descriptors, from the fd directory; without one, every number
/// below the descriptor limit.
fn open_fds() -> Vec<RawFd> {
    for dir in ["/proc/self/fd", "/dev/fd"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            // Collected before closing anything: the listing's own
            // descriptor is among them and closes with the iterator.
            return entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
        }
    }
    let max = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft.min(65_536))
        .unwrap_or(1024);
    (0..max as RawFd).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_our_descriptors() {
        let fds = open_fds();
        assert!(
            fds.contains(&0) || fds.contains(&1) || fds.contains(&2),
            "{fds:?}"
        );
    }
}
