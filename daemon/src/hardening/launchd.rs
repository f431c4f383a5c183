//! macOS socket activation: the listening socket launchd created for us.

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
