//! What a run's child and its supervisor need from the kernel directly: a
//! controlling terminal and its window size, and descriptors passed to a
//! child or taken over from a parent.

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
